//! The one table of hub settings: for each `HubConfig` field its TOML key, its flag (the
//! variable is derived from the flag), how its value is read, how to read it back out of a
//! config, and its help. Flags, `HERALD_*` variables, `--help`, `herald config default` and
//! `--print-config` are all generated from it.

use super::kind::{Kind, route_value};
use herald_hub::HubConfig;
use std::path::PathBuf;
use std::time::Duration;
use toml::Value;

/// One `HubConfig` field.
#[derive(Debug)]
pub(crate) struct Setting {
    /// Dotted key in the TOML file: `listen`, `history.size`.
    pub(crate) key: &'static str,
    /// Long flag without the dashes; the variable is `HERALD_` + the flag in upper snake case.
    pub(crate) flag: &'static str,
    /// How its string form is read.
    pub(crate) kind: Kind,
    /// Placeholder in `--help`.
    pub(crate) value_name: &'static str,
    /// A value in flag syntax that differs from the default; shown for unset keys in
    /// `herald config default`.
    pub(crate) example: &'static str,
    /// The field's value in a config, as the file would write it; `None` when unset.
    pub(crate) get: fn(&HubConfig) -> Option<Value>,
    /// One or two sentences: what it does and what it bounds.
    pub(crate) help: &'static str,
}

impl Setting {
    /// The environment variable: `--max-connections` → `HERALD_MAX_CONNECTIONS`.
    pub(crate) fn env(&self) -> String {
        format!(
            "HERALD_{}",
            self.flag.replace('-', "_").to_ascii_uppercase()
        )
    }

    /// The section (`limits`, `hooks.connect`), empty for top-level keys.
    pub(crate) fn section(&self) -> &'static str {
        self.key.rsplit_once('.').map_or("", |(section, _)| section)
    }

    /// The key inside its section (`max_connections`).
    pub(crate) fn leaf(&self) -> &'static str {
        self.key.rsplit_once('.').map_or(self.key, |(_, leaf)| leaf)
    }
}

/// The heading a section's flags get in `--help`.
pub(crate) fn section_title(section: &str) -> &'static str {
    match section {
        "tls" => "TLS",
        "origins" => "Origin policy",
        "auth" => "Authentication",
        "api" => "HTTP API",
        "admin" => "Admin page",
        "hooks.connect" => "Connect hook",
        "hooks.subscribe" => "Subscribe hook",
        "hooks.publish" => "Publish hook",
        "hooks.rpc" => "RPC hook",
        "hooks.refresh" => "Refresh hook",
        "webhooks" => "Webhooks",
        "history" => "History",
        "limits" => "Limits",
        "heartbeat" => "Heartbeat",
        "plain" => "Plain mode",
        "presence" => "Presence",
        "redis" => "Redis broker",
        "users" => "Users",
        "pusher" => "Pusher protocol",
        _ => "Server",
    }
}

const fn setting(
    key: &'static str,
    flag: &'static str,
    kind: Kind,
    value_name: &'static str,
    example: &'static str,
    get: fn(&HubConfig) -> Option<Value>,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        flag,
        kind,
        value_name,
        example,
        get,
        help,
    }
}

