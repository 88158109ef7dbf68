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
}

impl PusherApp {
    /// The hub namespace of the app's channels.
    pub fn namespace(&self) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| format!("pusher-{}", self.id))
    }
}
