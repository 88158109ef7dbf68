//! The protocol's messages: what a client sends, what the server sends, and the envelope a
//! Pusher event is stored in as a hub publication.
//!
//! Every message is a JSON object `{"event", "data"?, "channel"?}`. The server sends `data`
//! as a JSON-encoded string for its own events (pusher-js decodes strings that hold JSON),
//! and as the value published for channel events.

use crate::broadcast::data_json;
use crate::broker::{Payload, Publication};
use herald_proto::{DeflateConfig, Message, PreparedMessage};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A message from a client.
#[derive(Debug, Deserialize)]
pub(crate) struct Incoming {
    pub(crate) event: String,
    #[serde(default)]
    pub(crate) data: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) channel: Option<String>,
}

/// `pusher:subscribe`'s data.
#[derive(Debug, Deserialize)]
pub(crate) struct Subscribe {
    pub(crate) channel: String,
    #[serde(default)]
    pub(crate) auth: Option<String>,
    #[serde(default)]
    pub(crate) channel_data: Option<String>,
    /// Herald's recovery: the position of the last event the client saw on the channel.
    #[serde(default)]
    pub(crate) herald_recover: Option<herald_hub_protocol::StreamPosition>,
}

/// `pusher:unsubscribe`'s data.
#[derive(Debug, Deserialize)]
pub(crate) struct Unsubscribe {
    pub(crate) channel: String,
}

/// `pusher:signin`'s data.
#[derive(Debug, Deserialize)]
pub(crate) struct Signin {
    pub(crate) auth: String,
    pub(crate) user_data: String,
}

/// The member a presence subscription's `channel_data` declares.
#[derive(Debug, Deserialize)]
pub(crate) struct Member {
    pub(crate) user_id: Value,
    #[serde(default)]
    pub(crate) user_info: Option<Box<RawValue>>,
}

/// `pusher:signin`'s `user_data`: the user, what the application says of it, and the users
/// whose comings and goings it is told (`pusher_internal:watchlist_events`).
#[derive(Debug, Deserialize)]
pub(crate) struct UserData {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) user_info: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) watchlist: Option<Vec<String>>,
}

/// A Pusher event as a hub publication's data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<'a> {
    pub(crate) event: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) data: &'a RawValue,
    /// The connection that must not receive it (`socket_id` of the HTTP API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) socket_id: Option<std::borrow::Cow<'a, str>>,
    /// The sender of a client event on a presence channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<std::borrow::Cow<'a, str>>,
}

impl Envelope<'_> {
    pub(crate) fn to_payload(&self) -> Payload {
        // An envelope of strings and JSON the hub parsed always serialises.
        let json = serde_json::to_vec(self).expect("an envelope serialises");
        Payload::Json(json.into())
    }
}

/// A publication as Pusher clients receive it, built once per broadcast.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) message: PreparedMessage,
    /// The socket id that does not receive it.
    pub(crate) exclude: Option<String>,
}

impl Outgoing {
    /// The event for `publication` on the app channel `channel` (whose history's epoch is
    /// `epoch`).
    pub(crate) fn new(
        channel: &str,
        epoch: &str,
        publication: &Publication,
        deflate: Option<&DeflateConfig>,
    ) -> Self {
        let (data, _) = data_json(&publication.payload);
        Self::from_json(channel, publication.offset, epoch, &data, deflate)
    }

    /// The event for a publication whose data is the JSON `data`: the envelope's event and
    /// data, or for any other data event `message` with the data as it is. Each carries its
    /// position (`herald_offset`, `herald_epoch`), what recovery resumes from.
    pub(crate) fn from_json(
        channel: &str,
        offset: u64,
        epoch: &str,
        data: &str,
        deflate: Option<&DeflateConfig>,
    ) -> Self {
        let (mut event, exclude) = match serde_json::from_str::<Envelope<'_>>(data) {
            Ok(e) => {
                let mut event = json!({"event": e.event, "channel": channel, "data": e.data});
                if let Some(user) = &e.user_id {
                    event["user_id"] = Value::from(user.as_ref());
                }
                (event, e.socket_id.map(|s| s.into_owned()))
            }
            Err(_) => {
                let data = RawValue::from_string(data.to_owned()).ok();
                (
                    json!({"event": "message", "channel": channel, "data": data}),
                    None,
                )
            }
        };
        event["herald_offset"] = offset.into();
        event["herald_epoch"] = epoch.into();
        let text = event.to_string();
        Self {
            message: PreparedMessage::new(Message::Text(text.into()), deflate),
            exclude,
        }
    }
}

