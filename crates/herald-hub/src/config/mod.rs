//! The hub's configuration: every field has a default, a meaning and the failure it bounds.
//! `herald serve` reads it from TOML, `HERALD_*` variables and flags (docs/operations.md).
//! The rules between fields are [`HubConfig::validate`]'s.

mod broker;
mod hooks;
mod namespace;
mod pusher;
mod users;
mod validate;
mod webhooks;

pub use broker::BrokerConfig;
pub use hooks::{CommandHookConfig, ConnectHookConfig, HooksConfig};
pub use namespace::{MAX_HISTORY_SIZE, MAX_NAMESPACES, NamespaceConfig};
pub use pusher::{MAX_PUSHER_APPS, PusherApp, PusherConfig, PusherLimits};
pub use users::UsersConfig;
pub use validate::{ConfigError, NamespaceProblem, RouteProblem};
pub use webhooks::{WEBHOOK_EVENTS, WebhooksConfig};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `run` needs. [`HubConfig::validate`] checks what the types cannot.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Where to listen. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `memory` (default) or a Redis URL.
    pub broker: BrokerConfig,
    /// TLS: with both files set the server speaks `https://` and `wss://` only.
    pub tls: TlsConfig,
    /// Browser Origin policy, checked before the upgrade (403).
    pub origins: OriginConfig,
    /// Handshake authentication (401) and channel permissions.
    pub auth: AuthConfig,
    /// The HTTP API for backends.
    pub api: ApiConfig,
    /// The operator's page at `/admin`.
    pub admin: AdminConfig,
    /// Calls to the application's backend (the connect, subscribe, publish and RPC hooks).
    pub hooks: HooksConfig,
    /// Events to the application's backend (`channel_occupied`, `user_online`, …).
    pub webhooks: WebhooksConfig,
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
    /// The Redis broker's timings (with a `redis://` broker).
    pub redis: RedisConfig,
    /// Personal channels.
    pub users: UsersConfig,
    /// Namespaces, `[namespaces.NAME]`: the rules for channels named `NAME:…`. None
    /// configured (the default): namespacing is off and every channel follows the default
    /// namespace's rules (the top-level `history`, `presence` and `auth.anonymous_*`). With at
    /// least one, a channel whose prefix is not configured is refused (error 112).
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// The Pusher Channels protocol and HTTP API, for the apps in `[[pusher.apps]]`.
    pub pusher: PusherConfig,
    /// Offer permessage-deflate (RFC 7692) to clients. Default true.
    pub deflate: bool,
    /// Serve HTTP/2 besides HTTP/1.1: h2 chosen by ALPN over TLS, h2c with prior knowledge
    /// on a plain listener, WebSockets over either by extended CONNECT (RFC 8441). Default
    /// true.
    pub http2: bool,
    /// How long graceful shutdown waits for connections to close after sending 1001.
    /// Default 5 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long, at shutdown, an HTTP connection (not a WebSocket) may take to finish the
    /// request it is serving before it is closed; an idle one closes at once. Bounds a slow
    /// API client holding up shutdown. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_http_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            broker: BrokerConfig::Memory,
            tls: TlsConfig::default(),
            origins: OriginConfig::default(),
            auth: AuthConfig::default(),
            api: ApiConfig::default(),
            admin: AdminConfig::default(),
            hooks: HooksConfig::default(),
            webhooks: WebhooksConfig::default(),
            history: HistoryConfig::default(),
            limits: LimitsConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            plain: PlainConfig::default(),
            presence: PresenceConfig::default(),
            redis: RedisConfig::default(),
            users: UsersConfig::default(),
            namespaces: BTreeMap::new(),
            pusher: PusherConfig::default(),
            deflate: true,
            http2: true,
            shutdown_timeout: Duration::from_secs(5),
            shutdown_http_timeout: Duration::from_secs(1),
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
    /// itself serves), when that Host is trusted: one of `public_hosts` or a loopback host
    /// (`localhost`, `127.0.0.0/8`, `[::1]`). Default true.
    pub allow_same_host: bool,
    /// Allow requests without an Origin header (non-browser clients). Default true.
    pub allow_missing: bool,
    /// The host names (`host` or `host:port`) this server is reached by. The same-host rule
    /// trusts a request's Host header only when it is one of these or a loopback address, so
    /// a page on an attacker's domain that resolves to this server (DNS rebinding) is not
    /// "same host". Case-insensitive; an entry without a port matches the host on any port,
    /// one with a port only that port. Default empty.
    pub public_hosts: Vec<String>,
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            allow_same_host: true,
            allow_missing: true,
            public_hosts: Vec::new(),
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
    /// Channel patterns anonymous connections may subscribe to. Unset: `["*"]` when no key
    /// is configured, none when one is (a server that verifies tokens does not hand every
    /// channel to whoever comes without one). Read it with
    /// [`anonymous_subscribe_patterns`](Self::anonymous_subscribe_patterns).
    pub anonymous_subscribe: Option<Vec<String>>,
    /// Channel patterns anonymous connections may publish to. Unset: `["*"]` when no key is
    /// configured, none when one is. Read it with
    /// [`anonymous_publish_patterns`](Self::anonymous_publish_patterns).
    pub anonymous_publish: Option<Vec<String>>,
    /// Cookie that may carry the token. Default `herald_token`.
    pub cookie: String,
    /// Query parameter that may carry the token. Default `token`.
    pub query_param: String,
    /// When set, a token's `iss` claim must equal it (a token without one is refused).
    /// Default unset: `iss` is not read.
    pub issuer: Option<String>,
    /// When set, a token's `aud` claim (a string, or an array of them) must contain it (a
    /// token without one is refused). Default unset: `aud` is not read.
    pub audience: Option<String>,
    /// How long before a token's `exp` a protocol-mode connection is sent the `refresh` push:
    /// this long, or half the time left when less than twice this is left. 0 sends none.
    /// Default 60 s.
    #[serde(with = "humantime_serde")]
    pub refresh_notice: Duration,
    /// An `http://` or `https://` URL serving a JSON Web Key Set (RFC 7517): tokens whose
    /// header `kid` names one of its keys (RS256, ES256, EdDSA) are verified with it. Default
    /// unset.
    pub jwks_url: Option<String>,
    /// How long one JWKS fetch may take, connect to last body byte. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub jwks_timeout: Duration,
    /// The shortest time between two JWKS fetches caused by an unknown `kid`: a flood of
    /// tokens with random `kid`s makes at most one fetch per period. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub jwks_refetch_interval: Duration,
    /// How long fetched keys are used before the set is fetched again (on the next token that
    /// needs them; a failed fetch keeps the old keys). Default 1 h.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            hs256_secret: None,
            rs256_public_key: None,
            es256_public_key: None,
            allow_anonymous: None,
            anonymous_subscribe: None,
            anonymous_publish: None,
            cookie: "herald_token".into(),
            query_param: "token".into(),
            issuer: None,
            audience: None,
            refresh_notice: Duration::from_secs(60),
            jwks_url: None,
            jwks_timeout: Duration::from_secs(5),
            jwks_refetch_interval: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
        }
    }
}

