//! Namespaces: which rules a channel follows. The one place that turns a channel name into
//! its namespace's rules, used by the service API (`service.rs`), sessions and the upgrade,
//! so plain mode, protocol mode and the HTTP API cannot disagree.
//!
//! A channel `ns:rest` is in namespace `ns` (the part before the first `:`); a channel
//! without `:` is in the default namespace, whose rules are the top-level `history`,
//! `presence` and `auth.anonymous_*` settings. With no `[namespaces.*]` table configured,
//! namespacing is off: every channel, `chat:1234` included, follows the default namespace.
//! With at least one, a channel whose prefix is not configured is refused with 112
//! (`unknown_namespace`; 400 over HTTP and at the plain-mode upgrade).

use crate::auth::{Identity, patterns};
use crate::broker::Retention;
use crate::config::{HubConfig, NamespaceConfig};
use crate::metrics::Metrics;
use herald_hub_protocol::{ErrorBody, ErrorCode};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use wildmatch::WildMatch;

/// What separates a namespace from the rest of a channel name.
const SEPARATOR: char = ':';

/// One namespace's rules, resolved from its table and the defaults once, at start.
#[derive(Debug)]
pub(crate) struct Rules {
    /// What each channel's history keeps (given to the broker with every publish).
    pub(crate) retention: Retention,
    /// Presence is tracked (`presence` answers, joins and leaves are announced).
    pub(crate) presence: bool,
    /// `join`/`leave` pushes may be asked for.
    pub(crate) join_leave: bool,
    /// Connections may publish; off, only the HTTP API does.
    pub(crate) client_publish: bool,
    /// `subscribe` with `recover` may recover; off, it answers `recovered: false`.
    pub(crate) recover: bool,
    /// Newest publications a `subscribe` without `recover` returns, at most.
    pub(crate) latest: usize,
    /// Each subscribe is asked of the subscribe hook first.
    pub(crate) subscribe_hook: bool,
    /// Each publication from a connection is asked of the publish hook first.
    pub(crate) publish_hook: bool,
    /// Each publication is a `publication` webhook event.
    pub(crate) webhook_publications: bool,
    anonymous_subscribe: Vec<WildMatch>,
    anonymous_publish: Vec<WildMatch>,
}

impl Rules {
    fn new(config: &HubConfig, table: &NamespaceConfig) -> Self {
        let auth = &config.auth;
        let anonymous_subscribe = table
            .anonymous_subscribe
            .clone()
            .unwrap_or_else(|| auth.anonymous_subscribe_patterns());
        let anonymous_publish = table
            .anonymous_publish
            .clone()
            .unwrap_or_else(|| auth.anonymous_publish_patterns());
        Self {
            retention: Retention {
                size: table.history_size.unwrap_or(config.history.size),
                ttl: table.history_ttl.unwrap_or(config.history.ttl),
            },
            presence: table.presence.unwrap_or(config.presence.enabled),
            join_leave: table.join_leave.unwrap_or(config.presence.join_leave),
            client_publish: table.publish.unwrap_or(true),
            recover: table.recover.unwrap_or(true),
            latest: table.latest.unwrap_or(0),
            subscribe_hook: table.subscribe_hook.unwrap_or(false),
            publish_hook: table.publish_hook.unwrap_or(false),
            webhook_publications: table.webhook_publications.unwrap_or(false),
            anonymous_subscribe: patterns(&anonymous_subscribe),
            anonymous_publish: patterns(&anonymous_publish),
        }
    }

    /// How many publications a `history` read returns: what was asked (all retained when
    /// unset), at most the history size.
    pub(crate) fn history_limit(&self, asked: Option<usize>) -> usize {
        let size = self.retention.size;
        asked.unwrap_or(size).min(size)
    }

    /// How many of the newest publications a `subscribe` without `recover` returns: what was
    /// asked (the namespace's `latest` when unset), at most the namespace's `latest`.
    pub(crate) fn latest(&self, asked: Option<usize>) -> usize {
        asked.unwrap_or(self.latest).min(self.latest)
    }

    fn may_subscribe(&self, identity: &Identity, channel: &str) -> bool {
        if identity.anonymous {
            self.anonymous_subscribe.iter().any(|p| p.matches(channel))
        } else {
            identity.can_subscribe(channel)
        }
    }

    fn may_publish(&self, identity: &Identity, channel: &str) -> bool {
        if identity.anonymous {
            self.anonymous_publish.iter().any(|p| p.matches(channel))
        } else {
            identity.can_publish(channel)
        }
    }
}

/// Every namespace's rules, and the lookup from a channel name. Held by the reloadable
/// settings (`reload.rs`): a reload swaps the whole set; an operation that waits on the
/// broker keeps the one [`Rules`] it looked up (an `Arc`), so it finishes under the rules it
/// started with.
#[derive(Debug)]
pub(crate) struct Namespaces {
    default: Arc<Rules>,
    /// Empty: namespacing is off.
    named: HashMap<String, Arc<Rules>>,
    /// The namespaces (`""` for the default one) whose rules tracked presence at some time
    /// since the hub started: a subscription made then may have a presence member to remove,
    /// though a reload turned presence off since.
    had_presence: HashSet<String>,
}

