//! The frame parser harness and the oracles on a connection's events and output.

use crate::{Input, endpoint};
use herald_proto::frame::FrameHeader;
use herald_proto::mask::apply_mask_bytewise;
use herald_proto::{CloseCode, CloseFrame, Closed, Config, Connection, Event, Initiator, Message};
use herald_proto::{DeflateConfig, DeflateParams, Opcode, Role};

/// Feeds the input's stream to an endpoint of `role`, whole and in the input's pieces, then
/// the end of the transport. Both runs must pass the oracles and agree.
pub fn frame_parser(role: Role, data: &[u8]) {
    let input = Input::new(data);
    let config = input.config();
    let deflate = input.deflate();
    let whole = run(role, &config, deflate, &[input.stream]);
    let split = run(role, &config, deflate, &input.pieces());
    assert_eq!(whole, split, "the split of the input changed the outcome");
}

fn run(
    role: Role,
    config: &Config,
    deflate: Option<DeflateParams>,
    pieces: &[&[u8]],
) -> (Vec<Event>, Vec<u8>) {
    let mut conn = endpoint(role, config.clone());
    if let Some(params) = deflate {
        conn = conn.with_deflate(params, &DeflateConfig::default());
    }
    let mut events = Vec::new();
    for piece in pieces {
        conn.receive(piece);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    conn.receive_eof();
    events.extend(std::iter::from_fn(|| conn.poll_event()));
    assert!(
        conn.is_closed(),
        "the end of the transport ends the connection"
    );
    assert!(conn.poll_event().is_none());
    check_events(config, &events);
    let mut out = Vec::new();
    conn.drain_transmit(&mut out);
    check_output(role, &out, false);
    (events, out)
}

/// Events are within the limits, text is UTF-8, and exactly one `Closed` comes last and is
/// consistent with itself.
pub fn check_events(config: &Config, events: &[Event]) {
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Message(message) => check_message(config, message),
            Event::Ping(payload) | Event::Pong(payload) => assert!(payload.len() <= 125),
            Event::Closed(closed) => {
                assert_eq!(i, events.len() - 1, "Closed is the last event");
                check_closed(closed);
            }
        }
    }
}

fn check_message(config: &Config, message: &Message) {
    assert!(message.as_bytes().len() <= config.max_message_size);
    if let Message::Text(text) = message {
        assert!(
            std::str::from_utf8(text.as_bytes()).is_ok(),
            "text is UTF-8"
        );
    }
}

/// How a connection ended, as the documented combinations allow.
pub fn check_closed(closed: &Closed) {
    if let Some(error) = &closed.error {
        let code = error.close_code().as_u16();
        assert!(
            matches!(code, 1002 | 1007 | 1009),
            "{error:?} closes with {code}"
        );
        assert_eq!(closed.initiator, Initiator::Local);
        assert!(closed.received.is_none());
    }
    if let Some(received) = &closed.received {
        let code = received.code;
        assert!(code.is_sendable() || code == CloseCode::NO_STATUS, "{code}");
        assert!(received.reason.len() <= 123);
        assert!(closed.sent.is_some(), "a received Close is answered");
        assert_eq!(closed.code(), code);
    } else {
        assert_eq!(closed.code(), CloseCode::ABNORMAL);
    }
    if let Some(sent) = &closed.sent {
        assert!(sent.code.is_sendable(), "never sends {}", sent.code);
    }
    assert_eq!(
        closed.is_clean(),
        closed.sent.is_some() && closed.received.is_some()
    );
}

/// What an endpoint of `role` sent: whole frames, masked exactly when a client sent them, no
/// reserved bits, control frames whole and short, at most one Close and nothing after it, and
/// data frames (when `data_allowed`) in a valid fragment sequence.
pub fn check_output(role: Role, mut out: &[u8], data_allowed: bool) {
    let mut closed = false;
    let mut in_message = false;
    while !out.is_empty() {
        let (header, len) = FrameHeader::parse(out)
            .expect("our frames parse")
            .expect("our frames are whole");
        assert!(!closed, "nothing after a Close");
        assert_eq!(header.mask.is_some(), role == Role::Client);
        assert_eq!(header.rsv, 0);
        let end = len + usize::try_from(header.payload_len).expect("fits");
        let mut payload = out[len..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask_bytewise(&mut payload, key, 0);
        }
        if header.opcode.is_control() {
            assert!(header.fin && payload.len() <= 125);
        } else {
            assert!(data_allowed, "only control frames expected");
            assert_eq!(header.opcode == Opcode::Continuation, in_message);
            in_message = !header.fin;
        }
        if header.opcode == Opcode::Close {
            let frame = CloseFrame::parse(payload.into()).expect("our Close frames are valid");
            assert_ne!(
                frame.code,
                CloseCode::NO_STATUS,
                "our Close frames carry a code"
            );
            closed = true;
        }
        out = &out[end..];
    }
}

/// Every event `conn` has now.
pub fn poll_all(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}
