//! A deterministic in-memory client/server pair, wire builders and the checks shared by the
//! integration tests. Each test crate uses a part of it.
#![allow(dead_code, clippy::unwrap_used)]

use herald_proto::frame::FrameHeader;
use herald_proto::mask::apply_mask_bytewise;
use herald_proto::{Closed, Config, Connection, Event, Initiator, Opcode, ProtocolError, Role};
use herald_proto::{MisuseError, SeededEntropy};
use std::io::IoSlice;

/// The seed of every client's masking keys.
pub(crate) const SEED: u64 = 0x5eed;

/// The masking key of RFC 6455 §5.7, used by [`frame_to`] for frames a client would send.
pub(crate) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Both roles, for cases that apply to each.
pub(crate) const ROLES: [Role; 2] = [Role::Server, Role::Client];

/// Declares each case as a module with one test per role: `name::server` and `name::client`.
#[allow(unused_macros)]
macro_rules! for_both_roles {
    ($($(#[$meta:meta])* fn $name:ident($role:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($role: herald_proto::Role) $body

            #[test]
            fn server() {
                case(herald_proto::Role::Server)
            }

            #[test]
            fn client() {
                case(herald_proto::Role::Client)
            }
        }
    )*};
}

/// The other end.
pub(crate) fn peer(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// A fresh endpoint of `role`; a client draws its keys from [`SEED`].
pub(crate) fn endpoint(role: Role, config: Config) -> Connection {
    match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client(config, Box::new(SeededEntropy::new(SEED))),
    }
}

/// A client whose every masking key is [`KEY`], to reproduce the RFC's bytes.
pub(crate) fn client_with_rfc_key() -> Connection {
    Connection::client(
        Config::default(),
        Box::new(|dst: &mut [u8]| {
            for (i, b) in dst.iter_mut().enumerate() {
                *b = KEY[i % 4];
            }
        }),
    )
}

/// Every event available now.
pub(crate) fn poll_all(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Takes at most `max` queued bytes through the vectored-write interface.
pub(crate) fn take_transmit(conn: &mut Connection, max: usize) -> Vec<u8> {
    let mut slices = [IoSlice::new(&[]); 8];
    let n = conn.transmit_chunks(&mut slices);
    let mut out = Vec::new();
    for slice in &slices[..n] {
        let room = max - out.len();
        out.extend_from_slice(&slice[..slice.len().min(room)]);
    }
    conn.transmit_advance(out.len());
    out
}

/// Every queued byte.
pub(crate) fn transmitted(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    conn.drain_transmit(&mut out);
    out
}

/// A client and a server joined by an in-memory transport, with the events each has seen.
pub(crate) struct Pair {
    pub(crate) client: Connection,
    pub(crate) server: Connection,
    pub(crate) client_events: Vec<Event>,
    pub(crate) server_events: Vec<Event>,
}

impl Pair {
    pub(crate) fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub(crate) fn with_config(config: Config) -> Self {
        Self {
            client: endpoint(Role::Client, config.clone()),
            server: endpoint(Role::Server, config),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    pub(crate) fn get(&mut self, role: Role) -> &mut Connection {
        match role {
            Role::Server => &mut self.server,
            Role::Client => &mut self.client,
        }
    }

    /// Moves at most `max` bytes that `from` queued to its peer, which then polls its events.
    /// Returns how many bytes moved.
    pub(crate) fn deliver_some(&mut self, from: Role, max: usize) -> usize {
        let bytes = take_transmit(self.get(from), max);
        let to = self.get(peer(from));
        to.receive(&bytes);
        let events = poll_all(to);
        self.events_of(peer(from)).extend(events);
        bytes.len()
    }

    /// Moves every byte that `from` queued to its peer.
    pub(crate) fn deliver(&mut self, from: Role) -> usize {
        self.deliver_some(from, usize::MAX)
    }

    /// Moves bytes both ways until neither side has anything queued.
    pub(crate) fn settle(&mut self) {
        while self.deliver(Role::Client) + self.deliver(Role::Server) > 0 {}
    }

    /// Ends the transport as seen by `role`.
    pub(crate) fn eof(&mut self, role: Role) {
        let conn = self.get(role);
        conn.receive_eof();
        let events = poll_all(conn);
        self.events_of(role).extend(events);
    }

    pub(crate) fn events_of(&mut self, role: Role) -> &mut Vec<Event> {
        match role {
            Role::Server => &mut self.server_events,
            Role::Client => &mut self.client_events,
        }
    }

    /// The events `role` has seen since the last call.
    pub(crate) fn take_events(&mut self, role: Role) -> Vec<Event> {
        std::mem::take(self.events_of(role))
    }
}

/// Frame bytes with first byte `b0` (FIN, RSV, opcode), the shortest length form, and the
/// payload masked with `mask` when given.
pub(crate) fn raw_frame(b0: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask_bytewise(&mut out[start..], key, 0);
    }
    out
}

/// A frame as the peer of `receiver` sends it: masked with [`KEY`] when `receiver` is the server.
pub(crate) fn frame_to(receiver: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, (receiver == Role::Server).then_some(KEY), payload)
}

/// A header with `b0` announcing `len` payload bytes in the 64-bit form, for `receiver`.
pub(crate) fn long_header_to(receiver: Role, b0: u8, len: u64) -> Vec<u8> {
    let masked = receiver == Role::Server;
    let mut out = vec![b0, if masked { 0xff } else { 0x7f }];
    out.extend_from_slice(&len.to_be_bytes());
    if masked {
        out.extend_from_slice(&KEY);
    }
    out
}

/// A parsed frame of queued output, payload unmasked.
#[derive(Debug)]
pub(crate) struct WireFrame {
    pub(crate) header: FrameHeader,
    pub(crate) payload: Vec<u8>,
}

/// Splits output bytes into whole frames; panics on a trailing partial frame.
pub(crate) fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (header, len) = FrameHeader::parse(bytes).unwrap().expect("a whole header");
        let end = len + usize::try_from(header.payload_len).unwrap();
        let mut payload = bytes[len..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask_bytewise(&mut payload, key, 0);
        }
        frames.push(WireFrame { header, payload });
        bytes = &bytes[end..];
    }
    frames
}

