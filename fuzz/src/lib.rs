//! What the fuzz targets share: reading split points out of an input, and the oracles that
//! judge a connection's events and output. The oracle is always "accepted, or rejected with a
//! documented error, never a panic", plus the invariants RFC 6455 puts on what we send.

pub mod frames;
pub mod pair;

use herald_proto::{Config, Connection, DeflateParams, Role, SeededEntropy};

/// A fuzz input read as: one control byte, up to seven piece lengths, then the stream.
/// (The control byte's bits 3–6 also choose permessage-deflate; see [`Input::deflate`].)
#[derive(Debug)]
pub struct Input<'a> {
    /// The lengths to cut the stream into, used in turn; the stream is whole when empty.
    pub lengths: Vec<usize>,
    /// The bytes to feed.
    pub stream: &'a [u8],
    /// Whether to run with small limits, so that the 1009 and 431 paths are reachable.
    pub small_limits: bool,
    /// The control byte, for the optional permessage-deflate parameters.
    control: u8,
}

impl<'a> Input<'a> {
    /// Reads the control byte: bits 0–2 count the length bytes after it, bit 7 asks for
    /// small limits.
    pub fn new(data: &'a [u8]) -> Self {
        let Some((&control, rest)) = data.split_first() else {
            return Self {
                lengths: Vec::new(),
                stream: &[],
                small_limits: false,
                control: 0,
            };
        };
        let n = usize::from(control & 0x07).min(rest.len());
        let (lengths, stream) = rest.split_at(n);
        Self {
            lengths: lengths.iter().map(|&b| usize::from(b) + 1).collect(),
            stream,
            small_limits: control & 0x80 != 0,
            control,
        }
    }

    /// Bit 6 of the control byte turns permessage-deflate on, so that RSV1 frames reach the
    /// inflater; bits 3–5 pick the window (9–15 bits) and bit 5 drops context takeover.
    pub fn deflate(&self) -> Option<DeflateParams> {
        (self.control & 0x40 != 0).then(|| {
            let bits = (9 + ((self.control >> 3) & 0x07)).min(15);
            let no_takeover = self.control & 0x20 != 0;
            DeflateParams {
                server_max_window_bits: bits,
                client_max_window_bits: bits,
                server_no_context_takeover: no_takeover,
                client_no_context_takeover: no_takeover,
            }
        })
    }

    /// The stream cut at the input's lengths, cycling through them.
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        if self.lengths.is_empty() {
            return vec![self.stream];
        }
        let mut out = Vec::new();
        let mut rest = self.stream;
        for &len in self.lengths.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(len.min(rest.len()));
            out.push(piece);
            rest = tail;
        }
        out
    }

    /// The connection limits this input asks for.
    pub fn config(&self) -> Config {
        if self.small_limits {
            Config::default()
                .with_max_frame_size(1024)
                .with_max_message_size(4096)
        } else {
            Config::default()
        }
    }
}

/// A fresh endpoint of `role`; a client draws its keys from a fixed seed.
pub fn endpoint(role: Role, config: Config) -> Connection {
    match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client(config, Box::new(SeededEntropy::new(0))),
    }
}
