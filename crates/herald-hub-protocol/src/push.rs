//! Server → client pushes: messages the client did not ask for, tagged by `"push"`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A push: a JSON object whose `"push"` field names its kind; the kind's fields sit beside it.
#[derive(Debug)]
pub enum Push {
    /// The first message on a protocol-mode connection: who the server thinks the client is.
    Connected(Connected),
    /// A publication on a subscribed channel.
    Pub(Publication),
    /// A connection subscribed to a channel this connection holds.
    Join(Membership),
    /// A connection left a channel this connection holds.
    Leave(Membership),
    /// The server subscribed this connection to a channel (its personal channel, a `subs`
    /// claim, the server API): publications on it follow as `pub` pushes.
    Subscribed(Subscribed),
    /// The server ended one of this connection's subscriptions (the server API, or a
    /// `refresh` whose claims no longer allow the channel).
    Unsubscribed(Unsubscribed),
    /// The connection's token expires soon: send `refresh` with a new one before `expires`.
    Refresh(RefreshDue),
}

/// The `connected` push.
#[derive(Debug, Serialize, Deserialize)]
pub struct Connected {
    /// This connection's id, unique across nodes.
    pub client: String,
    /// The user id from the token, empty when anonymous.
    pub user: String,
    /// Seconds between the server's pings: a client that hears nothing for about twice this
    /// long should consider the connection dead.
    pub ping_interval: u64,
    /// When the token expires, seconds since the Unix epoch; absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// The `subscribed` push: where live delivery on the channel starts.
#[derive(Debug, Serialize, Deserialize)]
pub struct Subscribed {
    /// The channel.
    pub channel: String,
    /// The channel's offset when live delivery started: every later publication arrives as a
    /// `pub` push. A client that held an earlier position reads what it missed with
    /// `history` `since` that position.
    pub offset: u64,
    /// The channel's epoch.
    pub epoch: String,
}

/// The `unsubscribed` push.
#[derive(Debug, Serialize, Deserialize)]
pub struct Unsubscribed {
    /// The channel.
    pub channel: String,
    /// Why, in a few words.
    pub reason: String,
}

/// The `refresh` push.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshDue {
    /// When the current token expires, seconds since the Unix epoch; the connection closes
    /// with 4501 then unless a `refresh` replaced it.
    pub expires: u64,
}

/// The `pub` push.
#[derive(Debug, Serialize, Deserialize)]
pub struct Publication {
    /// The channel.
    pub channel: String,
    /// The publication's offset: one more than the previous one in this channel.
    pub offset: u64,
    /// The channel's epoch: changes whenever its history was lost.
    pub epoch: String,
    /// The data: JSON, or a string (base64 when `encoding` says so).
    pub data: Box<RawValue>,
    /// `"base64"` for binary data sent by a plain-mode client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The publisher's user id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The `join` and `leave` pushes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Membership {
    /// The channel.
    pub channel: String,
    /// The connection's id.
    pub client: String,
    /// Its user id, empty when anonymous.
    pub user: String,
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(borrow)]
    push: std::borrow::Cow<'a, str>,
}

#[derive(Serialize)]
struct Tagged<'a, T> {
    push: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

impl Push {
    /// Parses a push (a server message without an `id`).
    ///
    /// # Errors
    /// When the text is not a push this crate knows.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let kind: Kind<'_> = serde_json::from_str(text)?;
        Ok(match &*kind.push {
            "connected" => Self::Connected(serde_json::from_str(text)?),
            "pub" => Self::Pub(serde_json::from_str(text)?),
            "join" => Self::Join(serde_json::from_str(text)?),
            "leave" => Self::Leave(serde_json::from_str(text)?),
            "subscribed" => Self::Subscribed(serde_json::from_str(text)?),
            "unsubscribed" => Self::Unsubscribed(serde_json::from_str(text)?),
            "refresh" => Self::Refresh(serde_json::from_str(text)?),
            other => {
                return Err(serde::de::Error::unknown_variant(
                    other,
                    &[
                        "connected",
                        "pub",
                        "join",
                        "leave",
                        "subscribed",
                        "unsubscribed",
                        "refresh",
                    ],
                ));
            }
        })
    }

    /// Encodes the push as JSON text.
    pub fn to_json(&self) -> String {
        let result = match self {
            Self::Connected(b) => serde_json::to_string(&Tagged {
                push: "connected",
                body: b,
            }),
            Self::Pub(b) => serde_json::to_string(&Tagged {
                push: "pub",
                body: b,
            }),
            Self::Join(b) => serde_json::to_string(&Tagged {
                push: "join",
                body: b,
            }),
            Self::Leave(b) => serde_json::to_string(&Tagged {
                push: "leave",
                body: b,
            }),
            Self::Subscribed(b) => serde_json::to_string(&Tagged {
                push: "subscribed",
                body: b,
            }),
            Self::Unsubscribed(b) => serde_json::to_string(&Tagged {
                push: "unsubscribed",
                body: b,
            }),
            Self::Refresh(b) => serde_json::to_string(&Tagged {
                push: "refresh",
                body: b,
            }),
        };
        // Serialising these types to a String cannot fail: every map key is a string.
        result.unwrap_or_default()
    }
}

/// Encodes a `pub` push without building a [`Publication`] (the broadcast path): `data` must
/// be valid JSON.
pub fn encode_publication(
    channel: &str,
    offset: u64,
    epoch: &str,
    data: &[u8],
    encoding: Option<&str>,
    user: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + channel.len() + epoch.len() + data.len());
    out.extend_from_slice(br#"{"push":"pub","channel":"#);
    write_string(&mut out, channel);
    out.extend_from_slice(br#","offset":"#);
    out.extend_from_slice(offset.to_string().as_bytes());
    out.extend_from_slice(br#","epoch":"#);
    write_string(&mut out, epoch);
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(data);
    if let Some(encoding) = encoding {
        out.extend_from_slice(br#","encoding":"#);
        write_string(&mut out, encoding);
    }
    if let Some(user) = user {
        out.extend_from_slice(br#","user":"#);
        write_string(&mut out, user);
    }
    out.push(b'}');
    out
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
