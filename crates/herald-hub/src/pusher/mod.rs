//! The Pusher Channels protocol (version 7) and Pusher's HTTP API, as an adapter over the
//! hub's service API.
//!
//! A Pusher app's channel `NAME` is the hub channel `NAMESPACE:NAME` (the app's namespace,
//! `pusher-ID` by default): history, presence, limits, the Redis broker and metrics apply
//! to it as to any channel, and a `herald.v1` client there shares it with Pusher clients.
//! A Pusher event is stored as the JSON envelope `{"event", "data"[, "socket_id"]}`
//! ([`frame`]); a publication of another shape reaches Pusher clients as event `message`.
//!
//! What stays here are the protocol's own rules: channel authorisation by HMAC
//! ([`sign`]), its socket ids, its error codes and its message shapes. The session
//! (`session/pusher.rs`) drives a connection through the hub's one session model.
//!
//! Each app has its own limits ([`PusherLimits`](crate::config::PusherLimits), Pusher's by
//! default), checked in the session and the API beside the hub's. Pusher webhooks come from
//! the hub's outbox (`webhooks/pusher.rs`).

pub(crate) mod api;
pub(crate) mod frame;
pub(crate) mod sign;
mod signed;
pub(crate) mod ws;

use crate::config::{PusherApp, PusherConfig};
use std::collections::HashMap;
use std::sync::Arc;

/// One app, resolved from its configuration.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: PusherApp,
    /// `NAMESPACE:`, what the app's channel names are prefixed with in the hub.
    pub(crate) prefix: String,
}

impl App {
    /// The hub channel of the app's channel `name`.
    pub(crate) fn hub_channel(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The app's channel name of hub channel `channel`, when it is one of the app's.
    pub(crate) fn pusher_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(self.prefix.as_str())
    }

    /// The hub user a signed-in Pusher user is held under: the app's namespace and the id,
    /// so two apps' users never meet.
    pub(crate) fn hub_user(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Whether `name` is a channel name of this app: Pusher's characters, and no longer than
    /// its `limits.max_channel_name_length`.
    pub(crate) fn valid_channel(&self, name: &str) -> bool {
        valid_channel(name, self.config.limits.max_channel_name_length)
    }

    /// The key the app's connections are counted under over every node (for
    /// `limits.max_connections`), in the broker's count of connections by user: it starts
    /// with a NUL, so no user id meets it in practice.
    pub(crate) fn connections_key(&self) -> String {
        format!("\0pusher-app:{}", self.config.id)
    }

    /// The hidden hub channel a signed-in user is present in, for the watchlists that name
    /// the user: `#` is not a Pusher channel character, so no client subscribes to it.
    pub(crate) fn online_channel(&self, id: &str) -> String {
        format!("{}#online-{id}", self.prefix)
    }
}

/// Every configured app, by key (for connections) and by id (for the HTTP API).
#[derive(Debug, Default)]
pub(crate) struct Apps {
    by_key: HashMap<String, Arc<App>>,
    by_id: HashMap<String, Arc<App>>,
}

impl Apps {
    pub(crate) fn new(config: &PusherConfig) -> Self {
        let mut apps = Self::default();
        for app in &config.apps {
            let app = Arc::new(App {
                prefix: format!("{}:", app.namespace()),
                config: app.clone(),
            });
            apps.by_key.insert(app.config.key.clone(), app.clone());
            apps.by_id.insert(app.config.id.clone(), app);
        }
        apps
    }

    pub(crate) fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// The channel kinds Pusher distinguishes by prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Public,
    Private,
    Encrypted,
    Presence,
}

impl Kind {
    pub(crate) fn of(channel: &str) -> Self {
        if channel.starts_with("private-encrypted-") {
            Self::Encrypted
        } else if channel.starts_with("private-") {
            Self::Private
        } else if channel.starts_with("presence-") {
            Self::Presence
        } else {
            Self::Public
        }
    }

    /// Whether a subscription needs the app's signature.
    pub(crate) fn needs_auth(self) -> bool {
        self != Self::Public
    }
}

/// The Pusher socket id of hub client id `NODE-N` (`NODE` 8 hex digits): `DECIMAL(NODE).N`,
/// the `\d+\.\d+` shape the server SDKs check.
pub(crate) fn socket_id(client: &str) -> String {
    match client
        .split_once('-')
        .and_then(|(node, n)| Some((u32::from_str_radix(node, 16).ok()?, n)))
    {
        Some((node, n)) => format!("{node}.{n}"),
        None => client.to_owned(),
    }
}

/// Whether `id` has the shape of a socket id: digits, a dot, digits.
pub(crate) fn valid_socket_id(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    id.split_once('.')
        .is_some_and(|(a, b)| digits(a) && digits(b))
}

/// Pusher's channel name rule: at most `longest` (Pusher's: 164) characters of
/// `A-Za-z0-9_-=@,.;`. (`;` is not a hub channel character, so a name with one is refused by
/// the hub's name rule in turn.)
pub(crate) fn valid_channel(name: &str, longest: usize) -> bool {
    !name.is_empty()
        && name.len() <= longest
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-=@,.;".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_have_the_sdks_shape() {
        assert_eq!(socket_id("0000002a-17"), "42.17");
        assert_eq!(socket_id("ffffffff-1"), "4294967295.1");
        assert!(valid_socket_id(&socket_id("9f2c01ab-123")));
        for bad in ["", "1", "1.", ".1", "a.1", "1.2.3", "1.2 "] {
            assert!(!valid_socket_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn kinds_follow_the_prefixes() {
        assert_eq!(Kind::of("private-encrypted-x"), Kind::Encrypted);
        assert_eq!(Kind::of("private-x"), Kind::Private);
        assert_eq!(Kind::of("presence-x"), Kind::Presence);
        assert_eq!(Kind::of("x-private-"), Kind::Public);
        assert!(!Kind::Public.needs_auth());
    }

    #[test]
    fn channel_names_follow_pushers_rule() {
        assert!(valid_channel("private-a_b-c=d@e,f.g;h", 164));
        assert!(!valid_channel("a b", 164));
        assert!(!valid_channel("a:b", 164));
        assert!(valid_channel(&"a".repeat(164), 164));
        assert!(!valid_channel(&"a".repeat(165), 164));
        assert!(!valid_channel("", 164));
    }
}
