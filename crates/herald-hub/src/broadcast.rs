//! What fan-out hands to each connection: a publication or presence event encoded at most
//! once per broadcast, whatever the number of recipients.

use crate::broker::{Payload, Publication};
use base64::Engine as _;
use herald_hub_protocol::{ClientInfo, Membership, Push, encode_publication};
use herald_proto::{DeflateConfig, Message, PreparedMessage, Utf8Bytes};
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
            let json = publication_json(&self.channel, &self.epoch, &self.publication);
            PreparedMessage::new(Message::Text(json.into()), self.deflate.as_deref())
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
    let bytes = encode_publication(channel, publication.offset, epoch, &data, encoding, user);
    // encode_publication writes JSON text from UTF-8 pieces.
    String::from_utf8(bytes).unwrap_or_default()
}

/// A payload as a JSON value, and its `encoding` when it is not JSON itself.
pub(crate) fn data_json(payload: &Payload) -> (std::borrow::Cow<'_, [u8]>, Option<&'static str>) {
    match payload {
        Payload::Json(b) => (std::borrow::Cow::Borrowed(&b[..]), None),
        Payload::Text(b) => {
            let text = String::from_utf8_lossy(b);
            let json = serde_json::to_vec(&text).unwrap_or_default();
            (json.into(), None)
        }
        Payload::Binary(b) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(b);
            let json = serde_json::to_vec(&encoded).unwrap_or_default();
            (json.into(), Some("base64"))
        }
    }
}

/// A join or leave, encoded once.
#[derive(Debug)]
pub(crate) struct PresenceEvent {
    /// The channel.
    pub(crate) channel: Arc<str>,
    /// The connection that joined or left.
    pub(crate) client: String,
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
            message: PreparedMessage::new(Message::Text(push.to_json().into()), None),
        }
    }

    /// The push.
    pub(crate) fn message(&self) -> &PreparedMessage {
        &self.message
    }
}
