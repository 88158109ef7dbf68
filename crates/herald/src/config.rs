//! Connection settings with documented defaults.

use std::time::Duration;

/// Settings for a client or server connection.
///
/// Every limit names the attack or failure it bounds; the defaults suit a public server.
/// Each field has a setter of the same name that sets only it (the protocol limits' setters
/// reach into [`protocol`](Self::protocol)):
///
/// ```
/// let config = herald::Config::default()
///     .max_frame_size(1 << 20)
///     .max_message_size(4 << 20)
///     .keepalive_interval(None);
/// assert_eq!(config.protocol.max_message_size, 4 << 20);
/// ```
///
/// Each connection keeps a compact copy of the read and write buffer sizes (values over
/// 4 GiB count as 4 GiB) and of the close and write timeouts (whole milliseconds, rounded
/// up, at most 49 days), so that an idle connection stays small.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Protocol limits: maximum frame size (default 16 MiB) and message size (default 64 MiB).
    /// Larger input fails the connection with 1009.
    pub protocol: herald_proto::Config,
    /// Handshake limits: head size (16 KiB), header count (64).
    pub handshake_limits: herald_proto::handshake::HandshakeLimits,
    /// The longest the opening handshake's HTTP exchange may take. Default 10 s. Stops a peer
    /// from holding a connection open without ever completing the handshake; past it, the
    /// result is [`Error::HandshakeTimeout`](crate::Error::HandshakeTimeout) and the transport
    /// is dropped unanswered.
    ///
    /// - Server ([`read_request`](crate::read_request), [`accept`](crate::accept),
    ///   [`accept_with`](crate::accept_with)): from the call until the request head has been
    ///   read and checked. It does not cover a TLS handshake: herald does not terminate TLS on
    ///   a server, the caller runs `tls::TlsAcceptor` on the stream before handing it over and
    ///   bounds that itself (e.g. with `tokio::time::timeout`). Nor does it cover what comes
    ///   after the head: the application's decision, and writing the 101 or the refusal.
    /// - Client ([`ClientBuilder::connect`](crate::ClientBuilder::connect) and `connect_on`):
    ///   from writing the request until the response head has been read and checked. The TCP
    ///   connection and the TLS handshake come first, each bounded on its own by
    ///   [`ClientBuilder::connect_timeout`](crate::ClientBuilder::connect_timeout).
    /// - Not used by `upgrade::WebSocketUpgrade` (feature `axum`): hyper read the request
    ///   there, under the HTTP server's own timeouts.
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
    ///
    /// Connections share their keepalive timers: the connections of one runtime with the same
    /// interval and timeout wait on one timer per tick of a sixteenth of the shorter of the two
    /// (at least 1 ms), so each deadline here and in
    /// [`keepalive_timeout`](Self::keepalive_timeout) may pass up to one tick late, never
    /// early. An idle connection holds no timer of its own.
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
    /// Sets the largest frame payload accepted ([`herald_proto::Config::max_frame_size`]).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.protocol = self.protocol.with_max_frame_size(bytes);
        self
    }

    /// Sets the largest message accepted ([`herald_proto::Config::max_message_size`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.protocol = self.protocol.with_max_message_size(bytes);
        self
    }

    /// Sets the queue size past which Pongs are coalesced
    /// ([`herald_proto::Config::pong_coalesce_threshold`]).
    pub fn pong_coalesce_threshold(mut self, bytes: usize) -> Self {
        self.protocol = self.protocol.with_pong_coalesce_threshold(bytes);
        self
    }

    /// Sets [`handshake_limits`](Self::handshake_limits).
    pub fn handshake_limits(mut self, limits: herald_proto::handshake::HandshakeLimits) -> Self {
        self.handshake_limits = limits;
        self
    }

    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`read_buffer_size`](Self::read_buffer_size).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes;
        self
    }

    /// Sets [`write_buffer_size`](Self::write_buffer_size), the flush threshold.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Sets [`max_write_buffer_size`](Self::max_write_buffer_size), the back-pressure cap.
    pub fn max_write_buffer_size(mut self, bytes: usize) -> Self {
        self.max_write_buffer_size = bytes;
        self
    }

    /// Sets [`keepalive_interval`](Self::keepalive_interval) (`None`: keepalive off).
    pub fn keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// Sets [`keepalive_timeout`](Self::keepalive_timeout).
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Sets [`deflate`](Self::deflate): permessage-deflate on with settings, or off with `None`.
    pub fn deflate(mut self, deflate: Option<herald_proto::DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout) (`None`: writes wait forever).
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout;
        self
    }
}
