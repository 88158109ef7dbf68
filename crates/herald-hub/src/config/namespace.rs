//! `[namespaces.NAME]`: settings for the channels whose name starts with `NAME:`.
//!
//! A key a namespace leaves unset takes the default namespace's value: the top-level
//! `history.size`, `history.ttl`, `presence.enabled`, `presence.join_leave` and
//! `auth.anonymous_subscribe`/`auth.anonymous_publish`. [`HubConfig::validate`] checks the
//! tables; the hub resolves them once into the rules `namespace.rs` applies.
//!
//! [`HubConfig::validate`]: super::HubConfig::validate

use serde::Deserialize;
use std::time::Duration;

/// Most `[namespaces.*]` tables: the lookup is a map, but a configuration with more is a
/// mistake (channel names, not namespaces, are meant to be many).
pub const MAX_NAMESPACES: usize = 1000;

/// Largest `history_size` (and so `latest`) a namespace may set: a channel's whole history
/// must stay readable, and every reply is capped by `limits.max_reply_size` anyway.
pub const MAX_HISTORY_SIZE: usize = 1_000_000;

/// One namespace's settings. Every key is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Publications kept per channel (0: no history, so no recovery and no `latest`).
    /// Unset: `history.size`.
    pub history_size: Option<usize>,
    /// How long a channel's history lives after its last publish. Unset: `history.ttl`.
    #[serde(with = "humantime_serde")]
    pub history_ttl: Option<Duration>,
    /// Track presence in the namespace's channels (off: `presence` answers 107, no joins or
    /// leaves are announced). Unset: `presence.enabled`.
    pub presence: Option<bool>,
    /// Allow `join`/`leave` pushes to subscribers that ask for them. Unset:
    /// `presence.join_leave`.
    pub join_leave: Option<bool>,
    /// Let connections publish (protocol and plain mode). Off: only the HTTP API publishes,
    /// and a connection's publish is refused with 103 (plain mode: closed with 1008). Unset:
    /// true.
    pub publish: Option<bool>,
    /// Offer recovery to `subscribe` with `recover`. Off: the reply says
    /// `recovered: false` with no publications, so the client reloads its state. Unset: true.
    pub recover: Option<bool>,
    /// Newest publications a `subscribe` without `recover` returns (a client may ask for
    /// fewer with `latest`); at most `history_size`. Unset: 0.
    pub latest: Option<usize>,
    /// Channel patterns (matched against the whole channel name, `chat:*`) anonymous
    /// connections may subscribe to in this namespace. Unset: `auth.anonymous_subscribe`'s.
    pub anonymous_subscribe: Option<Vec<String>>,
    /// Channel patterns anonymous connections may publish to in this namespace. Unset:
    /// `auth.anonymous_publish`'s.
    pub anonymous_publish: Option<Vec<String>>,
    /// Ask the backend (`hooks.subscribe.url`) before each subscribe in the namespace,
    /// protocol and plain mode. Unset: false.
    pub subscribe_hook: Option<bool>,
    /// Ask the backend (`hooks.publish.url`) before each publication from a connection in
    /// the namespace; it may rewrite the data. The HTTP API's publications are not asked
    /// about. Unset: false.
    pub publish_hook: Option<bool>,
    /// Send each publication in the namespace (from connections and the HTTP API) to the
    /// backend as a `publication` webhook event (`webhooks.url`). Unset: false.
    pub webhook_publications: Option<bool>,
}
