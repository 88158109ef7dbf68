//! Connection settings with documented defaults.

use std::time::Duration;

/// Settings for a client or server connection.
///
/// Every limit names the attack or failure it bounds; the defaults suit a public server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Protocol limits: maximum frame size (default 16 MiB) and message size (default 64 MiB).
    /// Larger input fails the connection with 1009.
    pub protocol: herald_proto::Config,
    /// Handshake limits: head size (16 KiB), header count (64).
    pub handshake_limits: herald_proto::handshake::HandshakeLimits,
    /// The longest the opening handshake may take, from the first byte to the 101. Default
    /// 10 s. Stops a peer from holding a connection open without ever completing the handshake.
    pub handshake_timeout: Duration,
    /// The largest routine read, in bytes. Reads start at 512 bytes (an idle connection holds
    /// little) and double, up to this, while each read fills its room. Default 4 KiB. A frame
    /// in progress is read whole, whatever its size (at most `max_frame_size`).
    pub read_buffer_size: usize,
    /// Once this many bytes are queued, sending writes them out before queuing more. Default
    /// 128 KiB. Smaller sends are batched until the next flush.
    pub write_buffer_size: usize,
    /// Back-pressure: while at least this many bytes are queued, `send` waits for the peer to
    /// read. Default 1 MiB. Memory per connection stays under this plus one message.
    pub max_write_buffer_size: usize,
    /// Send a Ping when the peer was silent for a whole interval (so after one to two
    /// intervals of silence). Default 20 s; `None` turns keepalive off.
    pub keepalive_interval: Option<Duration>,
    /// Close the connection when the peer stays silent this long after a keepalive Ping.
    /// Default 20 s.
    pub keepalive_timeout: Duration,
    /// permessage-deflate (RFC 7692): `None` (the default) neither offers nor accepts it.
    /// A server accepts the first offer it can honour; a client offers it and checks the answer.
    /// Compression state is allocated on a connection's first compressed message (up to about
    /// 300 KiB at window bits 15, see docs/performance.md).
    pub deflate: Option<herald_proto::DeflateConfig>,
    /// How long to wait for the peer's Close (and, for a client, for the server to close the
    /// TCP connection) before dropping the connection. Default 5 s.
    pub close_timeout: Duration,
    /// Fail the connection with [`Error::WriteTimeout`](crate::Error::WriteTimeout) when bytes
    /// are queued and the transport accepts none of them this long (in fact between one and
    /// two timeouts: progress is checked when the timer fires). Default 30 s; `None` waits
    /// forever.
    ///
    /// Stops a peer that stopped reading from holding a connection, its queue (up to
    /// `max_write_buffer_size`) and the task sending to it. It fires from `recv`/the stream and
    /// from `feed`/`send`/`flush` waiting on back-pressure. A timer exists only while a write is
    /// blocked.
    pub write_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            protocol: herald_proto::Config::default(),
            handshake_limits: herald_proto::handshake::HandshakeLimits::default(),
            handshake_timeout: Duration::from_secs(10),
            read_buffer_size: 4 << 10,
            write_buffer_size: 128 << 10,
            max_write_buffer_size: 1 << 20,
            keepalive_interval: Some(Duration::from_secs(20)),
            keepalive_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            write_timeout: Some(Duration::from_secs(30)),
            deflate: None,
        }
    }
}

impl Config {
    /// Sets the maximum frame and message sizes.
    pub fn max_message_size(mut self, frame: usize, message: usize) -> Self {
        self.protocol = self
            .protocol
            .with_max_frame_size(frame)
            .with_max_message_size(message);
        self
    }

    /// Sets the keepalive interval (`None`: off) and timeout.
    pub fn keepalive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }

    /// Sets the write buffer's flush threshold and back-pressure cap.
    pub fn write_buffer(mut self, flush_at: usize, cap: usize) -> Self {
        self.write_buffer_size = flush_at;
        self.max_write_buffer_size = cap;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Turns permessage-deflate on with `deflate`, or off with `None`.
    pub fn deflate(mut self, deflate: Option<herald_proto::DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// Sets the close timeout.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets the write timeout (`None`: writes wait forever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }
}
