//! What the client tells the application, in order, through its event receiver.

use crate::Error;
use herald::Closed;
use herald_hub_protocol::{Connected, ErrorBody, Membership, Publication, StreamPosition};

/// One event. They arrive in the order the client learned of them; a channel's publications
/// arrive once each, in offset order within an epoch.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A connection is open and the hub said who it thinks the client is. Subscriptions are
    /// being restored.
    Connected(Connected),
    /// The connection ended, or could not be opened; `will_reconnect` says whether the client
    /// tries again.
    Disconnected(Disconnected),
    /// A channel is live: the application's subscribe (or resubscribe) succeeded, or the
    /// server subscribed the client (`server_side`).
    Subscribed(Subscribed),
    /// The client no longer holds a channel: the server ended it, or refused to restore it.
    Unsubscribed(Unsubscribed),
    /// A publication on a held channel, recovered or live: never twice, never out of order.
    Publication(Publication),
    /// A connection subscribed to a channel held with `join_leave`.
    Join(Membership),
    /// A connection left a channel held with `join_leave`.
    Leave(Membership),
    /// The hub took a fresh token after its `refresh` push; `expires` is the new expiry
    /// (seconds since the Unix epoch).
    Refreshed {
        /// When the new token expires; `None` when it does not.
        expires: Option<u64>,
    },
    /// The hub asked for a fresh token and none could be given (no provider, the provider
    /// failed, or the hub refused it). The hub closes with 4501 when the token expires.
    RefreshFailed(Error),
}

/// How a connection ended.
#[derive(Debug)]
pub struct Disconnected {
    /// The close code: the server's, or 1006 when there was no closing handshake (a lost or
    /// refused connection).
    pub code: u16,
    /// The close reason, or what failed.
    pub reason: String,
    /// Whether the client reconnects (after a backoff delay).
    pub will_reconnect: bool,
    /// Whether the WebSocket had opened (the handshake completed).
    pub opened: bool,
    /// The closing handshake, when the WebSocket had opened and ended with one.
    pub closed: Option<Closed>,
    /// What failed, when something did: the connect, the transport, the token provider, the
    /// liveness check.
    pub error: Option<Error>,
}

/// A channel became live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// The channel.
    pub channel: String,
    /// The stream position live publications follow.
    pub offset: u64,
    /// The channel's epoch.
    pub epoch: String,
    /// After a reconnect (or a subscribe `since` a position): whether every publication
    /// missed since `previous` was delivered. `Some(false)`: the gap cannot be filled (history
    /// trimmed or lost); reload the channel's state. `None` on a first subscribe.
    pub recovered: Option<bool>,
    /// The position held before, when recovery was tried.
    pub previous: Option<StreamPosition>,
    /// The server subscribed the client (personal channel, token claim, server API).
    pub server_side: bool,
}

/// A channel the client no longer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The channel.
    pub channel: String,
    /// The server's reason, or the refusal's message.
    pub reason: String,
    /// The refusal, when a resubscribe was refused (e.g. 103 after the claims changed).
    pub refused: Option<ErrorBody>,
}