/// The `Closed` that ends `events`; panics when the last event is another.
pub(crate) fn closed(events: &[Event]) -> &Closed {
    match events.last() {
        Some(Event::Closed(closed)) => closed,
        other => panic!("expected Closed last, got {other:?}"),
    }
}

/// Feeds `input` to a fresh `role` endpoint with `config` and checks that the endpoint fails
/// the connection (RFC 6455 §7.1.7) with `error`: `Event::Closed` carries it, the queued Close
/// frame has its code and a reason, and later input and commands are refused. Returns the
/// events before `Closed`.
pub(crate) fn assert_fails(
    role: Role,
    config: Config,
    input: &[u8],
    error: ProtocolError,
) -> Vec<Event> {
    let mut conn = endpoint(role, config);
    conn.receive(input);
    let mut events = poll_all(&mut conn);
    assert_failed(role, &mut conn, &events, &error);
    events.pop();
    events
}

/// The checks of [`assert_fails`] on an endpoint that just reported `events`.
pub(crate) fn assert_failed(
    role: Role,
    conn: &mut Connection,
    events: &[Event],
    error: &ProtocolError,
) {
    let closed = closed(events);
    assert_eq!(closed.error.as_ref(), Some(error));
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.received, None);
    assert_eq!(closed.code().as_u16(), 1006);
    assert!(!closed.is_clean());
    let sent = closed.sent.as_ref().expect("a Close frame was sent");
    assert_eq!(sent.code, error.close_code());
    assert!(conn.is_closed());
    assert!(conn.should_close_transport());

    let frames = parse_frames(&transmitted(conn));
    let close = frames.last().expect("a Close frame is queued");
    assert_eq!(close.header.opcode, Opcode::Close);
    assert_eq!(close.header.mask.is_some(), role == Role::Client);
    assert_eq!(
        close.payload[..2],
        error.close_code().as_u16().to_be_bytes()
    );
    assert!(close.payload.len() > 2, "the Close frame gives a reason");
    assert!(close.payload.len() <= 125);
    assert!(std::str::from_utf8(&close.payload[2..]).is_ok());

    // Later input is ignored and nothing more is sent.
    conn.receive(&frame_to(role, 0x81, b"late"));
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.send_text("late"), Err(MisuseError::Closed));
    assert_eq!(conn.transmit_len(), 0);
}
