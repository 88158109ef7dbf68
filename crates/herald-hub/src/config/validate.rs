//! The rules a configuration must follow that its types cannot express. [`Hub::new`] and
//! [`Hub::with_broker`] refuse a configuration that breaks one, and `herald config check`
//! reports it at the line that set the key; nothing in the hub clamps a value instead.
//!
//! [`Hub::new`]: crate::Hub::new
//! [`Hub::with_broker`]: crate::Hub::with_broker

use super::{HubConfig, MAX_HISTORY_SIZE, MAX_NAMESPACES, NamespaceConfig};
use crate::names::valid_channel;
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

/// The keys of a `[hooks.subscribe]`-like section that `validate` names: url, timeout,
/// max_in_flight, breaker_failures, breaker_cooldown, max_response.
macro_rules! command_hook_keys {
    ($section:literal) => {
        [
            concat!($section, ".url"),
            concat!($section, ".timeout"),
            concat!($section, ".max_in_flight"),
            concat!($section, ".breaker_failures"),
            concat!($section, ".breaker_cooldown"),
            concat!($section, ".max_response"),
        ]
    };
}

/// A broken configuration rule. Each names the dotted key ([`key`](Self::key)) to fix, so a
/// caller can point at the line, flag or variable that set it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `broker` is neither `memory` nor a Redis URL of the documented shape: fix the value.
    #[error(
        "broker `{0}` is neither `memory` nor a redis://HOST[:PORT][/DB], rediss://, \
         redis+cluster://HOST:PORT[,HOST:PORT...] or redis+sentinel://HOST:PORT[,...]/MASTER URL"
    )]
    Broker(String),
    /// One of `tls.cert` and `tls.key` is set without the other: set both, or neither.
    #[error("{set} is set without {missing}: set both for https, or neither")]
    HalfTlsPair {
        /// The key that is set.
        set: &'static str,
        /// The key that is missing.
        missing: &'static str,
    },
    /// A size or count that nothing could pass through is 0 (`limits.max_connections`,
    /// `limits.max_message_size`, `limits.queue_size`, a burst whose rate is set): raise it.
    #[error("{key} must be at least 1")]
    Zero {
        /// The key.
        key: &'static str,
    },
    /// A count is beyond what the structure that holds it can count (tokio's semaphores, which
    /// back the connection limit and the per-connection queues): lower it.
    #[error("{key} must be at most {max}")]
    TooLarge {
        /// The key.
        key: &'static str,
        /// The largest value it takes.
        max: usize,
    },
    /// A timeout or period is 0: a timer that fires at once (or an interval, which tokio
    /// refuses) would stop the server or every request. Make it longer.
    #[error("{key} must be longer than 0s")]
    ZeroDuration {
        /// The key.
        key: &'static str,
    },
    /// A duration is not shorter than the one it must stay under (the Redis presence
    /// refresh against the member lifetime): shorten it, or lengthen the other.
    #[error("{key} must be shorter than {limit}")]
    NotShorter {
        /// The key.
        key: &'static str,
        /// The key it must stay under.
        limit: &'static str,
    },
    /// `auth.jwks_url` is not an `http://` or `https://` URL with a host: fix the value.
    #[error("auth.jwks_url `{0}` is not an http:// or https:// URL")]
    JwksUrl(String),
    /// `hooks.connect.url` is not an `http://` or `https://` URL with a host: fix the value.
    #[error("hooks.connect.url `{0}` is not an http:// or https:// URL")]
    HookUrl(String),
    /// `hooks.subscribe.url`, `hooks.publish.url` or `hooks.rpc.url` is not an `http://` or
    /// `https://` URL with a host: fix the value.
    #[error("{key} `{url}` is not an http:// or https:// URL")]
    CommandHookUrl {
        /// The key.
        key: &'static str,
        /// The value.
        url: String,
    },
    /// `webhooks.url` is set without `webhooks.secret`: the backend could not tell Herald's
    /// events from anyone's. Set a secret.
    #[error("webhooks.url is set without webhooks.secret: set a secret to sign the events with")]
    WebhookSecret,
    /// A `webhooks.events` entry is not an event name: use the documented names.
    #[error(
        "webhooks.events: `{0}` is not one of channel_occupied, channel_vacated, member_added, member_removed, user_online, user_offline"
    )]
    WebhookEvent(String),
    /// A `hooks.connect.headers` entry is not a valid header name: fix or remove it.
    #[error("hooks.connect.headers: `{0}` is not a header name")]
    HookHeader(String),
    /// A plain-mode route cannot be served: fix its path or parameters.
    #[error("plain.routes: path `{path}` {problem}")]
    Route {
        /// The route's path, as configured.
        path: String,
        /// What is wrong with it.
        problem: RouteProblem,
    },
    /// `users.personal_prefix` holds a character no channel name may hold (or is too long),
    /// so no personal channel would be valid: use only channel-name characters.
    #[error("users.personal_prefix `{0}` cannot start a channel name")]
    PersonalPrefix(String),
    /// A `[namespaces.NAME]` table breaks a rule: fix the key it names.
    #[error("namespaces.{name}{}{field}: {problem}", if field.is_empty() { "" } else { "." })]
    Namespace {
        /// The namespace, as configured.
        name: String,
        /// The key in its table (empty: the table's name itself).
        field: &'static str,
        /// What is wrong.
        problem: NamespaceProblem,
    },
    /// A `[[pusher.apps]]` entry breaks a rule: an empty or repeated id or key, an empty
    /// secret, a namespace that is not a namespace name or (with namespaces configured) is
    /// not one of them, or more than [`MAX_PUSHER_APPS`](super::MAX_PUSHER_APPS) apps.
    #[error("pusher.apps: app `{app}`: {problem}")]
    PusherApp {
        /// The app's id, as configured.
        app: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// `admin.enabled` is set without an `admin.password` of at least
    /// [`MIN_ADMIN_PASSWORD`](super::MIN_ADMIN_PASSWORD) bytes, or `admin.user` is empty or
    /// holds a `:` (which HTTP Basic cannot carry): set a user and a long password.
    #[error("admin.enabled needs admin.user (no `:`) and an admin.password of at least 12 bytes")]
    AdminCredentials,
}

