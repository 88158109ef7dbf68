//! Configuration reload: the settings a running hub can take without a restart, swapped in
//! whole ([`Hub::reload`]).
//!
//! What changes is read where it is used: the Origin policy and the token verifier at each
//! handshake, the API key and the admin credentials at each request, the rate limits, the
//! idle timeout and `max_connections_per_user` when a connection starts (connections open
//! before the reload keep theirs), `max_subscriptions` and `max_reply_size` at each command.
//!
//! The `[namespaces.*]` tables are taken whole (a table the new file leaves out is gone) and
//! their rules rebuilt; each command, request and plain-mode upgrade looks its channel's
//! rules up when it runs, so every one after the reload follows the new rules: who may
//! subscribe and publish, presence, recovery, `latest`, the hook flags, and the history size
//! and TTL, which the broker is given with the next publish. A subscription already made is
//! not judged again by the reload: it keeps receiving, even when its namespace lost the
//! permission or was removed, until the client unsubscribes or disconnects, or until the
//! connection's next token refresh, which checks its subscriptions against the rules in
//! force. Its history, presence and publishing answer as the new rules say meanwhile (112
//! for a removed namespace). An operation that waits on the broker (a subscribe reading
//! history) finishes under the rules it started with. The memory broker's sweep period follows the shortest TTL, read again
//! after every sweep. The merged configuration is validated whole, so a reload that removes
//! a namespace a plain-mode route or a Pusher app (kept from the start) still needs is
//! refused.
//!
//! Everything else (the listener, the broker, TLS, hooks, webhooks, the WebSocket limits
//! baked into each upgrade, the top-level `history`, `presence` and `auth.anonymous_*`
//! defaults a namespace inherits) needs a restart: a reload leaves it as it was.

use crate::auth::{Authenticator, JwtAuthenticator};
use crate::config::HubConfig;
use crate::hub::{Hub, HubError};
use crate::namespace::Namespaces;
use crate::origin::OriginPolicy;
use std::sync::Arc;

/// The keys a reload applies (a key ending in `.` is a whole section); every other key is
/// kept as the hub started with it.
pub const RELOADABLE: &[&str] = &[
    "origins.",
    "namespaces.",
    "auth.hs256_secret",
    "auth.rs256_public_key",
    "auth.es256_public_key",
    "auth.allow_anonymous",
    "auth.issuer",
    "auth.audience",
    "auth.jwks_url",
    "auth.jwks_timeout",
    "auth.jwks_refetch_interval",
    "auth.jwks_max_age",
    "api.key",
    "admin.user",
    "admin.password",
    "limits.max_subscriptions",
    "limits.max_connections_per_user",
    "limits.max_reply_size",
    "limits.request_timeout",
    "limits.idle_timeout",
    "limits.publish_rate",
    "limits.publish_burst",
    "limits.command_rate",
    "limits.command_burst",
];

/// Whether a reload applies `key` (a dotted key: `origins.allowed`, `limits.publish_rate`;
/// or a whole section: `namespaces`).
pub fn reloadable(key: &str) -> bool {
    RELOADABLE.iter().any(|r| match r.strip_suffix('.') {
        Some(section) => key
            .strip_prefix(section)
            .is_some_and(|k| k.is_empty() || k.starts_with('.')),
        None => key == *r,
    })
}

/// The settings a reload swaps, with what is built from them.
pub(crate) struct Live {
    /// The running configuration: the startup one with the [`RELOADABLE`] keys of the last
    /// reload.
    pub(crate) config: HubConfig,
    pub(crate) origins: OriginPolicy,
    pub(crate) auth: Arc<dyn Authenticator>,
    /// Every namespace's rules, resolved from `config`.
    pub(crate) namespaces: Namespaces,
}

