//! Server → client replies: `{"id": 1, "result": {...}}` or `{"id": 1, "error": {...}}`.

use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A reply to the command with the same id: exactly one of `result` and `error` is present.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply<T> {
    /// The command's id.
    pub id: u64,
    /// The command succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    /// The command failed; nothing happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl<T> Reply<T> {
    /// A successful reply.
    pub fn ok(id: u64, result: T) -> Self {
        Self {
            id,
            result: Some(result),
            error: None,
        }
    }

    /// An error reply.
    pub fn error(id: u64, error: ErrorBody) -> Self {
        Self {
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// The body of an error reply.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The stable numeric code.
    pub code: ErrorCode,
    /// A short human explanation.
    pub message: String,
    /// Whether the command may succeed if retried later.
    #[serde(default)]
    pub temporary: bool,
}

impl ErrorBody {
    /// An error with its code's default message.
    pub fn new(code: ErrorCode) -> Self {
        Self::with_message(code, code.message())
    }

    /// An error with a specific message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            temporary: code.is_temporary(),
        }
    }
}

/// A publication as it appears in replies (`subscribe` recovery, `history`).
#[derive(Debug, Serialize, Deserialize)]
pub struct PublicationBody {
    /// Its offset in the channel's stream.
    pub offset: u64,
    /// The data: JSON, or a string (base64 when `encoding` says so).
    pub data: Box<RawValue>,
    /// `"base64"` for binary data sent by a plain-mode client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The publisher's user id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The result of `subscribe`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubscribeResult {
    /// The offset live publications follow: the last one recovered, or the channel's
    /// current offset.
    pub offset: u64,
    /// The channel's epoch.
    pub epoch: String,
    /// Present when recovery was asked: whether every missed publication is in
    /// `publications`. `false` means the gap cannot be filled; reload the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// Missed publications, in order, to apply before any live push.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<PublicationBody>,
    /// What the application's backend attached to the subscription (the subscribe hook's
    /// `data`), when it attached anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

/// The result of `rpc`: the backend's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct RpcResult {
    /// The JSON value the backend answered with, byte for byte.
    pub data: Box<RawValue>,
}

/// The result of `publish`: where the publication landed.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishResult {
    /// Its offset.
    pub offset: u64,
    /// The channel's epoch.
    pub epoch: String,
}

/// The result of `history`.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryResult {
    /// The channel's current offset (the last publication's).
    pub offset: u64,
    /// The channel's epoch.
    pub epoch: String,
    /// The publications, oldest first.
    pub publications: Vec<PublicationBody>,
}

/// One member of a channel.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection's id, unique across nodes.
    pub client: String,
    /// The user id from the token, empty for anonymous connections.
    pub user: String,
}

/// The result of `presence`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PresenceResult {
    /// Every connection subscribed to the channel.
    pub clients: Vec<ClientInfo>,
}

/// The result of `refresh`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshResult {
    /// When the new token expires, seconds since the Unix epoch; absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// An empty result (`unsubscribe`, `ping`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Empty {}