/// What is wrong with a `[namespaces.NAME]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamespaceProblem {
    /// The name is empty, contains `:`, or has a character a channel name may not have.
    InvalidName,
    /// More tables than [`MAX_NAMESPACES`].
    TooMany,
    /// `history_size` is over [`MAX_HISTORY_SIZE`].
    HistoryTooLarge,
    /// `history_ttl` is 0.
    ZeroTtl,
    /// `subscribe_hook` or `publish_hook` is on but the hook has no URL.
    HookWithoutUrl(&'static str),
    /// `latest` is over the namespace's history size: it could never be served.
    LatestOverHistory {
        /// The namespace's history size (its own, or `history.size`).
        size: usize,
    },
    /// A pattern has a character no channel name has (besides `*` and `?`), or is empty or
    /// longer than a channel name.
    InvalidPattern(String),
}

impl fmt::Display for NamespaceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName => f.write_str(
                "a namespace name is 1-255 letters, digits and `-_./@#=+,`, without `:`",
            ),
            Self::TooMany => write!(f, "at most {MAX_NAMESPACES} namespaces"),
            Self::HistoryTooLarge => write!(f, "must be at most {MAX_HISTORY_SIZE}"),
            Self::ZeroTtl => f.write_str("must be longer than 0s"),
            Self::HookWithoutUrl(key) => write!(f, "is on but {key} is not set"),
            Self::LatestOverHistory { size } => {
                write!(f, "must be at most the history size ({size})")
            }
            Self::InvalidPattern(p) => write!(f, "invalid channel pattern `{p}`"),
        }
    }
}

/// What is wrong with a plain-mode route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteProblem {
    /// The path does not start with `/`, or carries a query or fragment.
    NotAPath,
    /// Another route has the same path.
    Duplicate,
    /// A parameter name is empty.
    EmptyParam,
    /// Its rooms (`PATH:…`) fall in a namespace that is not configured.
    UnknownNamespace,
    /// It is under `/admin`, which the admin page serves (`admin.enabled`).
    Admin,
}

impl fmt::Display for RouteProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAPath => "must start with / and have no query",
            Self::Duplicate => "is listed twice",
            Self::EmptyParam => "has an empty parameter name",
            Self::UnknownNamespace => "names rooms in a namespace that is not configured",
            Self::Admin => "is under /admin, which admin.enabled serves",
        })
    }
}

impl ConfigError {
    /// The dotted key the rule is about: `broker`, `tls.key`, `limits.queue_size`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Broker(_) => "broker",
            Self::HalfTlsPair { set, .. } => set,
            Self::Zero { key }
            | Self::TooLarge { key, .. }
            | Self::ZeroDuration { key }
            | Self::NotShorter { key, .. } => key,
            Self::Route { .. } => "plain.routes",
            Self::PersonalPrefix(_) => "users.personal_prefix",
            Self::JwksUrl(_) => "auth.jwks_url",
            Self::HookUrl(_) => "hooks.connect.url",
            Self::CommandHookUrl { key, .. } => key,
            Self::HookHeader(_) => "hooks.connect.headers",
            Self::WebhookSecret => "webhooks.secret",
            Self::WebhookEvent(_) => "webhooks.events",
            Self::Namespace { .. } => "namespaces",
            Self::PusherApp { .. } => "pusher.apps",
            Self::AdminCredentials => "admin.password",
        }
    }

    /// The full dotted key to point at: [`key`](Self::key), or for a namespace table
    /// `namespaces.NAME.FIELD` (`namespaces.NAME` for its name).
    pub fn location(&self) -> String {
        match self {
            Self::Namespace {
                name, field: "", ..
            } => format!("namespaces.{name}"),
            Self::Namespace { name, field, .. } => format!("namespaces.{name}.{field}"),
            other => other.key().to_owned(),
        }
    }
}