impl Live {
    /// The settings from `config`; the verifier's first JWKS fetch starts.
    pub(crate) fn new(
        config: HubConfig,
        metrics: Arc<crate::metrics::Metrics>,
        previous: Option<&Self>,
    ) -> Result<Self, HubError> {
        let jwt = JwtAuthenticator::new(&config.auth, metrics)?;
        jwt.start();
        Ok(Self {
            origins: OriginPolicy::new(&config.origins),
            namespaces: match previous {
                Some(previous) => Namespaces::after(&previous.namespaces, &config),
                None => Namespaces::new(&config),
            },
            auth: Arc::new(jwt),
            config,
        })
    }
}

/// `running` with the [`RELOADABLE`] keys taken from `new`.
fn merged(running: &HubConfig, new: &HubConfig) -> HubConfig {
    let mut out = running.clone();
    out.origins = new.origins.clone();
    out.namespaces.clone_from(&new.namespaces);
    let (a, n) = (&mut out.auth, &new.auth);
    a.hs256_secret.clone_from(&n.hs256_secret);
    a.rs256_public_key.clone_from(&n.rs256_public_key);
    a.es256_public_key.clone_from(&n.es256_public_key);
    a.allow_anonymous = n.allow_anonymous;
    a.issuer.clone_from(&n.issuer);
    a.audience.clone_from(&n.audience);
    a.jwks_url.clone_from(&n.jwks_url);
    a.jwks_timeout = n.jwks_timeout;
    a.jwks_refetch_interval = n.jwks_refetch_interval;
    a.jwks_max_age = n.jwks_max_age;
    out.api.key.clone_from(&new.api.key);
    out.admin.user.clone_from(&new.admin.user);
    out.admin.password.clone_from(&new.admin.password);
    let (l, n) = (&mut out.limits, &new.limits);
    l.max_subscriptions = n.max_subscriptions;
    l.max_connections_per_user = n.max_connections_per_user;
    l.max_reply_size = n.max_reply_size;
    l.request_timeout = n.request_timeout;
    l.idle_timeout = n.idle_timeout;
    l.publish_rate = n.publish_rate;
    l.publish_burst = n.publish_burst;
    l.command_rate = n.command_rate;
    l.command_burst = n.command_burst;
    out
}

