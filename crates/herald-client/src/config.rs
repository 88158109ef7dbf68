//! Client settings with documented defaults.

use crate::{Backoff, Token};
use std::sync::Arc;
use std::time::Duration;

/// Settings of a [`Client`](crate::Client): where, with which token, how to reconnect, and
/// the bounds on what it holds.
///
/// ```
/// use std::time::Duration;
/// use herald_client::{ClientConfig, Token};
///
/// let config = ClientConfig::new("wss://hub.example/ws")
///     .token(Token::Static("eyJhbGciOi...".into()))
///     .command_timeout(Duration::from_secs(5));
/// assert!(config.reconnect);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The hub's `ws://` or `wss://` URL, e.g. `wss://hub.example/ws`.
    pub url: String,
    /// The token sent as `Authorization: Bearer` at each connect. Default none.
    pub token: Token,
    /// Reconnect after a close whose code asks for it (`Disconnect::should_reconnect`), a
    /// lost connection or a failed connect. Default true. With false the client ends at the
    /// first disconnect, and a failed first connect ends it too.
    pub reconnect: bool,
    /// Delays between reconnect attempts. Default 500 ms doubling to 20 s, full jitter.
    pub backoff: Backoff,
    /// The longest a command waits for its reply, counted from the call, including the time
    /// it waits for a connection. Default 10 s. An unanswered resubscribe or catch-up read
    /// this long drops the connection as dead.
    pub command_timeout: Duration,
    /// Silence tolerated beyond the server's `ping_interval` before the client asks with a
    /// `ping` command. Default 5 s.
    pub ping_margin: Duration,
    /// How long that `ping` may take before the connection is dropped as dead. Default 10 s.
    pub ping_timeout: Duration,
    /// Commands sent or waiting for a connection, at most. Default 1024. Past it a command
    /// fails at once with [`Error::TooManyPending`](crate::Error::TooManyPending): a hub that
    /// never answers cannot make the client remember commands without end.
    pub max_pending: usize,
    /// Channels held at most, the application's and the server's together. Default 1024. A
    /// `subscribed` push past it is ignored (and logged), so a server cannot grow the table
    /// without end.
    pub max_subscriptions: usize,
    /// Live publications held per channel while the client reads what it missed on a
    /// server-side subscription. Default 1024. Past it the client stops the catch-up and
    /// reports `recovered: false` (the application reloads) rather than buffer more.
    pub max_buffered: usize,
    /// Events queued for the application. Default 256. When the queue is full the client
    /// stops reading the connection until the application takes events (TCP back-pressure
    /// then reaches the hub, which drops a consumer that is too slow with 4001; the client
    /// reconnects and recovers).
    pub event_capacity: usize,
    /// The longest the TCP connect, then the TLS handshake, may take each. Default 10 s.
    pub connect_timeout: Duration,
    /// WebSocket settings: message and frame limits (default 4 MiB each here, the hub
    /// replies with at most 1 MiB), handshake and close timeouts. Keepalive Pings are off by
    /// default: the client watches silence with `ping` commands instead, as herald.js does.
    pub websocket: herald::Config,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The `Origin` header, for hubs that check it.
    pub origin: Option<String>,
    /// Subprotocols offered before `herald.v1` (for a proxy that wants its own).
    pub subprotocols: Vec<String>,
    /// TLS settings for `wss://` (default: the platform's roots); see `herald::tls`.
    pub tls: Option<Arc<herald::tls::ClientConfig>>,
}

impl ClientConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: Token::None,
            reconnect: true,
            backoff: Backoff::default(),
            command_timeout: Duration::from_secs(10),
            ping_margin: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            max_pending: 1024,
            max_subscriptions: 1024,
            max_buffered: 1024,
            event_capacity: 256,
            connect_timeout: Duration::from_secs(10),
            websocket: herald::Config::default()
                .max_frame_size(4 << 20)
                .max_message_size(4 << 20)
                .keepalive_interval(None),
            headers: Vec::new(),
            origin: None,
            subprotocols: Vec::new(),
            tls: None,
        }
    }

    /// Sets [`token`](Self::token).
    pub fn token(mut self, token: Token) -> Self {
        self.token = token;
        self
    }

    /// Sets [`reconnect`](Self::reconnect).
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Sets [`backoff`](Self::backoff).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`command_timeout`](Self::command_timeout).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets [`ping_margin`](Self::ping_margin) and [`ping_timeout`](Self::ping_timeout).
    pub fn liveness(mut self, margin: Duration, timeout: Duration) -> Self {
        self.ping_margin = margin;
        self.ping_timeout = timeout;
        self
    }

    /// Sets [`max_pending`](Self::max_pending).
    pub fn max_pending(mut self, commands: usize) -> Self {
        self.max_pending = commands;
        self
    }

    /// Sets [`max_subscriptions`](Self::max_subscriptions).
    pub fn max_subscriptions(mut self, channels: usize) -> Self {
        self.max_subscriptions = channels;
        self
    }

    /// Sets [`max_buffered`](Self::max_buffered).
    pub fn max_buffered(mut self, publications: usize) -> Self {
        self.max_buffered = publications;
        self
    }

    /// Sets [`event_capacity`](Self::event_capacity).
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`websocket`](Self::websocket).
    pub fn websocket(mut self, config: herald::Config) -> Self {
        self.websocket = config;
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`origin`](Self::origin).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers `protocol` before `herald.v1`.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Sets [`tls`](Self::tls).
    pub fn tls(mut self, tls: Arc<herald::tls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The handshake for one connection, with `token` if any.
    pub(crate) fn builder(&self, token: Option<&str>) -> herald::Result<herald::ClientBuilder> {
        let mut builder = herald::ClientBuilder::new(&self.url)?;
        for (name, value) in &self.headers {
            builder = builder.header(name, value)?;
        }
        if let Some(token) = token {
            builder = builder.header("Authorization", &format!("Bearer {token}"))?;
        }
        if let Some(origin) = &self.origin {
            builder = builder.origin(origin);
        }
        for protocol in &self.subprotocols {
            builder = builder.subprotocol(protocol);
        }
        builder = builder
            .subprotocol(herald_hub_protocol::SUBPROTOCOL)
            .config(self.websocket.clone())
            .connect_timeout(self.connect_timeout);
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(tls.clone());
        }
        Ok(builder)
    }
}