impl HubConfig {
    /// Checks every rule between and within fields that the types cannot express: the broker
    /// string, both halves of the TLS pair, sizes and periods that must not be 0, bursts for
    /// the rates that are set, the hooks' URLs, headers and bounds, plain-mode routes, the
    /// Redis timings, the personal channel prefix, and the namespace tables (names, sizes,
    /// TTLs, `latest`, patterns, hooks turned on without a URL; routes whose rooms fall in no
    /// namespace).
    ///
    /// # Errors
    /// The first broken rule, in the order a configuration file lists the keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.broker.validate()?;
        positive("shutdown_http_timeout", self.shutdown_http_timeout)?;
        self.tls_pair()?;
        self.jwks()?;
        self.connect_hook()?;
        self.command_hooks()?;
        self.webhooks()?;
        positive("history.ttl", self.history.ttl)?;
        self.limits()?;
        positive("heartbeat.interval", self.heartbeat.interval)?;
        positive("heartbeat.timeout", self.heartbeat.timeout)?;
        self.routes()?;
        self.redis_timings()?;
        self.personal_prefix()?;
        self.namespace_tables()?;
        positive("pusher.activity_timeout", self.pusher.activity_timeout)?;
        self.pusher_apps()?;
        self.admin_credentials()
    }

    fn admin_credentials(&self) -> Result<(), ConfigError> {
        let admin = &self.admin;
        let password = admin.password.as_deref().unwrap_or("");
        let user_ok = !admin.user.is_empty() && !admin.user.contains(':');
        if admin.enabled && (!user_ok || password.len() < super::MIN_ADMIN_PASSWORD) {
            return Err(ConfigError::AdminCredentials);
        }
        Ok(())
    }

    fn pusher_apps(&self) -> Result<(), ConfigError> {
        let apps = &self.pusher.apps;
        let (mut ids, mut keys) = (HashSet::new(), HashSet::new());
        for (i, app) in apps.iter().enumerate() {
            let fail = |problem| {
                Err(ConfigError::PusherApp {
                    app: app.id.clone(),
                    problem,
                })
            };
            if i >= super::MAX_PUSHER_APPS {
                return fail("too many apps");
            }
            if app.id.is_empty() || app.key.is_empty() || app.secret.is_empty() {
                return fail("id, key and secret must not be empty");
            }
            if !ids.insert(&app.id) || !keys.insert(&app.key) {
                return fail("id and key must be unique");
            }
            let ns = app.namespace();
            if !valid_channel(&format!("{ns}:c")) || ns.contains(':') {
                return fail("the namespace is not a namespace name");
            }
            let longest = app.limits.max_channel_name_length;
            if longest == 0 || ns.len() + 1 + longest > crate::names::MAX_CHANNEL_LEN {
                return fail(
                    "limits.max_channel_name_length must be 1 to 254 minus the namespace's length",
                );
            }
            if !self.namespaces.is_empty() && !self.namespaces.contains_key(&ns) {
                return fail("its namespace is not configured in [namespaces]");
            }
            if app
                .webhook_url
                .as_deref()
                .is_some_and(|url| crate::fetch::HttpUrl::parse(url).is_none())
            {
                return fail("webhook_url is not an http:// or https:// URL");
            }
        }
        Ok(())
    }

    fn personal_prefix(&self) -> Result<(), ConfigError> {
        let prefix = &self.users.personal_prefix;
        if prefix.is_empty() || crate::names::valid_channel(&format!("{prefix}u")) {
            Ok(())
        } else {
            Err(ConfigError::PersonalPrefix(prefix.clone()))
        }
    }

    fn namespace_tables(&self) -> Result<(), ConfigError> {
        if self.namespaces.len() > MAX_NAMESPACES {
            let name = self.namespaces.keys().nth(MAX_NAMESPACES).cloned();
            return Err(namespace(
                name.unwrap_or_default(),
                "",
                NamespaceProblem::TooMany,
            ));
        }
        for (name, table) in &self.namespaces {
            self.namespace_table(name, table)?;
        }
        Ok(())
    }

    fn namespace_table(&self, name: &str, t: &NamespaceConfig) -> Result<(), ConfigError> {
        let fail = |field, problem| Err(namespace(name.to_owned(), field, problem));
        if !valid_channel(name) || name.contains(':') {
            return fail("", NamespaceProblem::InvalidName);
        }
        if t.history_size.is_some_and(|size| size > MAX_HISTORY_SIZE) {
            return fail("history_size", NamespaceProblem::HistoryTooLarge);
        }
        let size = t.history_size.unwrap_or(self.history.size);
        if t.history_ttl.is_some_and(|ttl| ttl.is_zero()) {
            return fail("history_ttl", NamespaceProblem::ZeroTtl);
        }
        if t.latest.unwrap_or(0) > size {
            return fail("latest", NamespaceProblem::LatestOverHistory { size });
        }
        let hooks = [
            (
                "subscribe_hook",
                t.subscribe_hook,
                &self.hooks.subscribe,
                "hooks.subscribe.url",
            ),
            (
                "publish_hook",
                t.publish_hook,
                &self.hooks.publish,
                "hooks.publish.url",
            ),
        ];
        for (field, on, hook, key) in hooks {
            if on == Some(true) && hook.url.is_none() {
                return fail(field, NamespaceProblem::HookWithoutUrl(key));
            }
        }
        if t.webhook_publications == Some(true) && self.webhooks.url.is_none() {
            return fail(
                "webhook_publications",
                NamespaceProblem::HookWithoutUrl("webhooks.url"),
            );
        }
        let lists = [
            ("anonymous_subscribe", &t.anonymous_subscribe),
            ("anonymous_publish", &t.anonymous_publish),
        ];
        for (field, list) in lists {
            let bad = list.iter().flatten().find(|p| !valid_pattern(p));
            if let Some(bad) = bad {
                return fail(field, NamespaceProblem::InvalidPattern(bad.clone()));
            }
        }
        Ok(())
    }

    fn tls_pair(&self) -> Result<(), ConfigError> {
        let (set, missing) = match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => ("tls.cert", "tls.key"),
            (None, Some(_)) => ("tls.key", "tls.cert"),
            _ => return Ok(()),
        };
        Err(ConfigError::HalfTlsPair { set, missing })
    }

    fn command_hooks(&self) -> Result<(), ConfigError> {
        let hooks = [
            (&self.hooks.subscribe, command_hook_keys!("hooks.subscribe")),
            (&self.hooks.publish, command_hook_keys!("hooks.publish")),
            (&self.hooks.rpc, command_hook_keys!("hooks.rpc")),
            (&self.hooks.refresh, command_hook_keys!("hooks.refresh")),
        ];
        for (h, [url_key, timeout, in_flight, failures, cooldown, response]) in hooks {
            if let Some(url) = &h.url
                && crate::fetch::HttpUrl::parse(url).is_none()
            {
                return Err(ConfigError::CommandHookUrl {
                    key: url_key,
                    url: url.clone(),
                });
            }
            positive(timeout, h.timeout)?;
            at_least_one(in_flight, h.max_in_flight)?;
            countable(in_flight, h.max_in_flight)?;
            if h.breaker_failures == 0 {
                return Err(ConfigError::Zero { key: failures });
            }
            positive(cooldown, h.breaker_cooldown)?;
            at_least_one(response, h.max_response)?;
        }
        Ok(())
    }

    fn webhooks(&self) -> Result<(), ConfigError> {
        let w = &self.webhooks;
        let Some(url) = &w.url else {
            return Ok(());
        };
        if crate::fetch::HttpUrl::parse(url).is_none() {
            return Err(ConfigError::CommandHookUrl {
                key: "webhooks.url",
                url: url.clone(),
            });
        }
        if w.secret.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::WebhookSecret);
        }
        if let Some(bad) = w
            .events
            .iter()
            .find(|e| !super::WEBHOOK_EVENTS.contains(&e.as_str()))
        {
            return Err(ConfigError::WebhookEvent(bad.clone()));
        }
        at_least_one("webhooks.max_queue", w.max_queue)?;
        at_least_one("webhooks.batch", w.batch)?;
        positive("webhooks.timeout", w.timeout)?;
        positive("webhooks.node_expiry", w.node_expiry)?;
        positive("webhooks.max_backoff", w.max_backoff)
    }

    fn connect_hook(&self) -> Result<(), ConfigError> {
        let h = &self.hooks.connect;
        if let Some(url) = &h.url
            && crate::fetch::HttpUrl::parse(url).is_none()
        {
            return Err(ConfigError::HookUrl(url.clone()));
        }
        if let Some(bad) = h
            .headers
            .iter()
            .find(|name| http::HeaderName::from_bytes(name.as_bytes()).is_err())
        {
            return Err(ConfigError::HookHeader(bad.clone()));
        }
        positive("hooks.connect.timeout", h.timeout)?;
        at_least_one("hooks.connect.max_in_flight", h.max_in_flight)?;
        countable("hooks.connect.max_in_flight", h.max_in_flight)?;
        if h.breaker_failures == 0 {
            return Err(ConfigError::Zero {
                key: "hooks.connect.breaker_failures",
            });
        }
        positive("hooks.connect.breaker_cooldown", h.breaker_cooldown)
    }

    fn jwks(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        if let Some(url) = &a.jwks_url
            && crate::fetch::HttpUrl::parse(url).is_none()
        {
            return Err(ConfigError::JwksUrl(url.clone()));
        }
        positive("auth.jwks_timeout", a.jwks_timeout)?;
        positive("auth.jwks_refetch_interval", a.jwks_refetch_interval)?;
        positive("auth.jwks_max_age", a.jwks_max_age)
    }

    fn limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        // The connection semaphore, the frame limit and the queue hold nothing at 0.
        at_least_one("limits.max_connections", l.max_connections)?;
        countable("limits.max_connections", l.max_connections)?;
        at_least_one(
            "limits.max_streams_per_connection",
            l.max_streams_per_connection,
        )?;
        countable(
            "limits.max_streams_per_connection",
            l.max_streams_per_connection,
        )?;
        at_least_one("limits.max_message_size", l.max_message_size)?;
        burst("limits.publish_burst", l.publish_rate, l.publish_burst)?;
        at_least_one("limits.queue_size", l.queue_size)?;
        countable("limits.queue_size", l.queue_size)?;
        positive("limits.handshake_timeout", l.handshake_timeout)?;
        burst("limits.command_burst", l.command_rate, l.command_burst)?;
        positive("limits.request_timeout", l.request_timeout)?;
        positive("limits.close_timeout", l.close_timeout)?;
        positive("limits.refusal_timeout", l.refusal_timeout)?;
        positive("limits.poll_timeout", l.poll_timeout)?;
        positive("limits.http2_idle_timeout", l.http2_idle_timeout)?;
        at_least_one(
            "limits.http2_max_pending_resets",
            l.http2_max_pending_resets,
        )
    }

    fn routes(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for route in &self.plain.routes {
            let path = &route.path;
            let problem = if !path.starts_with('/') || path.contains(['?', '#']) {
                RouteProblem::NotAPath
            } else if !seen.insert(path.as_str()) {
                RouteProblem::Duplicate
            } else if route.params.iter().any(String::is_empty) {
                RouteProblem::EmptyParam
            } else if !self.route_namespace_known(route) {
                RouteProblem::UnknownNamespace
            } else if self.admin.enabled && (path == "/admin" || path.starts_with("/admin/")) {
                RouteProblem::Admin
            } else {
                continue;
            };
            return Err(ConfigError::Route {
                path: path.clone(),
                problem,
            });
        }
        Ok(())
    }

    /// Whether the rooms of `route` fall in a configured namespace (always, with none
    /// configured; a room without `:` is in the default namespace).
    fn route_namespace_known(&self, route: &super::PlainRoute) -> bool {
        let room = route.path.trim_start_matches('/');
        let prefix = match room.split_once(':') {
            Some((prefix, _)) => prefix,
            None if route.params.is_empty() => return true,
            None => room,
        };
        self.namespaces.is_empty() || self.namespaces.contains_key(prefix)
    }

    fn redis_timings(&self) -> Result<(), ConfigError> {
        let r = &self.redis;
        positive("redis.op_timeout", r.op_timeout)?;
        positive("redis.connect_timeout", r.connect_timeout)?;
        // 0 would retry a lost connection in a busy loop.
        positive("redis.max_reconnect_delay", r.max_reconnect_delay)?;
        positive("redis.check_every", r.check_every)?;
        positive("redis.member_lifetime", r.member_lifetime)?;
        positive("redis.refresh_every", r.refresh_every)?;
        // A member must be refreshed before it expires, or presence flickers.
        if r.refresh_every >= r.member_lifetime {
            return Err(ConfigError::NotShorter {
                key: "redis.refresh_every",
                limit: "redis.member_lifetime",
            });
        }
        Ok(())
    }
}

