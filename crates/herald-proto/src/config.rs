//! Limits and options of a connection.

/// Which end of the connection this endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepts connections; receives masked frames, sends unmasked ones.
    Server,
    /// Opens connections; masks every frame it sends with a fresh key (RFC 6455 §5.3).
    Client,
}

/// Limits of a connection. Every limit is checked from a frame's header, before a byte of its
/// payload is buffered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted, in bytes. Default 16 MiB.
    ///
    /// Stops a peer from making this endpoint buffer one huge frame; over it, the connection
    /// fails with 1009.
    pub max_frame_size: usize,
    /// The largest message accepted (all its fragments together), in bytes. Default 64 MiB.
    ///
    /// Stops a peer from growing a fragmented message without end; over it, the connection fails
    /// with 1009.
    pub max_message_size: usize,
    /// Above this many queued outgoing bytes, a Ping is not answered at once: at most one Pong
    /// waits, carrying the latest Ping's payload, and is queued once the transmit queue drains
    /// to this size (RFC 6455 §5.5.3 lets an endpoint answer only the most recent Ping). A
    /// Close queued first drops it. Default 64 KiB.
    ///
    /// Stops a peer that sends Pings and never reads from growing the queue by a Pong per
    /// Ping; below it, every Ping is answered in order.
    pub pong_coalesce_threshold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            pong_coalesce_threshold: 64 << 10,
        }
    }
}

impl Config {
    /// Sets [`max_frame_size`](Self::max_frame_size).
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`pong_coalesce_threshold`](Self::pong_coalesce_threshold).
    pub fn with_pong_coalesce_threshold(mut self, bytes: usize) -> Self {
        self.pong_coalesce_threshold = bytes;
        self
    }
}

/// A source of random bytes for masking keys and handshake keys.
///
/// RFC 6455 §5.3 requires masking keys from "a strong source of entropy"; the async crate
/// injects an OS-seeded generator. Tests inject [`SeededEntropy`] to get byte-exact output.
pub trait Entropy: Send {
    /// Fills `dst` with random bytes.
    fn fill(&mut self, dst: &mut [u8]);
}

impl<F: FnMut(&mut [u8]) + Send> Entropy for F {
    fn fill(&mut self, dst: &mut [u8]) {
        self(dst)
    }
}

/// A deterministic generator (SplitMix64) for tests and fuzzing. Predictable: never use it
/// for real connections.
#[derive(Clone, Debug)]
pub struct SeededEntropy(u64);

impl SeededEntropy {
    /// A generator that always yields the same sequence for the same `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}
