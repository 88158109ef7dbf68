//! Events to the application's backend, `[webhooks]` (docs/operations.md, "Connecting your
//! backend").

use serde::Deserialize;
use std::time::Duration;

/// Every event name `webhooks.events` accepts.
pub const WEBHOOK_EVENTS: [&str; 6] = [
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "user_online",
    "user_offline",
];

/// The webhooks, `[webhooks]`. With `url` unset they are off and nothing is tracked.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The `http://` or `https://` URL batches of events are POSTed to. Default unset: off.
    pub url: Option<String>,
    /// The HMAC-SHA256 key of the `Herald-Signature` header; required with `url`.
    pub secret: Option<String>,
    /// Which of [`WEBHOOK_EVENTS`] to emit; `publication` events come from the namespaces
    /// with `webhook_publications = true`. Default: all of them.
    pub events: Vec<String>,
    /// How long a user, channel or member must stay gone before its `*_offline`,
    /// `channel_vacated` or `member_removed` event: one that is back within it produces no
    /// event at all. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// How long a node that stopped (crashed, lost the broker) counts as alive: after it,
    /// what it held is released (and, after `grace`, emitted). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub node_expiry: Duration,
    /// Events the cluster's outbox holds; an event past it is dropped and counted. Default
    /// 10,000.
    pub max_queue: usize,
    /// Most events in one POST. Default 100.
    pub batch: usize,
    /// How long one POST may take, connect to the last byte of the answer. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The longest wait between two attempts of a failed POST (the wait doubles from
    /// 250 ms up to it). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            events: WEBHOOK_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
            grace: Duration::from_secs(5),
            node_expiry: Duration::from_secs(30),
            max_queue: 10_000,
            batch: 100,
            timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl WebhooksConfig {
    /// Whether `event` (one of [`WEBHOOK_EVENTS`]) is emitted.
    pub fn emits(&self, event: &str) -> bool {
        self.url.is_some() && self.events.iter().any(|e| e == event)
    }
}
