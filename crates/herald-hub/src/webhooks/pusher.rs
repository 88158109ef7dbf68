//! Pusher's webhooks for the Pusher apps with a `webhook_url`: the outbox's events about an
//! app's channels, in Pusher's shape (`{"time_ms", "events": [{"name", "channel", ...}]}`),
//! signed as Pusher signs them (`X-Pusher-Key`, `X-Pusher-Signature`: the hex HMAC-SHA256 of
//! the body under the app's secret), so the Pusher server SDKs' webhook checks accept them.

use crate::broker::{OutboxEntry, OutboxEvent, Tracked};
use crate::config::PusherApp;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The key of a raw outbox event that belongs to one Pusher app (a `client_event`).
pub(super) const APP_FIELD: &str = "pusher_app";

/// One app's webhook endpoint.
#[derive(Debug)]
pub(super) struct PusherHook {
    pub(super) id: String,
    pub(super) key: String,
    secret: String,
    /// `NAMESPACE:`, the app's channels' prefix in the hub.
    prefix: String,
    pub(super) endpoint: super::Endpoint,
}

impl PusherHook {
    pub(super) fn new(app: &PusherApp) -> Option<Self> {
        let endpoint =
            super::Endpoint::new(app.webhook_url.as_deref()?, "pusher.apps.webhook_url")?;
        Some(Self {
            id: app.id.clone(),
            key: app.key.clone(),
            secret: app.secret.clone(),
            prefix: format!("{}:", app.namespace()),
            endpoint,
        })
    }

    /// The event `entry` is for this app, in Pusher's shape, if it is one.
    fn event(&self, entry: &OutboxEntry) -> Option<Value> {
        match &entry.event {
            OutboxEvent::Tracked(Tracked::Channel(channel), held) => {
                // A user's own channel and the watchlists' presence (`#…`) are not Pusher's.
                let name = channel
                    .strip_prefix(&self.prefix)
                    .filter(|n| !n.starts_with('#'))?;
                let event = if *held {
                    "channel_occupied"
                } else {
                    "channel_vacated"
                };
                Some(json!({"name": event, "channel": name}))
            }
            OutboxEvent::Tracked(Tracked::Member { channel, user }, held) => {
                let name = channel.strip_prefix(&self.prefix)?;
                if !name.starts_with("presence-") {
                    return None;
                }
                let (user_id, _) = crate::pusher::frame::member(user, "");
                let event = if *held {
                    "member_added"
                } else {
                    "member_removed"
                };
                Some(json!({"name": event, "channel": name, "user_id": user_id}))
            }
            OutboxEvent::Tracked(Tracked::User(_), _) => None,
            OutboxEvent::Raw(raw) => {
                let Ok(Value::Object(mut object)) = serde_json::from_slice(raw) else {
                    return None;
                };
                if object.remove(APP_FIELD)? != self.id.as_str() {
                    return None;
                }
                Some(Value::Object(object))
            }
        }
    }

    /// The POST body for the app's events among `entries`, and its signature; `None` when
    /// none is the app's.
    pub(super) fn body(&self, entries: &[OutboxEntry], now_ms: u64) -> Option<(Vec<u8>, String)> {
        let events: Vec<Value> = entries.iter().filter_map(|e| self.event(e)).collect();
        if events.is_empty() {
            return None;
        }
        let body = json!({"time_ms": now_ms, "events": events})
            .to_string()
            .into_bytes();
        let signature = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).map(|mut mac| {
            mac.update(&body);
            hex::encode(mac.finalize().into_bytes())
        });
        Some((body, signature.unwrap_or_default()))
    }
}

/// A `client_event` for app `app`'s channel `channel` (its Pusher name), as a raw outbox event.
pub(crate) fn client_event(
    app: &str,
    channel: &str,
    event: &str,
    data: &str,
    socket_id: &str,
    user_id: Option<&str>,
) -> Vec<u8> {
    let mut object = json!({
        APP_FIELD: app,
        "name": "client_event",
        "channel": channel,
        "event": event,
        "data": data,
        "socket_id": socket_id,
    });
    if let Some(user_id) = user_id {
        object["user_id"] = user_id.into();
    }
    object.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hook() -> PusherHook {
        let app = PusherApp {
            id: "7".into(),
            key: "k".into(),
            secret: "s".into(),
            client_events: true,
            namespace: None,
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            limits: crate::config::PusherLimits::default(),
        };
        PusherHook::new(&app).unwrap()
    }

    fn entry(event: OutboxEvent) -> OutboxEntry {
        OutboxEntry {
            id: "1-0".into(),
            time_ms: 1,
            event,
        }
    }

    #[test]
    fn only_the_apps_channels_and_presence_members_become_pusher_events_not_hidden_ones() {
        let member = |channel: &str| Tracked::Member {
            channel: channel.into(),
            user: r#"{"user_id":"ann","user_info":{}}"#.into(),
        };
        let entries = [
            entry(OutboxEvent::Tracked(
                Tracked::Channel("pusher-7:room".into()),
                true,
            )),
            entry(OutboxEvent::Tracked(
                Tracked::Channel("pusher-8:room".into()),
                true,
            )),
            // A user's own channel and a watchlist's presence are not the app's channels.
            entry(OutboxEvent::Tracked(
                Tracked::Channel("pusher-7:#server-to-user-ann".into()),
                true,
            )),
            entry(OutboxEvent::Tracked(
                Tracked::Channel("pusher-7:#online-ann".into()),
                false,
            )),
            entry(OutboxEvent::Tracked(member("pusher-7:presence-a"), true)),
            entry(OutboxEvent::Tracked(member("pusher-7:private-a"), true)),
            entry(OutboxEvent::Tracked(Tracked::User("ann".into()), false)),
            entry(OutboxEvent::Raw(
                client_event("7", "private-a", "client-x", "{}", "1.2", None).into(),
            )),
            entry(OutboxEvent::Raw(
                client_event("8", "private-a", "client-x", "{}", "1.2", None).into(),
            )),
        ];
        let (body, signature) = hook().body(&entries, 99).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"time_ms": 99, "events": [
                {"name": "channel_occupied", "channel": "room"},
                {"name": "member_added", "channel": "presence-a", "user_id": "ann"},
                {"name": "client_event", "channel": "private-a", "event": "client-x",
                 "data": "{}", "socket_id": "1.2"},
            ]})
        );
        assert_eq!(signature.len(), 64);
    }
}
