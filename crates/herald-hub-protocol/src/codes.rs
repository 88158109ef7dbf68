//! Error codes (in replies) and disconnect codes (WebSocket close codes).
//!
//! The shared table is `codes.json` at the root of this crate. The constants below are written
//! by hand from it, and `tests/codes.rs` checks them against it entry for entry: names, codes,
//! `temporary` and messages, reasons and `reconnect`, and the reconnect ranges. herald.js keeps
//! its own hand-written copy (`CODES` in `web/herald.js`), which `web/test/codes.test.js` checks
//! against the same file. A change starts in `codes.json`; both tests fail until both copies
//! follow it.

use serde::{Deserialize, Serialize};

/// The code of an error reply: stable, numeric, with a hint whether retrying may succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// The server failed; the command may succeed later.
    pub const INTERNAL: Self = Self(100);
    /// The connection carries no identity and the command needs one.
    pub const UNAUTHORIZED: Self = Self(101);
    /// The command's method is not one this protocol knows.
    pub const UNKNOWN_METHOD: Self = Self(102);
    /// The token's claims (or the anonymous policy) do not allow this channel.
    pub const PERMISSION_DENIED: Self = Self(103);
    /// `subscribe` for a channel this connection already holds.
    pub const ALREADY_SUBSCRIBED: Self = Self(104);
    /// `unsubscribe` for a channel this connection does not hold.
    pub const NOT_SUBSCRIBED: Self = Self(105);
    /// A configured limit (subscriptions per connection, history size) was reached.
    pub const LIMIT_EXCEEDED: Self = Self(106);
    /// The command is malformed: missing field, invalid channel name, oversized data.
    pub const BAD_REQUEST: Self = Self(107);
    /// The connection publishes faster than allowed; slow down.
    pub const RATE_LIMITED: Self = Self(108);
    /// The broker cannot be reached; nothing was published. Retry later.
    pub const UNAVAILABLE: Self = Self(109);
    /// History cannot start at the requested position (other epoch, or trimmed).
    pub const POSITION_UNAVAILABLE: Self = Self(110);
    /// The broker did not answer in time after the command may have taken effect (a publish
    /// may or may not have been stored). Check with `history` before retrying a publish.
    pub const OUTCOME_UNKNOWN: Self = Self(111);
    /// The channel's namespace (the part before its first `:`) is not configured.
    pub const UNKNOWN_NAMESPACE: Self = Self(112);

    /// Every code, with its name in `codes.json`.
    pub const ALL: [(&'static str, Self); 13] = [
        ("internal", Self::INTERNAL),
        ("unauthorized", Self::UNAUTHORIZED),
        ("unknown_method", Self::UNKNOWN_METHOD),
        ("permission_denied", Self::PERMISSION_DENIED),
        ("already_subscribed", Self::ALREADY_SUBSCRIBED),
        ("not_subscribed", Self::NOT_SUBSCRIBED),
        ("limit_exceeded", Self::LIMIT_EXCEEDED),
        ("bad_request", Self::BAD_REQUEST),
        ("rate_limited", Self::RATE_LIMITED),
        ("unavailable", Self::UNAVAILABLE),
        ("position_unavailable", Self::POSITION_UNAVAILABLE),
        ("outcome_unknown", Self::OUTCOME_UNKNOWN),
        ("unknown_namespace", Self::UNKNOWN_NAMESPACE),
    ];

    /// Whether the same command may succeed if retried later.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Self::INTERNAL | Self::RATE_LIMITED | Self::UNAVAILABLE | Self::OUTCOME_UNKNOWN
        )
    }

    /// The default message for this code.
    pub fn message(self) -> &'static str {
        match self.0 {
            100 => "internal error",
            101 => "unauthorized",
            102 => "unknown method",
            103 => "permission denied",
            104 => "already subscribed",
            105 => "not subscribed",
            106 => "limit exceeded",
            107 => "bad request",
            108 => "rate limited",
            109 => "temporarily unavailable",
            110 => "position unavailable",
            111 => "outcome unknown",
            112 => "unknown namespace",
            _ => "error",
        }
    }
}