/// A refusal by a namespace rule: counted in `herald_namespace_refusals_total{rule}`, then
/// answered with `code`.
fn refused(metrics: &Metrics, rule: &'static str, code: ErrorCode, message: &str) -> ErrorBody {
    metrics.namespace_refusal(rule);
    ErrorBody::with_message(code, message)
}

impl Namespaces {
    /// The rules of every configured namespace and of the default one.
    pub(crate) fn new(config: &HubConfig) -> Self {
        let default = Arc::new(Rules::new(config, &NamespaceConfig::default()));
        let named: HashMap<String, Arc<Rules>> = config
            .namespaces
            .iter()
            .map(|(name, table)| (name.clone(), Arc::new(Rules::new(config, table))))
            .collect();
        let had_presence = named
            .iter()
            .filter(|(_, rules)| rules.presence)
            .map(|(name, _)| name.clone())
            .chain(default.presence.then(String::new))
            .collect();
        Self {
            default,
            named,
            had_presence,
        }
    }

    /// The rules of `config`, remembering which namespaces tracked presence under
    /// `previous` (and before it).
    pub(crate) fn after(previous: &Self, config: &HubConfig) -> Self {
        let mut next = Self::new(config);
        next.had_presence
            .extend(previous.had_presence.iter().cloned());
        next
    }

    /// Whether a subscription to `channel` may have added a presence member: its namespace
    /// tracks presence, did at some time since the hub started, or was removed by a reload
    /// (so that unsubscribing leaves no member behind).
    pub(crate) fn may_hold_presence(&self, channel: &str) -> bool {
        let name = match channel.split_once(SEPARATOR) {
            Some((name, _)) if !self.named.is_empty() => name,
            _ => "",
        };
        self.had_presence.contains(name) || self.lookup(channel).is_none_or(|r| r.presence)
    }

    /// The shortest history TTL of any namespace: how often the memory broker's sweep must
    /// run to forget idle streams in time.
    pub(crate) fn shortest_ttl(&self) -> std::time::Duration {
        self.named
            .values()
            .map(|r| r.retention.ttl)
            .fold(self.default.retention.ttl, std::cmp::min)
    }

    /// The rules `channel` follows.
    ///
    /// # Errors
    /// 112 when namespacing is on and the channel's namespace is not configured.
    pub(crate) fn rules(&self, channel: &str, metrics: &Metrics) -> Result<&Arc<Rules>, ErrorBody> {
        self.lookup(channel).ok_or_else(|| {
            refused(
                metrics,
                "unknown_namespace",
                ErrorCode::UNKNOWN_NAMESPACE,
                "unknown namespace",
            )
        })
    }

    /// The rules `channel` follows, or `None` for an unknown namespace; refuses nothing, so
    /// counts nothing.
    fn lookup(&self, channel: &str) -> Option<&Arc<Rules>> {
        match channel.split_once(SEPARATOR) {
            Some((name, _)) if !self.named.is_empty() => self.named.get(name),
            _ => Some(&self.default),
        }
    }

    /// Whether `identity` may subscribe to (and read history and presence of) `channel`.
    ///
    /// # Errors
    /// 112 for an unknown namespace, 103 without permission.
    pub(crate) fn check_subscribe(
        &self,
        identity: &Identity,
        channel: &str,
        metrics: &Metrics,
    ) -> Result<(), ErrorBody> {
        if self
            .rules(channel, metrics)?
            .may_subscribe(identity, channel)
        {
            Ok(())
        } else {
            Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED))
        }
    }

    /// Whether `identity` may publish to `channel` (its patterns; that the namespace lets
    /// connections publish at all is [`check_client_publish`](Self::check_client_publish)'s).
    ///
    /// # Errors
    /// 112 for an unknown namespace, 103 without permission.
    pub(crate) fn check_publish(
        &self,
        identity: &Identity,
        channel: &str,
        metrics: &Metrics,
    ) -> Result<(), ErrorBody> {
        if self.rules(channel, metrics)?.may_publish(identity, channel) {
            Ok(())
        } else {
            Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED))
        }
    }
}

/// 103 when a connection publishes where only the server may.
pub(crate) fn check_client_publish(rules: &Rules, metrics: &Metrics) -> Result<(), ErrorBody> {
    if rules.client_publish {
        return Ok(());
    }
    Err(refused(
        metrics,
        "publish",
        ErrorCode::PERMISSION_DENIED,
        "only the server publishes in this namespace",
    ))
}