impl AuthConfig {
    /// Whether any verification key is configured.
    pub fn has_key(&self) -> bool {
        self.hs256_secret.is_some()
            || self.rs256_public_key.is_some()
            || self.es256_public_key.is_some()
            || self.jwks_url.is_some()
    }

    /// Whether anonymous connections are let in.
    pub fn anonymous(&self) -> bool {
        self.allow_anonymous.unwrap_or(!self.has_key())
    }

    /// The channel patterns anonymous connections may subscribe to: the configured ones, or
    /// the default (`*` without a key, none with one).
    pub fn anonymous_subscribe_patterns(&self) -> Vec<String> {
        self.anonymous_subscribe
            .clone()
            .unwrap_or_else(|| self.anonymous_default())
    }

    /// The channel patterns anonymous connections may publish to: the configured ones, or the
    /// default (`*` without a key, none with one).
    pub fn anonymous_publish_patterns(&self) -> Vec<String> {
        self.anonymous_publish
            .clone()
            .unwrap_or_else(|| self.anonymous_default())
    }

    /// Whether a connection without a token may publish somewhere.
    pub fn anonymous_may_publish(&self) -> bool {
        self.anonymous() && !self.anonymous_publish_patterns().is_empty()
    }

    fn anonymous_default(&self) -> Vec<String> {
        if self.has_key() {
            Vec::new()
        } else {
            vec!["*".into()]
        }
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

/// The shortest `admin.password`, in bytes.
pub const MIN_ADMIN_PASSWORD: usize = 12;

/// The operator's page at `/admin` and the JSON it reads, behind HTTP Basic credentials of
/// their own (not the API key: an operator's browser need not hold the backends' secret).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve `/admin`. Default false: the path answers 404.
    pub enabled: bool,
    /// The user name the page asks for. Default `admin`.
    pub user: String,
    /// The password; required when `enabled` (at least 12 bytes).
    pub password: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            user: "admin".into(),
            password: None,
        }
    }
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
    /// Channels with retained history on this node (memory broker) at once; a publish to a
    /// new channel past it gets error 106 (HTTP 507). Bounds memory against unique channel
    /// names. 0: no limit. Default 100,000.
    pub max_channels: usize,
    /// Payload bytes the memory broker retains over all channels; past it the oldest
    /// publications of the publishing channel go first, then a publish to a channel with
    /// nothing retained gets error 106 (HTTP 507). 0: no limit. Default 256 MiB.
    pub max_bytes: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            size: 100,
            ttl: Duration::from_secs(300),
            max_channels: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// Limits. Each stops one way a client (or many) could exhaust the server.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open connections (WebSocket and HTTP) at once; more get 503. Default 20,000.
    pub max_connections: usize,
    /// Open connections (HTTP and WebSocket alike) per client address, counted at TCP accept:
    /// an IPv4 address, or the /64 of an IPv6 address (an IPv4-mapped address counts as its
    /// IPv4). One more gets a short 429 with `Connection: close` before anything of it is
    /// read. Behind a proxy every client shares the proxy's address. 0: no limit. Default 0.
    pub max_connections_per_ip: usize,
    /// HTTP/2 streams (WebSockets and requests) a client may have open at once on one
    /// connection, announced as `SETTINGS_MAX_CONCURRENT_STREAMS`; the client must wait for
    /// one to end before it opens more. Each WebSocket on a stream also takes a slot of
    /// `max_connections` (503 when none is free). Default 100.
    pub max_streams_per_connection: usize,
    /// Open connections per user id over every node (the broker counts them); one more is
    /// closed with 4503 right after the upgrade. Anonymous connections are not counted (the
    /// per-IP limit bounds them). 0: no limit. Default 0.
    pub max_connections_per_user: usize,
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
    /// Time from TCP accept to a complete first HTTP request head, TLS handshake included;
    /// then, on a kept-alive connection, the time each later head may take, idle time
    /// included. Past it the connection is closed without an answer. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A connection holding no subscription and sending no data message this long is closed
    /// with 4502 (Pings do not count). 0: never. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A connection whose queued writes make no progress this long (its client stopped
    /// reading) is dropped with 4004 and its slots freed. 0: no limit. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Command cost units per second per connection, sustained, over every command (a ping
    /// costs 1, a reply costs 1 more per 4 KiB). 0: no limit. Default 200.
    pub command_rate: u32,
    /// Cost units a connection may spend in a burst above the rate; over it a command gets
    /// error 108, and a connection that keeps going is closed with 1008. Default 400.
    pub command_burst: u32,
    /// Largest reply to one command, in bytes: `history` returns fewer publications, a
    /// recovery that would not fit answers `recovered: false`. Default 1 MiB.
    pub max_reply_size: usize,
    /// Time an HTTP API request's body may take, from the end of its head (the head has
    /// `handshake_timeout`); past it the answer is 408 and the connection is closed. Bounds
    /// slow bodies. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// After the server sends a Close (shutdown, a limit, an expired token) or answers one,
    /// how long the client has to complete the closing handshake (RFC 6455 §7.1.1) before the
    /// connection is dropped (counted as 1006). herald's `close_timeout`. Bounds a client that
    /// never answers. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub close_timeout: Duration,
    /// How long writing the 503 or 429 to a connection refused at accept may take before the
    /// socket is closed: a client that does not read cannot keep it. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub refusal_timeout: Duration,
    /// A long-polling session (`/poll`) with no poll held and none arriving this long ends
    /// with 4004, as a client that stopped reading. Bounds sessions whose client vanished.
    /// Default 30 s.
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
    /// An HTTP/2 connection with no request and no WebSocket under way this long is closed
    /// (GOAWAY NO_ERROR): an idle connection holds no slot for ever. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub http2_idle_timeout: Duration,
    /// Streams an HTTP/2 client may reset (or make the server reset) before they were served;
    /// more gets GOAWAY ENHANCE_YOUR_CALM. Stops the rapid-reset flood (CVE-2023-44487).
    /// Default 20.
    pub http2_max_pending_resets: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            max_connections_per_ip: 0,
            max_streams_per_connection: 100,
            max_connections_per_user: 0,
            max_message_size: 64 << 10,
            max_subscriptions: 128,
            publish_rate: 50,
            publish_burst: 100,
            queue_size: 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            command_rate: 200,
            command_burst: 400,
            max_reply_size: 1 << 20,
            request_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            refusal_timeout: Duration::from_secs(1),
            poll_timeout: Duration::from_secs(30),
            http2_idle_timeout: Duration::from_secs(60),
            http2_max_pending_resets: 20,
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
    /// Join and leave pushes per second per channel on one node; more are dropped (and
    /// counted), so subscribe churn cannot flood a channel's subscribers. 0: no limit.
    /// Default 50.
    pub join_leave_rate: u32,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            join_leave: true,
            join_leave_rate: 50,
        }
    }
}

/// The Redis broker's timings (herald-redis's `RedisOptions`, with these defaults). The memory
/// broker reads none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// How long one operation (publish, history, presence, SUBSCRIBE, a health check) may
    /// take. Past it a read fails as unavailable (reply 109), a publish as outcome unknown
    /// (reply 111: it may have been stored), and health turns degraded until Redis answers
    /// again. Bounds how long a stalled Redis holds a client's command. Default 3 s.
    #[serde(with = "humantime_serde")]
    pub op_timeout: Duration,
    /// How long opening a connection may take. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The longest wait between attempts to reconnect the command connection. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub max_reconnect_delay: Duration,
    /// How often the node PINGs Redis to know its health. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    /// How long a member stays listed without a refresh from its node: a crashed node's
    /// members disappear after it. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub member_lifetime: Duration,
    /// How often a node refreshes (and re-adds, if Redis lost them) the members it holds;
    /// shorter than `member_lifetime`, and well under it. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub refresh_every: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            op_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            max_reconnect_delay: Duration::from_secs(2),
            check_every: Duration::from_secs(1),
            member_lifetime: Duration::from_secs(30),
            refresh_every: Duration::from_secs(10),
        }
    }
}
