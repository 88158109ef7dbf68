//! The JSON of a webhook POST: `{"events": [...]}`, each event an object with its outbox
//! `id`, `time_ms` and `event` name, and the fields of its kind (docs/operations.md).

use crate::broker::{OutboxEntry, OutboxEvent, Tracked};
use serde_json::{Map, Value, json};

/// One event as the backend gets it; `None` for a raw event that is not a JSON object (the
/// hub made it, so this is never taken).
fn event(entry: &OutboxEntry) -> Option<Value> {
    let mut object = match &entry.event {
        OutboxEvent::Tracked(thing, held) => {
            let mut object = Map::new();
            object.insert("event".into(), thing.event_name(*held).into());
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
            Ok(Value::Object(object)) => object,
            _ => return None,
        },
    };
    object.insert("id".into(), entry.id.as_str().into());
    object.insert("time_ms".into(), entry.time_ms.into());
    Some(Value::Object(object))
}

/// The body of one POST carrying `entries`, oldest first.
pub(crate) fn body(entries: &[OutboxEntry]) -> Vec<u8> {
    let events: Vec<Value> = entries.iter().filter_map(event).collect();
    json!({ "events": events }).to_string().into_bytes()
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
        let parsed: serde_json::Value = serde_json::from_slice(&body(&entries)).unwrap();
        assert_eq!(
            parsed,
            json!({"events": [
                {"id": "5-0", "time_ms": 5, "event": "member_removed", "channel": "chat:a", "user": "ann"},
                {"id": "6-1", "time_ms": 6, "event": "publication", "offset": 3},
            ]})
        );
    }
}