fn namespace(name: String, field: &'static str, problem: NamespaceProblem) -> ConfigError {
    ConfigError::Namespace {
        name,
        field,
        problem,
    }
}

/// A permission pattern: what a channel name may be, with `*` and `?` anywhere.
pub(crate) fn valid_pattern(pattern: &str) -> bool {
    valid_channel(&pattern.replace(['*', '?'], "a"))
}

fn at_least_one(key: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero { key });
    }
    Ok(())
}

/// At most what a tokio semaphore counts (`Semaphore::new` and `mpsc::channel` panic past it).
fn countable(key: &'static str, value: usize) -> Result<(), ConfigError> {
    let max = tokio::sync::Semaphore::MAX_PERMITS;
    if value > max {
        return Err(ConfigError::TooLarge { key, max });
    }
    Ok(())
}

/// A token bucket holding 0 refuses everything; a rate of 0 turns the bucket off.
fn burst(key: &'static str, rate: u32, burst: u32) -> Result<(), ConfigError> {
    if rate > 0 && burst == 0 {
        return Err(ConfigError::Zero { key });
    }
    Ok(())
}

fn positive(key: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::ZeroDuration { key });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, PlainRoute};

    fn key(config: &HubConfig) -> &'static str {
        config.validate().unwrap_err().key()
    }

    #[test]
    fn default_config_passes() {
        assert_eq!(HubConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_pusher_apps_channel_names_must_fit_the_hubs_after_its_namespace() {
        let mut c = HubConfig::default();
        c.pusher.apps.push(crate::config::PusherApp {
            id: "1".into(),
            key: "k".into(),
            secret: "s".into(),
            client_events: false,
            namespace: None,
            webhook_url: None,
            limits: crate::config::PusherLimits::default(),
        });
        assert!(c.validate().is_ok(), "Pusher's 164 fits after `pusher-1:`");
        // `pusher-1:` is 9 bytes of the hub's 255.
        c.pusher.apps[0].limits.max_channel_name_length = 246;
        assert!(c.validate().is_ok());
        for longest in [0, 247] {
            c.pusher.apps[0].limits.max_channel_name_length = longest;
            assert_eq!(key(&c), "pusher.apps", "{longest}");
        }
    }

    #[test]
    fn the_admin_page_needs_a_user_and_a_long_password_and_owns_its_paths() {
        let mut c = HubConfig::default();
        c.admin.enabled = true;
        assert_eq!(c.validate(), Err(ConfigError::AdminCredentials));
        c.admin.password = Some("short".into());
        assert_eq!(c.validate().unwrap_err().key(), "admin.password");
        c.admin.password = Some("twelve bytes".into());
        assert_eq!(c.validate(), Ok(()));
        c.admin.user = "a:b".into();
        assert_eq!(c.validate(), Err(ConfigError::AdminCredentials));
        c.admin.user = "ops".into();
        c.plain.routes = vec![super::super::PlainRoute {
            path: "/admin/api/x".into(),
            params: Vec::new(),
        }];
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "plain.routes: path `/admin/api/x` is under /admin, which admin.enabled serves"
        );
        c.admin.enabled = false;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn an_unsupported_broker_names_the_broker_key_and_the_value() {
        let c = HubConfig {
            broker: BrokerConfig::parse("mongodb://db"),
            ..HubConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key(), "broker");
        assert!(e.to_string().starts_with("broker `mongodb://db` "), "{e}");
    }

    #[test]
    fn half_a_tls_pair_points_at_the_half_that_is_set() {
        let mut c = HubConfig::default();
        c.tls.key = Some("key.pem".into());
        assert_eq!(key(&c), "tls.key");
        c.tls.cert = Some("cert.pem".into());
        assert!(c.validate().is_ok());
        c.tls.key = None;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "tls.cert is set without tls.key: set both for https, or neither"
        );
    }

    #[test]
    fn zero_limits_and_periods_that_would_stop_the_server_are_refused() {
        type BreakIt = fn(&mut HubConfig);
        let cases: [(&str, BreakIt); 12] = [
            ("heartbeat.interval", |c| {
                c.heartbeat.interval = Duration::ZERO
            }),
            ("limits.queue_size", |c| c.limits.queue_size = 0),
            ("limits.max_connections", |c| c.limits.max_connections = 0),
            ("limits.max_streams_per_connection", |c| {
                c.limits.max_streams_per_connection = 0;
            }),
            ("limits.publish_burst", |c| c.limits.publish_burst = 0),
            ("limits.request_timeout", |c| {
                c.limits.request_timeout = Duration::ZERO;
            }),
            ("limits.close_timeout", |c| {
                c.limits.close_timeout = Duration::ZERO
            }),
            ("history.ttl", |c| c.history.ttl = Duration::ZERO),
            ("auth.jwks_timeout", |c| {
                c.auth.jwks_timeout = Duration::ZERO
            }),
            ("auth.jwks_url", |c| {
                c.auth.jwks_url = Some("ftp://idp.example/jwks".into());
            }),
            ("redis.check_every", |c| {
                c.redis.check_every = Duration::ZERO
            }),
            ("shutdown_http_timeout", |c| {
                c.shutdown_http_timeout = Duration::ZERO;
            }),
        ];
        for (expected, break_it) in cases {
            let mut c = HubConfig::default();
            break_it(&mut c);
            assert_eq!(key(&c), expected);
        }
    }

    #[test]
    fn command_hook_urls_bounds_and_the_namespaces_that_use_them_are_checked() {
        type BreakIt = fn(&mut HubConfig);
        let cases: [(&str, BreakIt); 6] = [
            ("hooks.subscribe.url", |c| {
                c.hooks.subscribe.url = Some("localhost/hook".into());
            }),
            ("hooks.publish.timeout", |c| {
                c.hooks.publish.timeout = Duration::ZERO;
            }),
            ("hooks.rpc.max_in_flight", |c| c.hooks.rpc.max_in_flight = 0),
            ("hooks.rpc.breaker_failures", |c| {
                c.hooks.rpc.breaker_failures = 0;
            }),
            ("hooks.subscribe.breaker_cooldown", |c| {
                c.hooks.subscribe.breaker_cooldown = Duration::ZERO;
            }),
            ("hooks.publish.max_response", |c| {
                c.hooks.publish.max_response = 0
            }),
        ];
        for (expected, break_it) in cases {
            let mut c = HubConfig::default();
            break_it(&mut c);
            assert_eq!(key(&c), expected);
        }
        let mut c = HubConfig::default();
        let table = NamespaceConfig {
            publish_hook: Some(true),
            ..NamespaceConfig::default()
        };
        c.namespaces.insert("chat".into(), table);
        let e = c.validate().unwrap_err();
        assert_eq!(e.location(), "namespaces.chat.publish_hook");
        c.hooks.publish.url = Some("http://127.0.0.1:9000/publish".into());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn connect_hook_url_headers_timeouts_and_bounds_are_checked() {
        type BreakIt = fn(&mut HubConfig);
        let cases: [(&str, BreakIt); 6] = [
            ("hooks.connect.url", |c| {
                c.hooks.connect.url = Some("localhost:9000/hook".into());
            }),
            ("hooks.connect.headers", |c| {
                c.hooks.connect.headers = vec!["Bad Header".into()];
            }),
            ("hooks.connect.timeout", |c| {
                c.hooks.connect.timeout = Duration::ZERO;
            }),
            ("hooks.connect.max_in_flight", |c| {
                c.hooks.connect.max_in_flight = 0;
            }),
            ("hooks.connect.breaker_failures", |c| {
                c.hooks.connect.breaker_failures = 0;
            }),
            ("hooks.connect.breaker_cooldown", |c| {
                c.hooks.connect.breaker_cooldown = Duration::ZERO;
            }),
        ];
        for (expected, break_it) in cases {
            let mut c = HubConfig::default();
            break_it(&mut c);
            assert_eq!(key(&c), expected);
        }
        let mut c = HubConfig::default();
        c.hooks.connect.url = Some("http://127.0.0.1:9000/hook".into());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn counts_past_what_a_semaphore_holds_are_refused() {
        let mut c = HubConfig::default();
        c.limits.queue_size = usize::MAX;
        assert_eq!(key(&c), "limits.queue_size");
        c.limits.queue_size = tokio::sync::Semaphore::MAX_PERMITS;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn a_zero_burst_is_fine_when_its_rate_is_off() {
        let mut c = HubConfig::default();
        c.limits.publish_rate = 0;
        c.limits.publish_burst = 0;
        c.limits.command_rate = 0;
        c.limits.command_burst = 0;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn presence_members_are_refreshed_before_they_expire() {
        let mut c = HubConfig::default();
        c.redis.refresh_every = c.redis.member_lifetime;
        let e = c.validate().unwrap_err();
        assert_eq!(e.key(), "redis.refresh_every");
        assert_eq!(
            e.to_string(),
            "redis.refresh_every must be shorter than redis.member_lifetime"
        );
    }

    #[test]
    fn routes_need_a_path_once_and_named_parameters() {
        let route = |path: &str, params: &[&str]| PlainRoute {
            path: path.into(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        };
        let cases = [
            (
                vec![route("chat", &[])],
                "path `chat` must start with / and have no query",
            ),
            (
                vec![route("/a?b", &[])],
                "path `/a?b` must start with / and have no query",
            ),
            (
                vec![route("/a", &[]), route("/a", &[])],
                "path `/a` is listed twice",
            ),
            (
                vec![route("/a", &[""])],
                "path `/a` has an empty parameter name",
            ),
        ];
        for (routes, message) in cases {
            let mut c = HubConfig::default();
            c.plain.routes = routes;
            let e = c.validate().unwrap_err();
            assert_eq!(e.key(), "plain.routes");
            assert_eq!(e.to_string(), format!("plain.routes: {message}"));
        }
    }

    #[test]
    fn a_personal_prefix_no_channel_name_may_start_with_is_refused() {
        let mut c = HubConfig::default();
        c.users.personal_prefix = "user ".into();
        let e = c.validate().unwrap_err();
        assert_eq!(e.key(), "users.personal_prefix");
        for fine in ["", "#", "user:"] {
            c.users.personal_prefix = fine.into();
            assert!(c.validate().is_ok(), "{fine:?}");
        }
    }

    mod namespaces {
        //! `[namespaces.NAME]` tables and the routes into them.
        use super::*;
        use crate::config::NamespaceConfig;

        fn with(name: &str, table: NamespaceConfig) -> HubConfig {
            let mut c = HubConfig::default();
            c.namespaces.insert(name.into(), table);
            // The default `/chat` route needs a `chat` namespace once namespacing is on.
            c.namespaces
                .insert("chat".into(), NamespaceConfig::default());
            c
        }

        fn problem(c: &HubConfig) -> (String, String) {
            let e = c.validate().unwrap_err();
            assert_eq!(e.key(), "namespaces");
            (e.location(), e.to_string())
        }

        #[test]
        fn a_namespace_name_is_a_channel_prefix_without_a_colon() {
            for bad in ["", "a:b", "a b", "a*"] {
                let (at, message) = problem(&with(bad, NamespaceConfig::default()));
                assert_eq!(at, format!("namespaces.{bad}"));
                assert!(message.contains("without `:`"), "{message}");
            }
            assert_eq!(
                with("news.eu", NamespaceConfig::default()).validate(),
                Ok(())
            );
        }

        #[test]
        fn sizes_ttls_and_latest_stay_within_their_bounds() {
            let cases = [
                (
                    NamespaceConfig {
                        history_size: Some(MAX_HISTORY_SIZE + 1),
                        ..NamespaceConfig::default()
                    },
                    "namespaces.n.history_size",
                ),
                (
                    NamespaceConfig {
                        history_ttl: Some(Duration::ZERO),
                        ..NamespaceConfig::default()
                    },
                    "namespaces.n.history_ttl",
                ),
                (
                    NamespaceConfig {
                        history_size: Some(5),
                        latest: Some(6),
                        ..NamespaceConfig::default()
                    },
                    "namespaces.n.latest",
                ),
            ];
            for (table, at) in cases {
                assert_eq!(problem(&with("n", table)).0, at);
            }
            let latest = NamespaceConfig {
                latest: Some(101),
                ..NamespaceConfig::default()
            };
            assert_eq!(
                problem(&with("n", latest)).1,
                "namespaces.n.latest: must be at most the history size (100)"
            );
        }

        #[test]
        fn patterns_are_channel_names_with_wildcards() {
            let table = NamespaceConfig {
                anonymous_subscribe: Some(vec!["n:*".into(), "n:a b".into()]),
                ..NamespaceConfig::default()
            };
            let (at, message) = problem(&with("n", table));
            assert_eq!(at, "namespaces.n.anonymous_subscribe");
            assert!(
                message.ends_with("invalid channel pattern `n:a b`"),
                "{message}"
            );
            let fine = NamespaceConfig {
                anonymous_publish: Some(vec!["n:?x*".into(), "*".into()]),
                ..NamespaceConfig::default()
            };
            assert_eq!(with("n", fine).validate(), Ok(()));
        }

        #[test]
        fn a_route_into_an_unknown_namespace_is_refused_once_namespacing_is_on() {
            let mut c = HubConfig::default();
            c.namespaces
                .insert("news".into(), NamespaceConfig::default());
            let e = c.validate().unwrap_err();
            assert_eq!(e.key(), "plain.routes");
            assert_eq!(
                e.to_string(),
                "plain.routes: path `/chat` names rooms in a namespace that is not configured"
            );
            c.namespaces
                .insert("chat".into(), NamespaceConfig::default());
            assert_eq!(c.validate(), Ok(()));
            // A route without parameters names one room; without `:` it is in the default
            // namespace, which always exists.
            c.plain.routes.push(PlainRoute {
                path: "/lobby".into(),
                params: vec![],
            });
            assert_eq!(c.validate(), Ok(()));
        }

        #[test]
        fn more_tables_than_the_bound_are_refused() {
            let mut c = HubConfig::default();
            for n in 0..=MAX_NAMESPACES {
                c.namespaces
                    .insert(format!("n{n}"), NamespaceConfig::default());
            }
            c.namespaces
                .insert("chat".into(), NamespaceConfig::default());
            assert!(problem(&c).1.contains("at most 1000 namespaces"));
        }
    }
}
