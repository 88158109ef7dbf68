//! Webhooks: events to the application's backend (`channel_occupied`, `channel_vacated`,
//! `member_added`, `member_removed`, `user_online`, `user_offline`, and `publication` for the
//! namespaces that ask for it), each decided once for the whole cluster by the broker's
//! outbox (see [`Tracked`](crate::broker::Tracked)), signed ([`sign`]) and delivered at least
//! once, in outbox order, by whichever node holds the outbox's lease ([`deliver`]).
//!
//! A node only counts what it holds ([`tracker`]): connections per user, subscriptions per
//! channel and per member. The broker turns the nodes' changes into events, with the grace
//! delay, and releases what a dead node held.

mod deliver;
mod event;
mod pusher;
mod sign;
mod tracker;

pub(crate) use pusher::client_event;

use crate::broker::{Broker, OutboxPolicy, Payload, Tracked};
use crate::config::{HubConfig, WebhooksConfig};
use crate::fetch::{self, HttpUrl};
use crate::metrics::Metrics;
use base64::Engine;
use herald_hub_protocol::{ClientInfo, StreamPosition};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracker::Tracker;

/// Where one kind of webhook POST goes.
#[derive(Debug)]
pub(super) struct Endpoint {
    url: HttpUrl,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl Endpoint {
    /// The endpoint at `url`, configured at `key`; `None` for a URL that does not parse
    /// (`HubConfig::validate` refused it).
    fn new(url: &str, key: &str) -> Option<Self> {
        let url = HttpUrl::parse(url)?;
        Some(Self {
            tls: fetch::tls_for(&url, key),
            url,
        })
    }
}

/// This node's side of the webhooks.
pub(crate) struct Webhooks {
    config: WebhooksConfig,
    policy: OutboxPolicy,
    /// `webhooks.url`, Herald's own events.
    herald: Option<Endpoint>,
    secret: String,
    /// The Pusher apps with a `webhook_url`.
    pusher: Vec<pusher::PusherHook>,
    tracker: Tracker,
    metrics: Arc<Metrics>,
    users: bool,
    channels: bool,
    members: bool,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("herald", &self.herald)
            .field("pusher", &self.pusher)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The webhooks `hub` asks for (`webhooks.url`, Pusher apps' `webhook_url`); `None`
    /// without any (`HubConfig::validate` refused a URL that does not parse, and
    /// `webhooks.url` without a secret).
    pub(crate) fn new(hub: &HubConfig, metrics: Arc<Metrics>) -> Option<Self> {
        let config = &hub.webhooks;
        let herald = config
            .url
            .as_deref()
            .and_then(|url| Endpoint::new(url, "webhooks.url"));
        let pusher: Vec<_> = hub
            .pusher
            .apps
            .iter()
            .filter_map(pusher::PusherHook::new)
            .collect();
        if herald.is_none() && pusher.is_empty() {
            return None;
        }
        let either = |a, b| config.emits(a) || config.emits(b);
        let apps = !pusher.is_empty();
        Some(Self {
            policy: OutboxPolicy {
                grace: config.grace,
                max_events: config.max_queue,
                node_life: config.node_expiry,
                // Long enough to outlast one POST; renewed every tick.
                lease: (config.timeout * 2).max(Duration::from_secs(2)),
            },
            herald,
            secret: config.secret.clone().unwrap_or_default(),
            pusher,
            tracker: Tracker::default(),
            metrics,
            users: either("user_online", "user_offline"),
            channels: apps || either("channel_occupied", "channel_vacated"),
            members: apps || either("member_added", "member_removed"),
            config: config.clone(),
        })
    }

    /// A connection of `user` opened (`up`) or closed.
    pub(crate) fn connection(&self, user: &str, up: bool) {
        if self.users && !user.is_empty() {
            self.tracker.change(Tracked::User(user.to_owned()), up);
        }
    }

    /// A connection of `user` subscribed to `channel` (`up`) or left it; `presence`: the
    /// channel's namespace tracks presence, so it is a membership too.
    pub(crate) fn subscription(&self, channel: &str, user: &str, presence: bool, up: bool) {
        if self.channels {
            self.tracker
                .change(Tracked::Channel(channel.to_owned()), up);
        }
        if self.members && presence && !user.is_empty() {
            let member = Tracked::Member {
                channel: channel.to_owned(),
                user: user.to_owned(),
            };
            self.tracker.change(member, up);
        }
    }

    /// Puts a `publication` event in the outbox (for a namespace with
    /// `webhook_publications`). Best effort: a broker failure is logged and counted.
    pub(crate) async fn publication(
        &self,
        broker: &dyn Broker,
        channel: &str,
        position: &StreamPosition,
        payload: &Payload,
        publisher: Option<&ClientInfo>,
    ) {
        let data = match payload {
            Payload::Json(json) => serde_json::from_slice(json).unwrap_or(serde_json::Value::Null),
            Payload::Text(text) => String::from_utf8_lossy(text).into(),
            Payload::Binary(bytes) => base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        };
        let mut event = serde_json::json!({
            "event": "publication",
            "channel": channel,
            "offset": position.offset,
            "epoch": position.epoch,
            "data": data,
        });
        if let Some(publisher) = publisher {
            event["user"] = publisher.user.as_str().into();
            event["client"] = publisher.client.as_str().into();
        }
        let json = event.to_string().into_bytes().into();
        match broker.outbox_push(json, self.policy).await {
            Ok(appended) => self.metrics.webhook_appended(appended),
            Err(e) => {
                self.metrics.webhook_events("dropped", 1);
                tracing::warn!(channel, error = %e, "publication webhook event lost");
            }
        }
    }

    /// Puts a Pusher `client_event` in the outbox, when app `app` has a `webhook_url`.
    pub(crate) async fn pusher_client_event(&self, broker: &dyn Broker, app: &str, event: Vec<u8>) {
        if !self.pusher.iter().any(|p| p.id == app) {
            return;
        }
        match broker.outbox_push(event.into(), self.policy).await {
            Ok(appended) => self.metrics.webhook_appended(appended),
            Err(e) => {
                self.metrics.webhook_events("dropped", 1);
                tracing::warn!(app, error = %e, "client_event webhook event lost");
            }
        }
    }

    /// Keeps the broker in step with this node and delivers when this node leads, until the
    /// task is dropped.
    pub(crate) async fn run(self: Arc<Self>, broker: Arc<dyn Broker>, node: String) {
        let track = self
            .tracker
            .run(broker.as_ref(), &node, self.policy, &self.metrics);
        let deliver = self.deliver(broker.as_ref(), &node);
        tokio::join!(track, deliver);
    }

    /// Waits, at most `timeout`, until the broker knows every change made here (at
    /// shutdown, once the connections closed).
    pub(crate) async fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.tracker.is_synced() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
