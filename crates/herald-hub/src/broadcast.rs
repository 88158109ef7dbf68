//! What fan-out hands to each connection: a publication or presence event encoded at most
//! once per broadcast, whatever the number of recipients.

use crate::broker::{Payload, Publication};
use crate::pusher::frame::Outgoing;
use base64::Engine as _;
use herald_hub_protocol::{ClientInfo, Membership, Push, encode_publication};
use herald_proto::{DeflateConfig, Message, PreparedMessage, Utf8Bytes};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// One item in a connection's outgoing queue.
#[derive(Clone, Debug)]
pub(crate) enum Delivery {
    /// A publication on a subscribed channel.
    Publication(Arc<Broadcast>),
    /// A join or leave on a subscribed channel (protocol mode only).
    Presence(Arc<PresenceEvent>),
}

/// A publication on its way to every local subscriber of its channel.
#[derive(Debug)]
pub(crate) struct Broadcast {
    /// The channel.
    pub(crate) channel: Arc<str>,
    /// The channel's epoch.
    pub(crate) epoch: Arc<str>,
    /// The publication.
    pub(crate) publication: Arc<Publication>,
    deflate: Option<Arc<DeflateConfig>>,
    plain: OnceLock<PreparedMessage>,
    protocol: OnceLock<PreparedMessage>,
    pusher: OnceLock<Outgoing>,
    json: OnceLock<String>,
}

impl Broadcast {
    /// A broadcast; frames are built on first use.
    pub(crate) fn new(
        channel: Arc<str>,
        epoch: Arc<str>,
        publication: Arc<Publication>,
        deflate: Option<Arc<DeflateConfig>>,
    ) -> Self {
        Self {
            channel,
            epoch,
            publication,
            deflate,
            plain: OnceLock::new(),
            protocol: OnceLock::new(),
            pusher: OnceLock::new(),
            json: OnceLock::new(),
        }
    }

    /// The message for plain-mode connections: the payload itself, text or binary.
    pub(crate) fn plain(&self) -> &PreparedMessage {
        self.plain.get_or_init(|| {
            let message = match &self.publication.payload {
                Payload::Json(b) | Payload::Text(b) => match Utf8Bytes::try_from_bytes(b.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(bytes) => Message::Binary(bytes),
                },
                Payload::Binary(b) => Message::Binary(b.clone()),
            };
            PreparedMessage::new(message, self.deflate.as_deref())
        })
    }

    /// The message for protocol-mode connections: a `pub` push.
    pub(crate) fn protocol(&self) -> &PreparedMessage {
        self.protocol.get_or_init(|| {
            let json = self.json().to_owned();
            PreparedMessage::new(Message::Text(json.into()), self.deflate.as_deref())
        })
    }

    /// The `pub` push as JSON text, for the transports that are not WebSocket frames.
    pub(crate) fn json(&self) -> &str {
        self.json
            .get_or_init(|| publication_json(&self.channel, &self.epoch, &self.publication))
    }
}

impl Broadcast {
    /// The event for Pusher connections, on the app channel `channel` (the hub channel
    /// without the app's namespace, the same for every app in that namespace).
    pub(crate) fn pusher(&self, channel: &str) -> &Outgoing {
        self.pusher.get_or_init(|| {
            let deflate = self.deflate.as_deref();
            Outgoing::new(channel, &self.epoch, &self.publication, deflate)
        })
    }
}

/// The `pub` push for a publication.
pub(crate) fn publication_json(channel: &str, epoch: &str, publication: &Publication) -> String {
    let (data, encoding) = data_json(&publication.payload);
    let user = publication
        .publisher
        .as_ref()
        .map(|p| p.user.as_str())
        .filter(|u| !u.is_empty());
    let data = data.as_bytes();
    let bytes = encode_publication(channel, publication.offset, epoch, data, encoding, user);
    // encode_publication joins ASCII punctuation, JSON strings of `str`s and `data`, a `str`.
    String::from_utf8(bytes).expect("a push built from UTF-8 pieces is UTF-8")
}

/// A payload as JSON text, and its `encoding` when it is not JSON itself.
pub(crate) fn data_json(payload: &Payload) -> (Cow<'_, str>, Option<&'static str>) {
    match payload {
        Payload::Json(b) => match std::str::from_utf8(b) {
            Ok(json) => (Cow::Borrowed(json), None),
            // The hub stores only JSON it parsed; bytes that are not even UTF-8 came from a
            // broker that broke that, and still reach clients whole, as bytes.
            Err(_) => (base64_json(b), Some("base64")),
        },
        Payload::Text(b) => (json_string(&String::from_utf8_lossy(b)), None),
        Payload::Binary(b) => (base64_json(b), Some("base64")),
    }
}

fn base64_json(bytes: &[u8]) -> Cow<'static, str> {
    json_string(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn json_string(s: &str) -> Cow<'static, str> {
    // serde_json fails only on maps with non-string keys and on writers that fail.
    Cow::Owned(serde_json::to_string(s).expect("a str serialises to JSON"))
}

/// A join or leave, encoded once.
#[derive(Debug)]
pub(crate) struct PresenceEvent {
    /// The channel.
    pub(crate) channel: Arc<str>,
    /// The connection that joined or left.
    pub(crate) client: String,
    /// Its user id (for a Pusher member, the `channel_data` it joined with).
    pub(crate) user: String,
    /// Joined (`true`) or left.
    pub(crate) joined: bool,
    message: PreparedMessage,
}

impl PresenceEvent {
    /// A `join` (or, with `joined == false`, a `leave`) push.
    pub(crate) fn new(channel: Arc<str>, info: &ClientInfo, joined: bool) -> Self {
        let membership = Membership {
            channel: channel.to_string(),
            client: info.client.clone(),
            user: info.user.clone(),
        };
        let push = if joined {
            Push::Join(membership)
        } else {
            Push::Leave(membership)
        };
        Self {
            channel,
            client: info.client.clone(),
            user: info.user.clone(),
            joined,
            message: PreparedMessage::new(Message::Text(push.to_json().into()), None),
        }
    }

    /// The push.
    pub(crate) fn message(&self) -> &PreparedMessage {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn publication(payload: Payload) -> Publication {
        Publication {
            offset: 7,
            payload,
            publisher: None,
        }
    }

    #[test]
    fn the_pub_push_carries_json_as_is_text_as_a_string_and_bytes_as_base64() {
        let json = publication(Payload::Json(Bytes::from_static(br#"{"a":1}"#)));
        assert_eq!(
            publication_json("c", "e", &json),
            r#"{"push":"pub","channel":"c","offset":7,"epoch":"e","data":{"a":1}}"#
        );
        let text = publication(Payload::Text(Bytes::from_static(b"hi \"you\"")));
        assert!(publication_json("c", "e", &text).contains(r#""data":"hi \"you\"""#));
        let binary = publication(Payload::Binary(Bytes::from_static(&[0xff, 0])));
        assert!(
            publication_json("c", "e", &binary).contains(r#""data":"/wA=","encoding":"base64""#)
        );
    }

    #[test]
    fn json_from_a_broker_that_is_not_utf8_still_makes_a_text_push_as_base64() {
        let broken = publication(Payload::Json(Bytes::from_static(&[0xff, 0])));
        assert!(
            publication_json("c", "e", &broken).contains(r#""data":"/wA=","encoding":"base64""#)
        );
    }
}