impl Hub {
    /// The settings in force now (see [`reload`](Self::reload)).
    pub(crate) fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }

    /// The configuration in force: the startup one with the [`RELOADABLE`] keys of the
    /// last reload applied.
    pub fn running_config(&self) -> HubConfig {
        self.live().config.clone()
    }

    /// Takes the [`RELOADABLE`] settings of `new`: the whole of `new` is validated first, and
    /// its key files read, so a refused reload changes nothing. New handshakes, requests and
    /// connections see the new settings; a connection already open keeps the limits it
    /// started with. Counted in `herald_config_reloads_total{outcome="applied"}`, or
    /// `"refused"` with the error logged.
    ///
    /// # Errors
    /// [`HubError::Config`] for a configuration [`HubConfig::validate`] refuses, or
    /// [`HubError::Key`] for an unusable key file.
    pub fn reload(&self, new: &HubConfig) -> Result<(), HubError> {
        let previous = self.live();
        let running = merged(&previous.config, new);
        // The merge is checked too: a key kept from the startup file (`admin.enabled`) may
        // need one that changed (`admin.password`).
        let built = new
            .validate()
            .and_then(|()| running.validate())
            .map_err(HubError::from)
            .and_then(|()| Live::new(running, self.metrics.clone(), Some(&previous)));
        drop(previous);
        match built {
            Ok(live) => {
                self.live.store(Arc::new(live));
                self.metrics.config_reload("applied");
                Ok(())
            }
            Err(e) => {
                self.reload_refused(&e);
                Err(e)
            }
        }
    }

    /// Counts and logs a reload refused before it reached [`reload`](Self::reload) (a file
    /// that does not parse).
    pub fn reload_refused(&self, error: &dyn std::fmt::Display) {
        self.metrics.config_reload("refused");
        tracing::error!(error = %error, "configuration reload refused: keeping the running configuration");
    }

    /// Counts a reload that changed nothing.
    pub fn reload_unchanged(&self) {
        self.metrics.config_reload("unchanged");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sections_and_keys_are_matched_whole() {
        assert!(reloadable("origins.allowed"));
        assert!(reloadable("limits.publish_rate"));
        assert!(reloadable("namespaces"));
        assert!(reloadable("namespaces.chat.publish"));
        assert!(!reloadable("namespacesx"));
        assert!(!reloadable("limits.max_connections"));
        assert!(!reloadable("originsx.allowed"));
        assert!(!reloadable("listen"));
        assert!(!reloadable("broker"));
        assert!(!reloadable("auth.anonymous_subscribe"));
    }

    #[test]
    fn a_merge_takes_the_reloadable_keys_only() {
        let running = HubConfig::default();
        let mut new = HubConfig::default();
        new.listen = "127.0.0.1:9".parse().unwrap_or(new.listen);
        new.limits.max_connections = 7;
        new.limits.max_subscriptions = 3;
        new.origins.allowed = vec!["https://a.example".into()];
        new.auth.anonymous_subscribe = Some(vec![]);
        let m = merged(&running, &new);
        assert_eq!(m.listen, running.listen);
        assert_eq!(m.limits.max_connections, running.limits.max_connections);
        assert_eq!(m.limits.max_subscriptions, 3);
        assert_eq!(m.origins.allowed, new.origins.allowed);
        assert_eq!(m.auth.anonymous_subscribe, None);
    }

    fn with_namespace(name: &str, publish: bool) -> HubConfig {
        let mut c = HubConfig::default();
        let table = crate::config::NamespaceConfig {
            publish: Some(publish),
            ..Default::default()
        };
        c.namespaces.insert(name.into(), table);
        c
    }

    fn client_publish(hub: &Hub, channel: &str) -> Result<bool, u16> {
        let live = hub.live();
        let rules = live.namespaces.rules(channel, &hub.metrics);
        rules.map(|r| r.client_publish).map_err(|e| e.code.0)
    }

    #[test]
    fn a_merge_takes_the_namespace_tables_whole() {
        let running = with_namespace("chat", false);
        let mut new = with_namespace("chat", true);
        new.namespaces.insert("news".into(), Default::default());
        let m = merged(&running, &new);
        assert_eq!(m.namespaces.len(), 2);
        assert_eq!(m.namespaces["chat"].publish, Some(true));
        // A namespace the new file leaves out is gone.
        let m = merged(&m, &with_namespace("news", true));
        assert_eq!(m.namespaces.keys().collect::<Vec<_>>(), ["news"]);
    }

    #[tokio::test]
    async fn a_reload_swaps_the_rules_and_one_that_strands_a_route_changes_nothing() {
        let mut start = with_namespace("chat", false);
        start.plain.routes = vec![crate::config::PlainRoute {
            path: "/chat".into(),
            params: vec![],
        }];
        let hub = Hub::new(start).unwrap();
        assert_eq!(client_publish(&hub, "chat:1"), Ok(false));
        let mut new = with_namespace("chat", true);
        new.namespaces.insert("news".into(), Default::default());
        hub.reload(&new).unwrap();
        assert_eq!(client_publish(&hub, "chat:1"), Ok(true));
        assert_eq!(client_publish(&hub, "news:1"), Ok(true));
        // The route `/chat` (kept from the start) needs the namespace `chat`: refused whole.
        let e = hub.reload(&with_namespace("news", false)).unwrap_err();
        assert!(e.to_string().contains("plain.routes"), "{e}");
        assert_eq!(client_publish(&hub, "chat:1"), Ok(true));
        assert_eq!(client_publish(&hub, "news:1"), Ok(true));
        assert_eq!(hub.running_config().namespaces.len(), 2);
        let refused = hub
            .metrics
            .config_reloads
            .get_or_create(&vec![("outcome".into(), "refused".into())])
            .get();
        assert_eq!(refused, 1);
    }
}
