//! The hub's configuration: every field has a default, a meaning and the failure it bounds.
//! `herald serve` reads it from TOML, `HERALD_*` variables and flags (docs/operations.md).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `run` needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Where to listen. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `memory` (default) or a broker URL.
    pub broker: String,
    /// TLS: with both files set the server speaks `https://` and `wss://` only.
    pub tls: TlsConfig,
    /// Browser Origin policy, checked before the upgrade (403).
    pub origins: OriginConfig,
    /// Handshake authentication (401) and channel permissions.
    pub auth: AuthConfig,
    /// The HTTP API for backends.
    pub api: ApiConfig,
    /// History kept per channel, for recovery.
    pub history: HistoryConfig,
    /// Connection and traffic limits.
    pub limits: LimitsConfig,
    /// Server pings.
    pub heartbeat: HeartbeatConfig,
    /// Plain mode: rooms from paths and query parameters.
    pub plain: PlainConfig,
    /// Presence and join/leave events.
    pub presence: PresenceConfig,
    /// Offer permessage-deflate (RFC 7692) to clients. Default true.
    pub deflate: bool,
    /// How long graceful shutdown waits for connections to close after sending 1001.
    /// Default 5 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            broker: "memory".into(),
            tls: TlsConfig::default(),
            origins: OriginConfig::default(),
            auth: AuthConfig::default(),
            api: ApiConfig::default(),
            history: HistoryConfig::default(),
            limits: LimitsConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            plain: PlainConfig::default(),
            presence: PresenceConfig::default(),
            deflate: true,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// TLS certificate and key (PEM files).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// Private key, PEM.
    pub key: Option<PathBuf>,
}

/// Which browser origins may open connections.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// Allowed origins: exact (`https://app.example.com`) or wildcard
    /// (`https://*.example.com`, `*.example.com` for any scheme). Default empty.
    pub allowed: Vec<String>,
    /// Allow an Origin whose host and port equal the request's Host (the page the server
    /// itself serves). Default true.
    pub allow_same_host: bool,
    /// Allow requests without an Origin header (non-browser clients). Default true.
    pub allow_missing: bool,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            allow_same_host: true,
            allow_missing: true,
        }
    }
}

/// JWT verification and the anonymous policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret. With any key configured, tokens are verified.
    pub hs256_secret: Option<String>,
    /// RS256 public key, PEM file.
    pub rs256_public_key: Option<PathBuf>,
    /// ES256 public key, PEM file.
    pub es256_public_key: Option<PathBuf>,
    /// Let connections without a token in. Default: true when no key is configured, false
    /// otherwise.
    pub allow_anonymous: Option<bool>,
    /// Channel patterns anonymous connections may subscribe to. Default `["*"]`.
    pub anonymous_subscribe: Vec<String>,
    /// Channel patterns anonymous connections may publish to. Default `["*"]`.
    pub anonymous_publish: Vec<String>,
    /// Cookie that may carry the token. Default `herald_token`.
    pub cookie: String,
    /// Query parameter that may carry the token. Default `token`.
    pub query_param: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            rs256_public_key: None,
            es256_public_key: None,
            allow_anonymous: None,
            anonymous_subscribe: vec!["*".into()],
            anonymous_publish: vec!["*".into()],
            cookie: "herald_token".into(),
            query_param: "token".into(),
        }
    }
}

impl AuthConfig {
    /// Whether any verification key is configured.
    pub fn has_key(&self) -> bool {
        self.hs256_secret.is_some()
            || self.rs256_public_key.is_some()
            || self.es256_public_key.is_some()
    }

    /// Whether anonymous connections are let in.
    pub fn anonymous(&self) -> bool {
        self.allow_anonymous.unwrap_or(!self.has_key())
    }
}

/// The HTTP API.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The key a backend sends in `X-API-Key` (or `Authorization: apikey KEY`). Without it
    /// the API answers 403 to everything.
    pub key: Option<String>,
}

/// History per channel.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Publications kept per channel (0 disables history and recovery). Default 100.
    pub size: usize,
    /// How long a publication is kept. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            size: 100,
            ttl: Duration::from_secs(300),
        }
    }
}

/// Limits. Each stops one way a client (or many) could exhaust the server.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open connections (WebSocket and HTTP) at once; more get 503. Default 20,000.
    pub max_connections: usize,
    /// WebSocket connections per client IP; more get 429. 0: no limit. Default 0.
    pub max_connections_per_ip: usize,
    /// Largest message a client may send, in bytes; larger closes with 1009. Default 64 KiB.
    pub max_message_size: usize,
    /// Subscriptions per connection; more get error 106. Default 128.
    pub max_subscriptions: usize,
    /// Publishes per second per connection (sustained). 0: no limit. Default 50.
    pub publish_rate: u32,
    /// Publishes a connection may make in a burst above the rate. Over it: error 108 (plain
    /// mode: close 1008); a connection that keeps going gets 1008 after another burst.
    /// Default 100.
    pub publish_burst: u32,
    /// Outgoing messages queued per connection; a connection whose queue overflows is closed
    /// with 4001 (reconnect and recover). Default 1024.
    pub queue_size: usize,
    /// Time from TCP accept to a complete HTTP request head. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A connection holding no subscription and sending nothing this long is closed with
    /// 4502. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_connections_per_ip: 0,
            max_message_size: 64 << 10,
            max_subscriptions: 128,
            publish_rate: 50,
            publish_burst: 100,
            queue_size: 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Server pings.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Ping a connection that was silent this long. Default 25 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Close (1011) a connection that does not answer a ping in this time. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(25),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Plain mode.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlainConfig {
    /// Paths served in plain mode, and the query parameters that name the room. Default:
    /// `/chat` with `groupId` (`/chat?groupId=1234` is room `chat:1234`).
    pub routes: Vec<PlainRoute>,
    /// Deliver a client's own messages back to it. Default false.
    pub echo: bool,
}

impl Default for PlainConfig {
    fn default() -> Self {
        Self {
            routes: vec![PlainRoute {
                path: "/chat".into(),
                params: vec!["groupId".into()],
            }],
            echo: false,
        }
    }
}

/// One plain-mode path.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlainRoute {
    /// The path, e.g. `/chat`.
    pub path: String,
    /// Query parameters appended to the room name, in order; each is required.
    #[serde(default)]
    pub params: Vec<String>,
}

/// Presence.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Track who is subscribed to each channel. Default true.
    pub enabled: bool,
    /// Allow `join` and `leave` pushes to subscribers that ask for them (`join_leave` in
    /// `subscribe`). Default true.
    pub join_leave: bool,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            join_leave: true,
        }
    }
}
