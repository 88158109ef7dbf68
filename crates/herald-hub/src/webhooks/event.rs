//! The JSON of a webhook POST: `{"events": [...]}`, each event an object with its outbox
//! `id`, `time_ms` and `event` name, and the fields of its kind (docs/operations.md).

use crate::broker::{OutboxEntry, OutboxEvent, Tracked};
use serde_json::{Map, Value, json};

/// One event as the backend gets it; `None` for an event `events` does not name, for a
/// Pusher app's event, and for a raw event that is not a JSON object (the hub made it, so
/// that is never taken).
fn event(entry: &OutboxEntry, events: &[String]) -> Option<Value> {
    let mut object = match &entry.event {
        OutboxEvent::Tracked(thing, held) => {
            let name = thing.event_name(*held);
            if !events.iter().any(|e| e == name) {
                return None;
            }
            let mut object = Map::new();
            object.insert("event".into(), name.into());
            match thing {
                Tracked::User(user) => {
                    object.insert("user".into(), user.as_str().into());
                }
                Tracked::Channel(channel) => {
                    object.insert("channel".into(), channel.as_str().into());
                }
                Tracked::Member { channel, user } => {
                    object.insert("channel".into(), channel.as_str().into());
                    object.insert("user".into(), user.as_str().into());
                }
            }
            object
        }
        OutboxEvent::Raw(raw) => match serde_json::from_slice(raw) {
            Ok(Value::Object(object)) if !object.contains_key(super::pusher::APP_FIELD) => object,
            _ => return None,
        },
    };
    object.insert("id".into(), entry.id.as_str().into());
    object.insert("time_ms".into(), entry.time_ms.into());
    Some(Value::Object(object))
}

/// The body of one POST carrying those of `entries` that `events` names (and the hub's
/// own raw events), oldest first, and the id of the first; `None` when there are none.
pub(crate) fn body(entries: &[OutboxEntry], events: &[String]) -> Option<(Vec<u8>, String)> {
    let events: Vec<Value> = entries.iter().filter_map(|e| event(e, events)).collect();
    let first = events.first()?["id"].as_str()?.to_owned();
    Some((json!({ "events": events }).to_string().into_bytes(), first))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::body;
    use crate::broker::{OutboxEntry, OutboxEvent, Tracked};
    use serde_json::json;

    #[test]
    fn each_event_carries_its_id_time_and_fields() {
        let entries = [
            OutboxEntry {
                id: "5-0".into(),
                time_ms: 5,
                event: OutboxEvent::Tracked(
                    Tracked::Member {
                        channel: "chat:a".into(),
                        user: "ann".into(),
                    },
                    false,
                ),
            },
            OutboxEntry {
                id: "6-1".into(),
                time_ms: 6,
                event: OutboxEvent::Raw(br#"{"event":"publication","offset":3}"#.to_vec().into()),
            },
        ];
        let all: Vec<String> = crate::config::WEBHOOK_EVENTS.map(String::from).to_vec();
        let (json, first) = body(&entries, &all).unwrap();
        assert_eq!(first, "5-0");
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            parsed,
            json!({"events": [
                {"id": "5-0", "time_ms": 5, "event": "member_removed", "channel": "chat:a", "user": "ann"},
                {"id": "6-1", "time_ms": 6, "event": "publication", "offset": 3},
            ]})
        );
    }

    #[test]
    fn events_not_asked_for_and_pusher_apps_events_stay_out() {
        let entries = [
            OutboxEntry {
                id: "1-0".into(),
                time_ms: 1,
                event: OutboxEvent::Tracked(Tracked::User("ann".into()), false),
            },
            OutboxEntry {
                id: "2-0".into(),
                time_ms: 2,
                event: OutboxEvent::Raw(
                    br#"{"pusher_app":"7","name":"client_event"}"#.to_vec().into(),
                ),
            },
        ];
        assert!(body(&entries, &["user_online".into()]).is_none());
    }
}
