//! # herald-hub-protocol
//!
//! The wire protocol of the Herald hub's protocol mode, subprotocol [`SUBPROTOCOL`]
//! (`herald.v1`): JSON text messages, one per WebSocket message.
//!
//! - The client sends [`Command`]s, each with an id; the server answers each with a
//!   [`Reply`] carrying the same id and either a result or an [`ErrorBody`] with a stable
//!   [`ErrorCode`].
//! - The server sends [`Push`]es on its own: `connected` first, then publications (with
//!   channel, offset, epoch and data) and presence `join`/`leave` events.
//! - The server ends a connection with a WebSocket close whose code says whether the client
//!   should reconnect ([`Disconnect`]).
//!
//! This crate holds types and codes only (serde); the server is `herald-hub`, the browser
//! client `web/herald.js`. docs/protocol.md describes the protocol for other implementers.
//!
//! ```
//! use herald_hub_protocol::{Call, Command};
//!
//! let text = r#"{"id":7,"method":"publish","params":{"channel":"chat:1","data":{"text":"hi"}}}"#;
//! let command = Command::parse(text).unwrap();
//! assert_eq!(command.id, 7);
//! match command.call {
//!     Call::Publish(p) => assert_eq!(p.data.get(), r#"{"text":"hi"}"#),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod codes;
mod command;
mod push;
mod reply;

pub use codes::{Disconnect, ErrorCode};
pub use command::{
    Call, ChannelParams, Command, CommandError, HistoryParams, PublishParams, RefreshParams,
    RpcParams, SubscribeParams,
};
pub use push::{
    Connected, Membership, Publication, Push, RefreshDue, Subscribed, Unsubscribed,
    encode_publication,
};
pub use reply::{
    ClientInfo, Empty, ErrorBody, HistoryResult, PresenceResult, PublicationBody, PublishResult,
    RefreshResult, Reply, RpcResult, SubscribeResult,
};

use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol that selects protocol mode.
pub const SUBPROTOCOL: &str = "herald.v1";

/// A position in a channel's stream: the offset of the last publication seen, and the epoch
/// of the history it belongs to. Offsets only compare within one epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The offset of the last publication (0 before the first).
    pub offset: u64,
    /// The history's epoch.
    pub epoch: String,
}