/// Every `HubConfig` field, top-level keys first (TOML needs them before any `[section]`),
/// then the sections in file order.
#[rustfmt::skip]
pub(crate) static SETTINGS: &[Setting] = &[
    setting("listen", "listen", Kind::Addr, "ADDR", "0.0.0.0:8080", |c| text(&c.listen.to_string()),
        "Address to listen on; port 0 picks a free port."),
    setting("broker", "broker", Kind::Text, "URL", "redis://127.0.0.1:6379", |c| text(&c.broker.to_string()),
        "`memory` (one node), or Redis shared by every node: a redis:// / rediss:// URL (one server), \
         redis+cluster://HOST:PORT,HOST:PORT (a Redis Cluster's seed nodes) or \
         redis+sentinel://HOST:PORT,HOST:PORT/MASTER (the Sentinels naming the master)."),
    setting("deflate", "deflate", Kind::Bool, "BOOL", "false", |c| boolean(c.deflate),
        "Offer permessage-deflate (RFC 7692) to clients."),
    setting("http2", "http2", Kind::Bool, "BOOL", "false", |c| boolean(c.http2),
        "Serve HTTP/2 too: h2 by ALPN over TLS, h2c with prior knowledge on a plain listener, \
         WebSockets over them by extended CONNECT (RFC 8441)."),
    setting("shutdown_timeout", "shutdown-timeout", Kind::Duration, "DURATION", "30s",
        |c| duration(c.shutdown_timeout),
        "On SIGTERM or SIGINT, how long to wait for connections to close after sending 1001."),
    setting("shutdown_http_timeout", "shutdown-http-timeout", Kind::Duration, "DURATION", "5s",
        |c| duration(c.shutdown_http_timeout),
        "On shutdown, how long an HTTP connection may take to finish the request it is serving \
         before it is closed."),
    setting("tls.cert", "tls-cert", Kind::Path, "FILE", "/etc/herald/cert.pem",
        |c| path(&c.tls.cert),
        "Certificate chain (PEM). With tls.key set too, the server speaks https:// and wss:// \
         only."),
    setting("tls.key", "tls-key", Kind::Path, "FILE", "/etc/herald/key.pem", |c| path(&c.tls.key),
        "Private key (PEM) for tls.cert."),
    setting("origins.allowed", "allowed-origin", Kind::List, "ORIGIN", "https://*.example.com",
        |c| list(&c.origins.allowed),
        "Browser origins allowed to connect: exact (https://app.example.com) or wildcard \
         (https://*.example.com, *.example.com for any scheme). Others get 403."),
    setting("origins.allow_same_host", "allow-same-host", Kind::Bool, "BOOL", "false",
        |c| boolean(c.origins.allow_same_host),
        "Allow an Origin whose host and port equal the request's Host, when that Host is a \
         public host or loopback."),
    setting("origins.allow_missing", "allow-missing-origin", Kind::Bool, "BOOL", "false",
        |c| boolean(c.origins.allow_missing),
        "Allow requests without an Origin header (non-browser clients)."),
    setting("origins.public_hosts", "public-host", Kind::List, "HOST", "chat.example.com",
        |c| list(&c.origins.public_hosts),
        "Host names (host, or host:port for that port only) this server is reached by; the \
         same-host rule trusts a Host header only when it is one of these or loopback (DNS \
         rebinding)."),
    setting("auth.hs256_secret", "jwt-secret", Kind::Secret, "SECRET", "change-me",
        |c| c.auth.hs256_secret.as_deref().and_then(text),
        "HS256 secret; with any key set, connection tokens are verified."),
    setting("auth.rs256_public_key", "jwt-rs256-key", Kind::Path, "FILE", "/etc/herald/rs256.pem",
        |c| path(&c.auth.rs256_public_key), "RS256 public key (PEM) verifying tokens."),
    setting("auth.es256_public_key", "jwt-es256-key", Kind::Path, "FILE", "/etc/herald/es256.pem",
        |c| path(&c.auth.es256_public_key), "ES256 public key (PEM) verifying tokens."),
    setting("auth.allow_anonymous", "allow-anonymous", Kind::OptBool, "BOOL", "false",
        |c| c.auth.allow_anonymous.and_then(boolean),
        "Let connections without a token in. Unset: true when no key is set, false otherwise."),
    setting("auth.anonymous_subscribe", "anonymous-subscribe", Kind::List, "PATTERN", "public:*",
        |c| c.auth.anonymous_subscribe.as_deref().and_then(list),
        "Channel patterns anonymous connections may subscribe to (`*` any run of characters, \
         `?` one). Unset: * without a key, none with one."),
    setting("auth.anonymous_publish", "anonymous-publish", Kind::List, "PATTERN", "public:*",
        |c| c.auth.anonymous_publish.as_deref().and_then(list),
        "Channel patterns anonymous connections may publish to. Unset: * without a key, none \
         with one."),
    setting("auth.cookie", "token-cookie", Kind::Text, "NAME", "session", |c| text(&c.auth.cookie),
        "Cookie that may carry the token."),
    setting("auth.query_param", "token-query-param", Kind::Text, "NAME", "jwt",
        |c| text(&c.auth.query_param), "Query parameter that may carry the token."),
    setting("auth.issuer", "jwt-issuer", Kind::Text, "ISS", "https://auth.example.com",
        |c| c.auth.issuer.as_deref().and_then(text),
        "When set, a token's iss claim must equal it; tokens without one get 401."),
    setting("auth.audience", "jwt-audience", Kind::Text, "AUD", "herald",
        |c| c.auth.audience.as_deref().and_then(text),
        "When set, a token's aud claim (a string or an array) must contain it; tokens without \
         one get 401."),
    setting("auth.refresh_notice", "refresh-notice", Kind::Duration, "DURATION", "5m",
        |c| duration(c.auth.refresh_notice),
        "How long before a token's exp a protocol-mode connection gets the refresh push (half \
         the time left when less than twice this is left); 0 sends none."),
    setting("auth.jwks_url", "jwks-url", Kind::Text, "URL",
        "https://idp.example.com/.well-known/jwks.json",
        |c| c.auth.jwks_url.as_deref().and_then(text),
        "http:// or https:// URL of a JSON Web Key Set; tokens whose kid names one of its \
         RS256, ES256 or EdDSA keys are verified with it."),
    setting("auth.jwks_timeout", "jwks-timeout", Kind::Duration, "DURATION", "2s",
        |c| duration(c.auth.jwks_timeout),
        "How long one JWKS fetch may take; a handshake waits for a fetch no longer."),
    setting("auth.jwks_refetch_interval", "jwks-refetch-interval", Kind::Duration, "DURATION",
        "1m", |c| duration(c.auth.jwks_refetch_interval),
        "Shortest time between JWKS fetches caused by an unknown kid: bounds what tokens with \
         random kids can make the IdP serve."),
    setting("auth.jwks_max_age", "jwks-max-age", Kind::Duration, "DURATION", "10m",
        |c| duration(c.auth.jwks_max_age),
        "How long fetched keys are used before the set is fetched again (a failed fetch keeps \
         them)."),
    setting("api.key", "api-key", Kind::Secret, "KEY", "change-me",
        |c| c.api.key.as_deref().and_then(text),
        "Key backends send in X-API-Key to use the HTTP API; unset, the API answers 403."),
    setting("admin.enabled", "admin", Kind::Bool, "BOOL", "true", |c| boolean(c.admin.enabled),
        "Serve the operator's page at /admin (nodes, channels, a live tail, publish, \
         disconnect) behind HTTP Basic credentials of its own."),
    setting("admin.user", "admin-user", Kind::Text, "NAME", "ops", |c| text(&c.admin.user),
        "The user name /admin asks for."),
    setting("admin.password", "admin-password", Kind::Secret, "PASSWORD", "a-long-passphrase",
        |c| c.admin.password.as_deref().and_then(text),
        "The password /admin asks for (at least 12 bytes); required with admin.enabled."),
    setting("hooks.connect.url", "connect-hook-url", Kind::Text, "URL",
        "http://127.0.0.1:3000/herald/connect",
        |c| c.hooks.connect.url.as_deref().and_then(text),
        "http:// or https:// URL the backend admits or refuses handshakes at (POST, JSON), \
         for handshakes without a token (any, when no JWT key is set). Unset: no hook."),
    setting("hooks.connect.headers", "connect-hook-header", Kind::List, "NAME", "Cookie",
        |c| list(&c.hooks.connect.headers),
        "Request headers copied into the connect hook's call; others are not sent."),
    setting("hooks.connect.timeout", "connect-hook-timeout", Kind::Duration, "DURATION", "500ms",
        |c| duration(c.hooks.connect.timeout),
        "How long one connect hook call may take; past it the call failed."),
    setting("hooks.connect.max_in_flight", "connect-hook-max-in-flight", Kind::Count, "N", "64",
        |c| count(c.hooks.connect.max_in_flight),
        "Connect hook calls in flight at once on this node; a handshake past it gets 503 at \
         once."),
    setting("hooks.connect.breaker_failures", "connect-hook-breaker-failures", Kind::Count32,
        "N", "10", |c| count(c.hooks.connect.breaker_failures),
        "Consecutive failed connect hook calls that open the circuit: calls are skipped for the \
         cooldown and the failure rule applies."),
    setting("hooks.connect.breaker_cooldown", "connect-hook-breaker-cooldown", Kind::Duration,
        "DURATION", "30s", |c| duration(c.hooks.connect.breaker_cooldown),
        "How long an open circuit skips connect hook calls."),
    setting("hooks.connect.fail_open", "connect-hook-fail-open", Kind::Bool, "BOOL", "true",
        |c| boolean(c.hooks.connect.fail_open),
        "When a connect hook call fails or is skipped: false refuses with 503, true applies the \
         anonymous policy."),
    setting("hooks.subscribe.url", "subscribe-hook-url", Kind::Text, "URL",
        "http://127.0.0.1:3000/herald/subscribe",
        |c| c.hooks.subscribe.url.as_deref().and_then(text),
        "http:// or https:// URL the backend allows or denies subscribes at (POST, JSON), in the \
         namespaces with subscribe_hook = true. Unset: no hook."),
    setting("hooks.subscribe.timeout", "subscribe-hook-timeout", Kind::Duration, "DURATION", "500ms",
        |c| duration(c.hooks.subscribe.timeout),
        "How long one subscribe hook call may take; past it the call failed (109)."),
    setting("hooks.subscribe.max_in_flight", "subscribe-hook-max-in-flight", Kind::Count, "N", "64",
        |c| count(c.hooks.subscribe.max_in_flight),
        "Subscribe hook calls in flight at once on this node; past it the call is not \
         made and the failure rule applies."),
    setting("hooks.subscribe.breaker_failures", "subscribe-hook-breaker-failures", Kind::Count32,
        "N", "10", |c| count(c.hooks.subscribe.breaker_failures),
        "Consecutive failed subscribe hook calls that open the circuit: calls are skipped for the \
         cooldown and the failure rule applies."),
    setting("hooks.subscribe.breaker_cooldown", "subscribe-hook-breaker-cooldown", Kind::Duration,
        "DURATION", "30s", |c| duration(c.hooks.subscribe.breaker_cooldown),
        "How long an open circuit skips subscribe hook calls."),
    setting("hooks.subscribe.fail_open", "subscribe-hook-fail-open", Kind::Bool, "BOOL", "true",
        |c| boolean(c.hooks.subscribe.fail_open),
        "When a subscribe hook call fails or is skipped: false answers 109, true lets the command \
         proceed as if no hook were configured."),
    setting("hooks.subscribe.max_response", "subscribe-hook-max-response", Kind::Count, "BYTES",
        "16384", |c| count(c.hooks.subscribe.max_response),
        "Largest answer read from the subscribe hook's backend; a larger one is a failed call."),
    setting("hooks.publish.url", "publish-hook-url", Kind::Text, "URL",
        "http://127.0.0.1:3000/herald/publish",
        |c| c.hooks.publish.url.as_deref().and_then(text),
        "http:// or https:// URL the backend allows, rewrites or denies connections' publications \
         at (POST, JSON), in the namespaces with publish_hook = true. Unset: no hook."),
    setting("hooks.publish.timeout", "publish-hook-timeout", Kind::Duration, "DURATION", "500ms",
        |c| duration(c.hooks.publish.timeout),
        "How long one publish hook call may take; past it the call failed (109)."),
    setting("hooks.publish.max_in_flight", "publish-hook-max-in-flight", Kind::Count, "N", "64",
        |c| count(c.hooks.publish.max_in_flight),
        "Publish hook calls in flight at once on this node; past it the call is not \
         made and the failure rule applies."),
    setting("hooks.publish.breaker_failures", "publish-hook-breaker-failures", Kind::Count32,
        "N", "10", |c| count(c.hooks.publish.breaker_failures),
        "Consecutive failed publish hook calls that open the circuit: calls are skipped for the \
         cooldown and the failure rule applies."),
    setting("hooks.publish.breaker_cooldown", "publish-hook-breaker-cooldown", Kind::Duration,
        "DURATION", "30s", |c| duration(c.hooks.publish.breaker_cooldown),
        "How long an open circuit skips publish hook calls."),
    setting("hooks.publish.fail_open", "publish-hook-fail-open", Kind::Bool, "BOOL", "true",
        |c| boolean(c.hooks.publish.fail_open),
        "When a publish hook call fails or is skipped: false answers 109, true lets the command \
         proceed as if no hook were configured."),
    setting("hooks.publish.max_response", "publish-hook-max-response", Kind::Count, "BYTES",
        "16384", |c| count(c.hooks.publish.max_response),
        "Largest answer read from the publish hook's backend; a larger one is a failed call."),
    setting("hooks.rpc.url", "rpc-hook-url", Kind::Text, "URL",
        "http://127.0.0.1:3000/herald/rpc",
        |c| c.hooks.rpc.url.as_deref().and_then(text),
        "http:// or https:// URL the rpc command is forwarded to (POST, JSON). Unset: rpc answers \
         102."),
    setting("hooks.rpc.timeout", "rpc-hook-timeout", Kind::Duration, "DURATION", "500ms",
        |c| duration(c.hooks.rpc.timeout),
        "How long one rpc hook call may take; past it the call failed (109)."),
    setting("hooks.rpc.max_in_flight", "rpc-hook-max-in-flight", Kind::Count, "N", "64",
        |c| count(c.hooks.rpc.max_in_flight),
        "RPC hook calls in flight at once on this node; past it the call is not \
         made and the failure rule applies."),
    setting("hooks.rpc.breaker_failures", "rpc-hook-breaker-failures", Kind::Count32,
        "N", "10", |c| count(c.hooks.rpc.breaker_failures),
        "Consecutive failed rpc hook calls that open the circuit: calls are skipped for the \
         cooldown and the failure rule applies."),
    setting("hooks.rpc.breaker_cooldown", "rpc-hook-breaker-cooldown", Kind::Duration,
        "DURATION", "30s", |c| duration(c.hooks.rpc.breaker_cooldown),
        "How long an open circuit skips rpc hook calls."),
    setting("hooks.rpc.fail_open", "rpc-hook-fail-open", Kind::Bool, "BOOL", "true",
        |c| boolean(c.hooks.rpc.fail_open),
        "No effect: a failed or skipped rpc hook call always answers 109 (there is nothing to \
         proceed with)."),
    setting("hooks.rpc.max_response", "rpc-hook-max-response", Kind::Count, "BYTES",
        "16384", |c| count(c.hooks.rpc.max_response),
        "Largest answer read from the rpc hook's backend; a larger one is a failed call."),
    setting("hooks.refresh.url", "refresh-hook-url", Kind::Text, "URL",
        "http://127.0.0.1:3000/herald/refresh",
        |c| c.hooks.refresh.url.as_deref().and_then(text),
        "http:// or https:// URL asked (POST, JSON) to extend the session of a connection the \
         connect hook admitted with an expiry, auth.refresh_notice before it. Unset: no hook."),
    setting("hooks.refresh.timeout", "refresh-hook-timeout", Kind::Duration, "DURATION", "500ms",
        |c| duration(c.hooks.refresh.timeout),
        "How long one refresh hook call may take; past it the call failed (asked again later)."),
    setting("hooks.refresh.max_in_flight", "refresh-hook-max-in-flight", Kind::Count, "N", "64",
        |c| count(c.hooks.refresh.max_in_flight),
        "Refresh hook calls in flight at once on this node; past it the call is not made."),
    setting("hooks.refresh.breaker_failures", "refresh-hook-breaker-failures", Kind::Count32,
        "N", "10", |c| count(c.hooks.refresh.breaker_failures),
        "Consecutive failed refresh hook calls that open the circuit."),
    setting("hooks.refresh.breaker_cooldown", "refresh-hook-breaker-cooldown", Kind::Duration,
        "DURATION", "30s", |c| duration(c.hooks.refresh.breaker_cooldown),
        "How long an open circuit skips refresh hook calls."),
    setting("hooks.refresh.fail_open", "refresh-hook-fail-open", Kind::Bool, "BOOL", "true",
        |c| boolean(c.hooks.refresh.fail_open),
        "No effect: without an answer the session keeps its expiry, and the hook is asked again \
         at half the time left."),
    setting("hooks.refresh.max_response", "refresh-hook-max-response", Kind::Count, "BYTES",
        "16384", |c| count(c.hooks.refresh.max_response),
        "Largest answer read from the refresh hook's backend; a larger one is a failed call."),
    setting("webhooks.url", "webhook-url", Kind::Text, "URL",
        "http://127.0.0.1:3000/herald/events",
        |c| c.webhooks.url.as_deref().and_then(text),
        "http:// or https:// URL that batches of events (channel_occupied, user_online, ...) \
         are POSTed to, signed with webhooks.secret. Unset: no webhooks."),
    setting("webhooks.secret", "webhook-secret", Kind::Secret, "SECRET", "change-me",
        |c| c.webhooks.secret.as_deref().and_then(text),
        "HMAC-SHA256 key of each POST's Herald-Signature header; required with webhooks.url."),
    setting("webhooks.events", "webhook-event", Kind::List, "EVENT", "user_online",
        |c| list(&c.webhooks.events),
        "Events to send: channel_occupied, channel_vacated, member_added, member_removed, \
         user_online, user_offline (publication events come from namespaces)."),
    setting("webhooks.grace", "webhook-grace", Kind::Duration, "DURATION", "10s",
        |c| duration(c.webhooks.grace),
        "How long a user, channel or member must stay gone before its offline, vacated or \
         removed event; one back within it produces no event."),
    setting("webhooks.node_expiry", "webhook-node-expiry", Kind::Duration, "DURATION", "1m",
        |c| duration(c.webhooks.node_expiry),
        "How long a node that stopped without closing its connections counts as alive; then what \
         it held is released."),
    setting("webhooks.max_queue", "webhook-max-queue", Kind::Count, "N", "100000",
        |c| count(c.webhooks.max_queue),
        "Events the cluster's outbox holds; an event past it is dropped and counted."),
    setting("webhooks.batch", "webhook-batch", Kind::Count, "N", "500",
        |c| count(c.webhooks.batch),
        "Most events in one POST."),
    setting("webhooks.timeout", "webhook-timeout", Kind::Duration, "DURATION", "10s",
        |c| duration(c.webhooks.timeout),
        "How long one POST may take; past it the POST failed and is retried."),
    setting("webhooks.max_backoff", "webhook-max-backoff", Kind::Duration, "DURATION", "1m",
        |c| duration(c.webhooks.max_backoff),
        "Longest wait between two attempts of a failed POST (the wait doubles from 250ms)."),
    setting("history.size", "history-size", Kind::Count, "N", "1000", |c| count(c.history.size),
        "Publications kept per channel for recovery; 0 disables history."),
    setting("history.ttl", "history-ttl", Kind::Duration, "DURATION", "1h",
        |c| duration(c.history.ttl),
        "How long a publication stays in history."),
    setting("history.max_channels", "history-max-channels", Kind::Count, "N", "1000",
        |c| count(c.history.max_channels),
        "Channels with history at once (memory broker); past it, a publish to a new channel \
         gets error 106. 0: no limit."),
    setting("history.max_bytes", "history-max-bytes", Kind::Count, "BYTES", "1048576",
        |c| count(c.history.max_bytes),
        "Payload bytes the memory broker retains over all channels. 0: no limit."),
    setting("limits.max_connections", "max-connections", Kind::Count, "N", "1000",
        |c| count(c.limits.max_connections),
        "Open connections (WebSocket and HTTP) at once; more get 503. Bounds memory and file \
         descriptors."),
    setting("limits.max_connections_per_ip", "max-connections-per-ip", Kind::Count, "N", "10",
        |c| count(c.limits.max_connections_per_ip),
        "Open connections (HTTP and WebSocket) per client IP, IPv6 per /64; more get 429. 0: no \
         limit."),
    setting("limits.max_streams_per_connection", "max-streams-per-connection", Kind::Count, "N",
        "20", |c| count(c.limits.max_streams_per_connection),
        "HTTP/2 streams (WebSockets and requests) open at once on one connection; each \
         WebSocket also takes a max_connections slot."),
    setting("limits.max_connections_per_user", "max-connections-per-user", Kind::Count, "N", "5",
        |c| count(c.limits.max_connections_per_user),
        "Open connections per user id over every node; one more is closed with 4503. 0: no \
         limit."),
    setting("limits.max_message_size", "max-message-size", Kind::Count, "BYTES", "1048576",
        |c| count(c.limits.max_message_size),
        "Largest message a client may send; larger closes with 1009."),
    setting("limits.max_subscriptions", "max-subscriptions", Kind::Count, "N", "16",
        |c| count(c.limits.max_subscriptions),
        "Subscriptions per connection; more get error 106."),
    setting("limits.publish_rate", "publish-rate", Kind::Count32, "N", "10",
        |c| count(c.limits.publish_rate),
        "Publishes per second per connection, sustained. 0: no limit."),
    setting("limits.publish_burst", "publish-burst", Kind::Count32, "N", "20",
        |c| count(c.limits.publish_burst),
        "Publishes a connection may make in a burst above the rate; over it, error 108."),
    setting("limits.queue_size", "queue-size", Kind::Count, "N", "256",
        |c| count(c.limits.queue_size),
        "Outgoing messages queued per connection; overflow closes it with 4001. Bounds slow \
         readers."),
    setting("limits.handshake_timeout", "handshake-timeout", Kind::Duration, "DURATION", "3s",
        |c| duration(c.limits.handshake_timeout),
        "Time from TCP accept to a complete first HTTP request head (TLS included), then for \
         each later head on a kept-alive connection. Bounds slowloris."),
    setting("limits.idle_timeout", "idle-timeout", Kind::Duration, "DURATION", "5m",
        |c| duration(c.limits.idle_timeout),
        "A connection with no subscription sending no data this long is closed with 4502. 0: \
         never."),
    setting("limits.write_timeout", "write-timeout", Kind::Duration, "DURATION", "30s",
        |c| duration(c.limits.write_timeout),
        "A connection whose writes make no progress this long is dropped with 4004. 0: no \
         limit."),
    setting("limits.command_rate", "command-rate", Kind::Count32, "N", "50",
        |c| count(c.limits.command_rate),
        "Command cost units per second per connection (a ping costs 1, a reply 1 more per \
         4 KiB). 0: no limit."),
    setting("limits.command_burst", "command-burst", Kind::Count32, "N", "100",
        |c| count(c.limits.command_burst),
        "Cost units a connection may spend in a burst; over it, error 108, then 1008."),
    setting("limits.max_reply_size", "max-reply-size", Kind::Count, "BYTES", "65536",
        |c| count(c.limits.max_reply_size),
        "Largest reply to one command; history returns fewer publications past it."),
    setting("limits.request_timeout", "request-timeout", Kind::Duration, "DURATION", "3s",
        |c| duration(c.limits.request_timeout),
        "Time for an HTTP API request's body, from the end of its head; then 408. Bounds slow \
         bodies."),
    setting("limits.close_timeout", "close-timeout", Kind::Duration, "DURATION", "5s",
        |c| duration(c.limits.close_timeout),
        "How long a client has to complete the closing handshake once a Close was sent or \
         answered; then the connection is dropped (1006)."),
    setting("limits.refusal_timeout", "refusal-timeout", Kind::Duration, "DURATION", "3s",
        |c| duration(c.limits.refusal_timeout),
        "How long writing a 503 or 429 refusal at accept may take before the socket is closed."),
    setting("limits.poll_timeout", "poll-timeout", Kind::Duration, "DURATION", "45s",
        |c| duration(c.limits.poll_timeout),
        "A long-polling session with no poll held and none arriving this long ends with 4004."),
    setting("limits.http2_idle_timeout", "http2-idle-timeout", Kind::Duration, "DURATION", "2m",
        |c| duration(c.limits.http2_idle_timeout),
        "An HTTP/2 connection with no request and no WebSocket under way this long is closed \
         (GOAWAY NO_ERROR)."),
    setting("limits.http2_max_pending_resets", "http2-max-pending-resets", Kind::Count, "N", "50",
        |c| count(c.limits.http2_max_pending_resets),
        "HTTP/2 streams a client may reset before they were served; more gets GOAWAY \
         ENHANCE_YOUR_CALM (rapid reset)."),
    setting("heartbeat.interval", "ping-interval", Kind::Duration, "DURATION", "10s",
        |c| duration(c.heartbeat.interval), "Ping a connection that was silent this long."),
    setting("heartbeat.timeout", "pong-timeout", Kind::Duration, "DURATION", "5s",
        |c| duration(c.heartbeat.timeout),
        "Close (1011) a connection that does not answer a ping in this time."),
    setting("plain.routes", "plain-route", Kind::Routes, "PATH?PARAMS", "/room?id",
        |c| Some(Value::Array(c.plain.routes.iter()
            .map(|r| route_value(&r.path, r.params.iter().map(String::as_str)))
            .collect())),
        "Plain-mode paths and the query parameters naming the room, e.g. /chat?groupId \
         (/chat?groupId=7 joins chat:7); several with a&b. Empty: no plain mode."),
    setting("plain.echo", "plain-echo", Kind::Bool, "BOOL", "true", |c| boolean(c.plain.echo),
        "Deliver a plain-mode client's own messages back to it."),
    setting("presence.enabled", "presence", Kind::Bool, "BOOL", "false",
        |c| boolean(c.presence.enabled),
        "Track who is subscribed to each channel."),
    setting("presence.join_leave", "join-leave", Kind::Bool, "BOOL", "false",
        |c| boolean(c.presence.join_leave), "Allow join and leave pushes to subscribers that ask for them."),
    setting("presence.join_leave_rate", "join-leave-rate", Kind::Count32, "N", "10",
        |c| count(c.presence.join_leave_rate),
        "Join and leave pushes per second per channel on one node; more are dropped. 0: no limit."),
    setting("redis.op_timeout", "redis-op-timeout", Kind::Duration, "DURATION", "1s",
        |c| duration(c.redis.op_timeout),
        "How long one Redis operation may take; then a read fails with 109, a publish with 111 \
         (outcome unknown), and health turns degraded."),
    setting("redis.connect_timeout", "redis-connect-timeout", Kind::Duration, "DURATION", "5s",
        |c| duration(c.redis.connect_timeout), "How long opening a Redis connection may take."),
    setting("redis.max_reconnect_delay", "redis-max-reconnect-delay", Kind::Duration, "DURATION",
        "10s", |c| duration(c.redis.max_reconnect_delay),
        "The longest wait between attempts to reconnect the Redis command connection."),
    setting("redis.check_every", "redis-check-every", Kind::Duration, "DURATION", "5s",
        |c| duration(c.redis.check_every), "How often the node PINGs Redis to know its health."),
    setting("redis.member_lifetime", "redis-member-lifetime", Kind::Duration, "DURATION", "1m",
        |c| duration(c.redis.member_lifetime),
        "How long a presence member stays listed without a refresh from its node (a crashed \
         node's members disappear after it)."),
    setting("redis.refresh_every", "redis-refresh-every", Kind::Duration, "DURATION", "5s",
        |c| duration(c.redis.refresh_every),
        "How often a node refreshes the presence members it holds; shorter than \
         redis.member_lifetime."),
    setting("users.personal_prefix", "personal-prefix", Kind::Text, "PREFIX", "user:",
        |c| text(&c.users.personal_prefix),
        "Each user's personal channel is this prefix and the user id; the server subscribes a \
         user's connections to it. Empty: no personal channels."),
    setting("pusher.activity_timeout", "pusher-activity-timeout", Kind::Duration, "DURATION",
        "1m", |c| duration(c.pusher.activity_timeout),
        "The activity_timeout Pusher clients are told: after this long without a message they \
         send pusher:ping. The apps are [[pusher.apps]] tables (docs/pusher.md)."),
    setting("pusher.timestamp_window", "pusher-timestamp-window", Kind::Duration, "DURATION",
        "5m", |c| duration(c.pusher.timestamp_window),
        "How far a Pusher HTTP API request's auth_timestamp may be from this server's clock \
         before it is refused with 401 (bounds the replay of a captured request)."),
];

fn text(s: &str) -> Option<Value> {
    Some(Value::String(s.to_owned()))
}

fn path(p: &Option<PathBuf>) -> Option<Value> {
    p.as_deref().and_then(|p| text(&p.display().to_string()))
}

pub(super) fn boolean(b: bool) -> Option<Value> {
    Some(Value::Boolean(b))
}

pub(super) fn count<N: TryInto<i64>>(n: N) -> Option<Value> {
    // TOML integers are i64; a count past i64::MAX cannot come from a file or a flag.
    Some(Value::Integer(n.try_into().unwrap_or(i64::MAX)))
}

pub(super) fn duration(d: Duration) -> Option<Value> {
    text(&humantime::format_duration(d).to_string())
}

pub(super) fn list(items: &[String]) -> Option<Value> {
    Some(Value::Array(
        items.iter().map(|s| Value::String(s.clone())).collect(),
    ))
}