/// A server event with `data` sent as a JSON-encoded string.
pub(crate) fn event(name: &str, channel: Option<&str>, data: &Value) -> String {
    let mut message = json!({"event": name, "data": data.to_string()});
    if let Some(channel) = channel {
        message["channel"] = Value::from(channel);
    }
    message.to_string()
}

/// `pusher:connection_established`.
pub(crate) fn established(socket_id: &str, activity_timeout: u64) -> String {
    let data = json!({"socket_id": socket_id, "activity_timeout": activity_timeout});
    event("pusher:connection_established", None, &data)
}

/// `pusher:error` with one of Pusher's codes (4000–4299) or none.
pub(crate) fn error(code: Option<u16>, message: &str) -> String {
    json!({"event": "pusher:error", "data": {"code": code, "message": message}}).to_string()
}

/// `pusher:subscription_error`, as an auth endpoint's refusal looks to pusher-js.
pub(crate) fn subscription_error(channel: &str, status: u16, message: &str) -> String {
    let data = json!({"type": "AuthError", "error": message, "status": status});
    json!({"event": "pusher:subscription_error", "channel": channel, "data": data}).to_string()
}

/// `pusher_internal:watchlist_events` with one event, `online` or `offline`, for `user_ids`.
pub(crate) fn watchlist_events(name: &str, user_ids: &[String]) -> String {
    let data = json!({"events": [{"name": name, "user_ids": user_ids}]});
    event("pusher_internal:watchlist_events", None, &data)
}

/// `pusher_internal:member_added` for the hub member `user` (see [`member`]).
pub(crate) fn member_added(channel: &str, user: &str, client: &str) -> String {
    let (id, info) = member(user, client);
    let data = json!({"user_id": id, "user_info": info});
    event("pusher_internal:member_added", Some(channel), &data)
}

/// `pusher_internal:member_removed`.
pub(crate) fn member_removed(channel: &str, user: &str, client: &str) -> String {
    let (id, _) = member(user, client);
    event(
        "pusher_internal:member_removed",
        Some(channel),
        &json!({"user_id": id}),
    )
}

/// A hub presence member as a Pusher member: the user id and info of the `channel_data` a
/// Pusher client joined with (its hub user), or for a `herald.v1` connection its user id
/// (its client id when anonymous) without info.
pub(crate) fn member(user: &str, client: &str) -> (String, Value) {
    if let Ok(Value::Object(mut data)) = serde_json::from_str::<Value>(user)
        && let Some(id) = data.remove("user_id")
    {
        let id = match id {
            Value::String(s) => s,
            other => other.to_string(),
        };
        return (id, data.remove("user_info").unwrap_or(Value::Null));
    }
    let id = if user.is_empty() { client } else { user };
    (id.to_owned(), Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn publication(data: &'static str) -> Publication {
        Publication {
            offset: 1,
            payload: Payload::Json(Bytes::from_static(data.as_bytes())),
            publisher: None,
        }
    }

    fn text(o: &Outgoing) -> Value {
        serde_json::from_slice(o.message.payload()).unwrap()
    }

    #[test]
    fn an_envelope_is_delivered_as_its_event_and_other_data_as_message() {
        let o = Outgoing::new(
            "c",
            "ep",
            &publication(r#"{"event":"e","data":"{\"a\":1}","socket_id":"1.2"}"#),
            None,
        );
        assert_eq!(
            text(&o),
            json!({"event": "e", "channel": "c", "data": "{\"a\":1}",
                "herald_offset": 1, "herald_epoch": "ep"})
        );
        assert_eq!(o.exclude.as_deref(), Some("1.2"));
        let other = Outgoing::new("c", "ep", &publication(r#"{"text":"hi"}"#), None);
        assert_eq!(
            text(&other),
            json!({"event": "message", "channel": "c", "data": {"text": "hi"},
                "herald_offset": 1, "herald_epoch": "ep"})
        );
        assert_eq!(other.exclude, None);
    }

    #[test]
    fn members_come_from_channel_data_or_the_hub_user() {
        let (id, info) = member(r#"{"user_id":7,"user_info":{"n":"a"}}"#, "c1");
        assert_eq!((id.as_str(), info), ("7", json!({"n": "a"})));
        assert_eq!(member("ann", "c1").0, "ann");
        assert_eq!(member("", "c1").0, "c1");
    }

    #[test]
    fn server_events_carry_data_as_a_json_string() {
        let v: Value = serde_json::from_str(&established("1.2", 120)).unwrap();
        assert_eq!(v["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, json!({"socket_id": "1.2", "activity_timeout": 120}));
    }
}
