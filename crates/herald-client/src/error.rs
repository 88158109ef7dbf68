//! What can go wrong: a command refused or unanswered, or a connection lost or refused.

use crate::TokenError;
use herald_hub_protocol::{ErrorBody, ErrorCode};

/// A failed command, or why a connection ended (in
/// [`Disconnected::error`](crate::Disconnected::error)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hub answered with an error ([`ErrorCode`], message, whether retrying may help).
    #[error("the hub refused: {} (code {})", .0.message, .0.code.0)]
    Server(ErrorBody),
    /// No reply within [`ClientConfig::command_timeout`](crate::ClientConfig::command_timeout),
    /// counted from the call (a command waits for the connection within that time). A publish
    /// may or may not have happened.
    #[error("no reply in time")]
    Timeout,
    /// The connection was lost after the command was sent: it may or may not have happened.
    #[error("connection lost before the reply")]
    Disconnected,
    /// The client was closed (by [`Client::close`](crate::Client::close), a close code that
    /// says not to reconnect, or with reconnects off); nothing more is sent.
    #[error("client closed")]
    Closed,
    /// [`ClientConfig::max_pending`](crate::ClientConfig::max_pending) commands already wait
    /// for their replies; retry when some have come back.
    #[error("too many commands in flight")]
    TooManyPending,
    /// [`ClientConfig::max_subscriptions`](crate::ClientConfig::max_subscriptions) channels are
    /// already held.
    #[error("too many subscriptions")]
    TooManySubscriptions,
    /// `subscribe` to a channel this client already holds (itself or through the server).
    #[error("already subscribed to {0}")]
    AlreadySubscribed(String),
    /// `unsubscribe` from a channel this client does not hold.
    #[error("not subscribed to {0}")]
    NotSubscribed(String),
    /// The data to publish could not be written as JSON.
    #[error("data is not JSON: {0}")]
    Encode(String),
    /// The hub's reply did not have the shape its command's result has.
    #[error("unexpected reply from the hub: {0}")]
    BadReply(String),
    /// The WebSocket could not be opened, or failed while open (I/O, TLS, protocol, a refused
    /// handshake with its status and body).
    #[error(transparent)]
    WebSocket(#[from] herald::Error),
    /// The server accepted the WebSocket but not the `herald.v1` subprotocol: it is not a
    /// Herald hub (or not on this path).
    #[error("the server did not accept the herald.v1 subprotocol")]
    NotHerald,
    /// The token provider failed; the client retries at its next reconnect.
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// The server stayed silent past its ping interval and did not answer our `ping` (or a
    /// resubscribe) in time: the connection was dropped as dead.
    #[error("no answer from the hub in time")]
    Dead,
}

impl Error {
    /// Whether the same command may succeed later: a temporary server error, a timeout or a
    /// lost connection.
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Server(body) => body.temporary,
            Self::Timeout | Self::Disconnected | Self::TooManyPending => true,
            _ => false,
        }
    }

    /// The server's error code, for [`Error::Server`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(body) => Some(body.code),
            _ => None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