/// Why the server closed a connection: the WebSocket close code and reason it sends.
///
/// Codes 4000–4499 ask the client to reconnect (and recover its subscriptions); 4500–4999 ask
/// it not to. Among the RFC 6455 codes, 1001 and 1011 mean reconnect; 1000, 1008 and 1009 don't.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Disconnect {
    /// The close code.
    pub code: u16,
    /// The close reason: short, stable, ASCII.
    pub reason: &'static str,
}

impl Disconnect {
    /// A normal close.
    pub const NORMAL: Self = Self::new(1000, "");
    /// The server is shutting down or restarting: reconnect (to another node).
    pub const SHUTDOWN: Self = Self::new(1001, "server shutting down");
    /// A policy was broken (permission in plain mode, publish rate): do not reconnect.
    pub const POLICY: Self = Self::new(1008, "policy violation");
    /// A message over the size limit: do not reconnect.
    pub const TOO_BIG: Self = Self::new(1009, "message too big");
    /// The server failed: reconnect.
    pub const INTERNAL: Self = Self::new(1011, "internal error");
    /// The connection did not read fast enough and its queue overflowed: reconnect and recover.
    pub const SLOW: Self = Self::new(4001, "slow consumer");
    /// The server may have missed messages for a subscription: reconnect and recover.
    pub const INSUFFICIENT_STATE: Self = Self::new(4002, "insufficient state");
    /// The broker is unreachable: reconnect later and recover.
    pub const UNAVAILABLE: Self = Self::new(4003, "broker unavailable");
    /// The connection's writes made no progress for `limits.write_timeout` (the client stopped
    /// reading): reconnect and recover.
    pub const WRITE_TIMEOUT: Self = Self::new(4004, "write timeout");
    /// The client sent something that is not a valid command: do not reconnect.
    pub const BAD_REQUEST: Self = Self::new(4500, "bad request");
    /// The connection's credentials are no longer valid: do not reconnect with them.
    pub const UNAUTHORIZED: Self = Self::new(4501, "unauthorized");
    /// The connection held no subscription for the idle timeout: do not reconnect.
    pub const IDLE: Self = Self::new(4502, "idle timeout");
    /// The user already holds `limits.max_connections_per_user` connections (over every
    /// node): do not reconnect until one of them closes.
    pub const CONNECTION_LIMIT: Self = Self::new(4503, "too many connections");
    /// The application's backend disconnected the user through the server API: do not
    /// reconnect. The API may name another code and reason for the same close.
    pub const TERMINATED: Self = Self::new(4504, "disconnected by the server");

    /// Every disconnect, with its name in `codes.json`.
    pub const ALL: [(&'static str, Self); 14] = [
        ("normal", Self::NORMAL),
        ("shutdown", Self::SHUTDOWN),
        ("policy", Self::POLICY),
        ("too_big", Self::TOO_BIG),
        ("internal", Self::INTERNAL),
        ("slow", Self::SLOW),
        ("insufficient_state", Self::INSUFFICIENT_STATE),
        ("unavailable", Self::UNAVAILABLE),
        ("write_timeout", Self::WRITE_TIMEOUT),
        ("bad_request", Self::BAD_REQUEST),
        ("unauthorized", Self::UNAUTHORIZED),
        ("idle", Self::IDLE),
        ("connection_limit", Self::CONNECTION_LIMIT),
        ("terminated", Self::TERMINATED),
    ];

    /// A disconnect with a code and reason of its own (the server API's `disconnect`).
    pub const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// Whether a client should reconnect after a close with `code`.
    pub fn should_reconnect(code: u16) -> bool {
        matches!(code, 1001 | 1006 | 1011 | 1012 | 1013 | 4000..=4499)
    }
}
