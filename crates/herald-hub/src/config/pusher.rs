//! `[pusher]`: the Pusher Channels protocol (version 7) at `/app/{key}` and Pusher's HTTP
//! API at `/apps/{id}/…`, for the apps listed in `[[pusher.apps]]` (TOML only).
//!
//! Each app's channels are hub channels in the app's namespace (`pusher-ID:` unless set), so
//! apps are isolated from each other and a `herald.v1` client in `pusher-ID:my-channel`
//! shares the channel with the Pusher clients in `my-channel`.

use serde::Deserialize;
use std::time::Duration;

/// Most `[[pusher.apps]]`: the lookup is by key and id, but apps are meant to be few.
pub const MAX_PUSHER_APPS: usize = 1000;

/// The Pusher protocol's settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PusherConfig {
    /// The apps; none (the default): `/app/*` and `/apps/*` answer 404.
    pub apps: Vec<PusherApp>,
    /// The `activity_timeout` sent in `pusher:connection_established`: after this long
    /// without a message a client sends `pusher:ping`. Default 120 s (Pusher's).
    #[serde(with = "humantime_serde")]
    pub activity_timeout: Duration,
    /// How far an HTTP API request's `auth_timestamp` may be from the server's clock
    /// (either way) before it is refused with 401: bounds the replay of a captured request.
    /// Default 600 s (Pusher's).
    #[serde(with = "humantime_serde")]
    pub timestamp_window: Duration,
}

impl Default for PusherConfig {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            activity_timeout: Duration::from_secs(120),
            timestamp_window: Duration::from_secs(600),
        }
    }
}

/// One Pusher app: its credentials, what its clients may do and where its channels live.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PusherApp {
    /// The app id, in the HTTP API's paths (`/apps/{id}/events`).
    pub id: String,
    /// The public key clients connect with (`/app/{key}`) and the API signs with.
    pub key: String,
    /// The secret that signs channel authorisations and API requests.
    pub secret: String,
    /// Let clients send `client-*` events on private and presence channels. Default false.
    #[serde(default)]
    pub client_events: bool,
    /// The hub namespace the app's channels live in. Default `pusher-{id}`.
    pub namespace: Option<String>,
    /// Where the app's Pusher webhooks (`channel_occupied`, `channel_vacated`,
    /// `member_added`, `member_removed`, `client_event`) are POSTed, signed as Pusher signs
    /// them with the app's key and secret. Default unset: none. The grace delay, node expiry,
    /// queue, batch, timeout and backoff are `[webhooks]`'s.
    pub webhook_url: Option<String>,
    /// The app's own limits (`[pusher.apps.limits]`), Pusher's unless set; the hub's
    /// `[limits]` apply to its connections as well.
    #[serde(default)]
    pub limits: PusherLimits,
}

/// One app's limits, each with Pusher's value as its default, so one app at its limits leaves
/// the others alone. Every refusal is counted in `herald_pusher_limit_hits_total{app, limit}`
/// (docs/pusher.md, Limits).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PusherLimits {
    /// Most open connections of the app over every node; more are closed with 4004 (Pusher's
    /// "over connection quota"). Default 0: no limit but the hub's.
    pub max_connections: usize,
    /// Client events one connection may send per second (and at once); more are refused with
    /// a `pusher:error` 4301. Default 10 (Pusher's); 0: no limit but `limits.publish_rate`.
    pub client_events_per_second: u32,
    /// Longest event `data`, bytes as sent, from a client (a `pusher:error` 4301) or through
    /// the HTTP API (413). Default 10240 (Pusher's 10 KB).
    pub max_event_size: usize,
    /// Longest event name, client or API. Default 200 (Pusher's).
    pub max_event_name_length: usize,
    /// Most channels one API event goes to. Default 100 (Pusher's).
    pub max_event_channels: usize,
    /// Most events in one `batch_events` request. Default 10 (Pusher's).
    pub max_batch_size: usize,
    /// Longest channel name. Default 164 (Pusher's, and the most the hub's names allow
    /// after the app's namespace).
    pub max_channel_name_length: usize,
    /// Most channels one connection subscribes to. Default 0: no limit but
    /// `limits.max_subscriptions`.
    pub max_channels_per_connection: usize,
    /// Most users in one presence channel; a new user's subscription is refused with a
    /// `pusher:subscription_error` of status 4100 (over capacity). Default 100 (Pusher's).
    pub max_presence_members: usize,
    /// Longest `user_info` of a presence member or signed-in user, bytes of JSON. Default
    /// 1024 (Pusher's 1 KB).
    pub max_user_info_size: usize,
    /// Most user ids in a signed-in user's `watchlist`. Default 100.
    pub max_watchlist: usize,
}

impl Default for PusherLimits {
    fn default() -> Self {
        Self {
            max_connections: 0,
            client_events_per_second: 10,
            max_event_size: 10 * 1024,
            max_event_name_length: 200,
            max_event_channels: 100,
            max_batch_size: 10,
            max_channel_name_length: 164,
            max_channels_per_connection: 0,
            max_presence_members: 100,
            max_user_info_size: 1024,
            max_watchlist: 100,
        }
    }
}

impl PusherApp {
    /// The hub namespace of the app's channels.
    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| format!("pusher-{}", self.id))
    }
}
