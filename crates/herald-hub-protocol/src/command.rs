//! Client → server: commands, each with an id that its reply repeats.

use crate::StreamPosition;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One command: `{"id": 1, "method": "subscribe", "params": {...}}`.
#[derive(Debug, Serialize)]
pub struct Command {
    /// Chosen by the client, repeated in the reply. Ids need not be unique, but a client
    /// that reuses one cannot tell its replies apart.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub call: Call,
}

/// The method and its parameters.
#[derive(Debug, Serialize)]
#[serde(tag = "method", content = "params", rename_all = "lowercase")]
pub enum Call {
    /// Start receiving a channel's publications, optionally recovering missed ones first.
    Subscribe(SubscribeParams),
    /// Stop receiving a channel.
    Unsubscribe(ChannelParams),
    /// Publish JSON data to a channel.
    Publish(PublishParams),
    /// Read a channel's retained history.
    History(HistoryParams),
    /// Who is subscribed to a channel.
    Presence(ChannelParams),
    /// A round trip, answered with an empty result.
    Ping,
    /// Replace the connection's token before it expires: the connection goes on with the new
    /// token's claims and expiry.
    Refresh(RefreshParams),
    /// Call a method of the application's backend (`hooks.rpc.url`) and get its answer.
    Rpc(RpcParams),
}

/// `rpc` parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct RpcParams {
    /// The backend's method name, passed on as is.
    pub method: String,
    /// Any JSON value, passed on byte for byte.
    pub data: Box<RawValue>,
}

/// `subscribe` parameters.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SubscribeParams {
    /// The channel name.
    pub channel: String,
    /// Recover from this position: every publication after it, then live ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<StreamPosition>,
    /// Receive `join` and `leave` pushes for this channel (when the server allows them).
    /// Off by default: in a channel of n members they cost n² messages as it fills.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join_leave: bool,
    /// Without `recover`: also return up to this many of the channel's newest publications
    /// (oldest first), capped by the namespace's `latest`. Unset: the namespace's `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<usize>,
}

/// Parameters naming just a channel.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChannelParams {
    /// The channel name.
    pub channel: String,
}

/// `publish` parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishParams {
    /// The channel name.
    pub channel: String,
    /// Any JSON value, kept byte for byte.
    pub data: Box<RawValue>,
}

/// `history` parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryParams {
    /// The channel name.
    pub channel: String,
    /// Only publications after this position (its epoch must be current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
    /// At most this many publications; the server caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Newest first: with `limit`, the newest `limit` publications, without reading the
    /// whole stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
}

/// `refresh` parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshParams {
    /// The new token (a JWT, verified like the handshake's). It must name the same user.
    pub token: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: u64,
    #[serde(borrow)]
    method: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<u64>,
}

/// Why a command could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Not a JSON object with a numeric `id`: no reply can be addressed; the connection ends
    /// with [`Disconnect::BAD_REQUEST`](crate::Disconnect::BAD_REQUEST).
    Malformed,
    /// A method this protocol does not know: reply [`ErrorCode::UNKNOWN_METHOD`](crate::ErrorCode::UNKNOWN_METHOD).
    UnknownMethod {
        /// The command's id.
        id: u64,
    },
    /// Missing or invalid parameters: reply [`ErrorCode::BAD_REQUEST`](crate::ErrorCode::BAD_REQUEST).
    BadParams {
        /// The command's id.
        id: u64,
        /// What was wrong, from the JSON parser.
        detail: String,
    },
}

/// Whether JSON text is an object (its first non-blank character is `{`).
fn is_object(json: &str) -> bool {
    json.trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
}

impl Command {
    /// Parses a command, keeping `publish` and `rpc` data as the exact JSON text received.
    ///
    /// # Errors
    /// [`CommandError`], which says how the server answers.
    pub fn parse(text: &str) -> Result<Self, CommandError> {
        // serde reads a struct from a JSON array too (its fields in order): a command is an
        // object, and so are its params.
        if !is_object(text) {
            return Err(CommandError::Malformed);
        }
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|_| {
            match serde_json::from_str::<IdOnly>(text).ok().and_then(|i| i.id) {
                Some(id) => CommandError::BadParams {
                    id,
                    detail: "method must be a string".into(),
                },
                None => CommandError::Malformed,
            }
        })?;
        let id = envelope.id;
        let params = envelope.params.map_or("{}", RawValue::get);
        if !is_object(params) {
            return Err(CommandError::BadParams {
                id,
                detail: "params must be an object".into(),
            });
        }
        let bad = |e: serde_json::Error| CommandError::BadParams {
            id,
            detail: e.to_string(),
        };
        let call = match &*envelope.method {
            "subscribe" => Call::Subscribe(serde_json::from_str(params).map_err(bad)?),
            "unsubscribe" => Call::Unsubscribe(serde_json::from_str(params).map_err(bad)?),
            "publish" => Call::Publish(serde_json::from_str(params).map_err(bad)?),
            "history" => Call::History(serde_json::from_str(params).map_err(bad)?),
            "presence" => Call::Presence(serde_json::from_str(params).map_err(bad)?),
            "ping" => Call::Ping,
            "refresh" => Call::Refresh(serde_json::from_str(params).map_err(bad)?),
            "rpc" => Call::Rpc(serde_json::from_str(params).map_err(bad)?),
            _ => return Err(CommandError::UnknownMethod { id }),
        };
        Ok(Self { id, call })
    }

    /// Encodes the command as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these types to a String cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}