/// 107 when the namespace tracks no presence.
pub(crate) fn check_presence(rules: &Rules, metrics: &Metrics) -> Result<(), ErrorBody> {
    if rules.presence {
        return Ok(());
    }
    Err(refused(
        metrics,
        "presence",
        ErrorCode::BAD_REQUEST,
        "presence is disabled",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn identity(anonymous: bool, patterns: &[&str]) -> Identity {
        let list: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        Identity {
            user: String::new(),
            subscribe: crate::auth::patterns(&list).into(),
            publish: crate::auth::patterns(&list).into(),
            subs: Vec::new(),
            expires: None,
            anonymous,
            from_hook: false,
        }
    }

    fn with(tables: &[(&str, NamespaceConfig)]) -> Namespaces {
        let mut config = HubConfig::default();
        for (name, table) in tables {
            config.namespaces.insert((*name).to_owned(), table.clone());
        }
        Namespaces::new(&config)
    }

    #[test]
    fn a_namespace_that_tracked_presence_before_a_reload_may_still_hold_members() {
        let table = |presence| NamespaceConfig {
            presence: Some(presence),
            ..NamespaceConfig::default()
        };
        let metrics = Metrics::new();
        let before = with(&[("room", table(true)), ("feed", table(false))]);
        assert!(before.may_hold_presence("room:1"));
        assert!(!before.may_hold_presence("feed:1"));
        let mut config = HubConfig::default();
        config.namespaces.insert("room".into(), table(false));
        config.namespaces.insert("feed".into(), table(false));
        let after = Namespaces::after(&before, &config);
        assert!(!after.rules("room:1", &metrics).unwrap().presence);
        assert!(
            after.may_hold_presence("room:1"),
            "members added before presence was turned off are still removed"
        );
        assert!(!after.may_hold_presence("feed:1"));
        assert!(
            Namespaces::after(&after, &config).may_hold_presence("room:1"),
            "remembered over later reloads"
        );
    }

    #[test]
    fn a_namespace_removed_by_a_reload_may_still_hold_members() {
        let before = with(&[("room", NamespaceConfig::default())]);
        let mut config = HubConfig::default();
        config
            .namespaces
            .insert("feed".into(), NamespaceConfig::default());
        let after = Namespaces::after(&before, &config);
        assert!(after.rules("room:1", &Metrics::new()).is_err());
        // Asking counts no refusal (it takes no metrics): an unsubscribe is no refused command.
        assert!(
            after.may_hold_presence("room:1"),
            "an unsubscribe after the reload still removes the member"
        );
    }

    #[test]
    fn without_namespaces_every_channel_follows_the_default_rules() {
        let ns = with(&[]);
        let metrics = Metrics::new();
        for channel in ["chat:1234", "news", "a:b:c"] {
            let rules = ns.rules(channel, &metrics).unwrap();
            assert_eq!(rules.retention, Retention::default());
        }
    }

    #[test]
    fn with_namespaces_the_prefix_before_the_first_colon_picks_the_rules() {
        let chat = NamespaceConfig {
            history_size: Some(7),
            history_ttl: Some(Duration::from_secs(9)),
            ..NamespaceConfig::default()
        };
        let ns = with(&[("chat", chat)]);
        let metrics = Metrics::new();
        let rules = ns.rules("chat:a:b", &metrics).unwrap();
        assert_eq!(rules.retention.size, 7);
        assert_eq!(rules.retention.ttl, Duration::from_secs(9));
        assert_eq!(ns.rules("lobby", &metrics).unwrap().retention.size, 100);
        let unknown = ns.rules("news:1", &metrics).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UNKNOWN_NAMESPACE);
        // The prefix is compared whole: `chatter:1` is not in `chat`.
        assert!(ns.rules("chatter:1", &metrics).is_err());
    }

    #[test]
    fn latest_is_what_was_asked_capped_by_the_namespace() {
        let ns = with(&[(
            "prices",
            NamespaceConfig {
                latest: Some(3),
                ..NamespaceConfig::default()
            },
        )]);
        let rules = ns.rules("prices:eur", &Metrics::new()).unwrap();
        assert_eq!(rules.latest(None), 3);
        assert_eq!(rules.latest(Some(1)), 1);
        assert_eq!(rules.latest(Some(50)), 3);
        assert_eq!(rules.history_limit(Some(500)), 100);
    }

    #[test]
    fn anonymous_connections_get_their_namespaces_patterns_and_tokens_their_claims() {
        let public = NamespaceConfig {
            anonymous_subscribe: Some(vec!["public:*".into()]),
            anonymous_publish: Some(vec![]),
            ..NamespaceConfig::default()
        };
        let ns = with(&[("public", public), ("private", NamespaceConfig::default())]);
        let m = Metrics::new();
        let anonymous = identity(true, &[]);
        assert!(ns.check_subscribe(&anonymous, "public:1", &m).is_ok());
        let denied = ns.check_publish(&anonymous, "public:1", &m).unwrap_err();
        assert_eq!(denied.code, ErrorCode::PERMISSION_DENIED);
        // Unset in `private`: the top-level default (`*`, no key is configured).
        assert!(ns.check_publish(&anonymous, "private:1", &m).is_ok());
        let user = identity(false, &["private:*"]);
        assert!(ns.check_subscribe(&user, "public:1", &m).is_err());
        assert!(ns.check_subscribe(&user, "private:1", &m).is_ok());
        let unknown = ns.check_subscribe(&user, "other:1", &m).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UNKNOWN_NAMESPACE);
    }
}
