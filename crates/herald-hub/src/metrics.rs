//! Prometheus metrics (`GET /metrics`, text format).
//!
//! Hot paths count once per broadcast, not once per recipient: fan-out adds the number of
//! recipients to the delivery counters in one step.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric the hub exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections, by mode.
    pub connections: Family<Labels, Gauge>,
    /// Active subscriptions on this node.
    pub subscriptions: Gauge,
    /// Messages received from clients.
    pub messages_in: Counter,
    /// Payload bytes received from clients.
    pub bytes_in: Counter,
    /// Messages queued to clients (publications, replies, pushes).
    pub messages_out: Counter,
    /// Of the deliveries fan-out handed to connections, those it wrote to an idle
    /// connection's socket itself instead of queueing them for the connection's task.
    pub direct_deliveries: Counter,
    /// Payload bytes queued to clients.
    pub bytes_out: Counter,
    /// Publications accepted by the broker.
    pub publications: Counter,
    /// Handshakes refused before the upgrade, by HTTP status.
    pub handshake_rejections: Family<Labels, Counter>,
    /// WebSockets accepted, by the HTTP version of their handshake (`1.1`: upgrade, `2`:
    /// extended CONNECT, RFC 8441).
    pub ws_upgrades: Family<Labels, Counter>,
    /// Connections closed, by close code.
    pub disconnects: Family<Labels, Counter>,
    /// Connections cut off because their outgoing queue overflowed.
    pub slow_consumer_drops: Counter,
    /// Broker operation latency, seconds, by operation.
    pub broker_latency: Family<Labels, Histogram>,
    /// 1 when the broker is reachable, 0 when degraded.
    pub broker_up: Gauge,
    /// Times a configured bound refused or cut something, by limit (docs/operations.md,
    /// "Limits and abuse").
    pub limit_hits: Family<Labels, Counter>,
    /// Broker operations that failed, by operation and kind (`unavailable`, `internal`,
    /// `unknown`, `limit`).
    pub broker_errors: Family<Labels, Counter>,
    /// Requests a namespace rule refused, by rule (`unknown_namespace`, `publish`,
    /// `presence`, `recover`).
    pub namespace_refusals: Family<Labels, Counter>,
    /// Channels with retained history (memory broker).
    pub history_channels: Gauge,
    /// Payload bytes retained in history (memory broker).
    pub history_bytes: Gauge,
    /// Control messages and surveys from the broker's control bus, by outcome (`handled`,
    /// `surveyed`, `malformed`).
    pub control_messages: Family<Labels, Counter>,
    /// `refresh` commands, by result (`ok`, `invalid`, `expired`, `other_user`, `anonymous`).
    pub token_refreshes: Family<Labels, Counter>,
    /// JWKS fetches, by result (`ok`, `unreachable`, `status`, `too_large`, `malformed`,
    /// `timeout`), and unknown-`kid` refetches skipped by the rate limit (`rate_limited`).
    pub jwks_fetches: Family<Labels, Counter>,
    /// Calls to the application's backend, by hook and outcome (`allow`, `deny`, `error`,
    /// `timeout`, `overloaded`, `open_circuit`; the last two made no call).
    pub hook_calls: Family<Labels, Counter>,
    /// Latency of the calls made to the application's backend, seconds, by hook.
    pub hook_latency: Family<Labels, Histogram>,
    /// Webhook events, by outcome: `queued` (this node put it in the outbox), `sent`,
    /// `failed` (in a POST that failed; retried), `dropped` (the outbox was full).
    pub webhook_events: Family<Labels, Counter>,
    /// Events in the cluster's webhook outbox, as this node last read it.
    pub webhook_queue: Gauge,
    /// What the Pusher protocol and API refused, by reason (`unknown_app`, `version`,
    /// `message`, `signature`, `channel`, `client_event`, `api_auth`, `api_timestamp`, …;
    /// docs/pusher.md).
    pub pusher_refusals: Family<Labels, Counter>,
    /// What a Pusher app's own limits refused, by app id and limit (`max_connections`,
    /// `client_events_per_second`, `max_event_size`, …; docs/pusher.md, Limits).
    pub pusher_limit_hits: Family<Labels, Counter>,
    /// Open sessions, by transport (`websocket`, `sse`).
    pub transport_connections: Family<Labels, Gauge>,
    /// Sessions closed, by transport and close code.
    pub transport_disconnects: Family<Labels, Counter>,
    /// Bytes written to clients by the HTTP transports, by transport (`sse`): events,
    /// heartbeats and all.
    pub transport_bytes_out: Family<Labels, Counter>,
    /// Requests of the HTTP fallbacks refused after their session began (a POST or poll for
    /// an unknown session, a body too large, ...), by transport, status and reason.
    pub transport_refusals: Family<Labels, Counter>,
    /// HTTP/2 connections that ended in a connection error, by its code (`enhance_your_calm`,
    /// `protocol_error`, `frame_size_error`, ...): a GOAWAY the server sent, or the peer's.
    pub http2_errors: Family<Labels, Counter>,
    /// Requests to `/admin` refused for missing or wrong credentials.
    pub admin_refusals: Counter,
    /// Configuration reloads (SIGHUP), by outcome (`applied`, `unchanged`, `refused`).
    pub config_reloads: Family<Labels, Counter>,
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let connections = Family::<Labels, Gauge>::default();
        let subscriptions = Gauge::default();
        let messages_in = Counter::default();
        let bytes_in = Counter::default();
        let messages_out = Counter::default();
        let direct_deliveries = Counter::default();
        let bytes_out = Counter::default();
        let publications = Counter::default();
        let handshake_rejections = Family::<Labels, Counter>::default();
        let ws_upgrades = Family::<Labels, Counter>::default();
        let disconnects = Family::<Labels, Counter>::default();
        let slow_consumer_drops = Counter::default();
        let broker_latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
            ])
        });
        let broker_up = Gauge::default();
        broker_up.set(1);
        let limit_hits = Family::<Labels, Counter>::default();
        let pusher_refusals = Family::<Labels, Counter>::default();
        let pusher_limit_hits = Family::<Labels, Counter>::default();
        let broker_errors = Family::<Labels, Counter>::default();
        let namespace_refusals = Family::<Labels, Counter>::default();
        let history_channels = Gauge::default();
        let history_bytes = Gauge::default();
        let control_messages = Family::<Labels, Counter>::default();
        let token_refreshes = Family::<Labels, Counter>::default();
        let jwks_fetches = Family::<Labels, Counter>::default();
        let hook_calls = Family::<Labels, Counter>::default();
        let webhook_events = Family::<Labels, Counter>::default();
        let webhook_queue = Gauge::default();
        let admin_refusals = Counter::default();
        let config_reloads = Family::<Labels, Counter>::default();
        registry.register(
            "admin_refusals",
            "Requests to /admin refused for missing or wrong credentials",
            admin_refusals.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by outcome (applied, unchanged, refused)",
            config_reloads.clone(),
        );
        registry.register(
            "webhook_events",
            "Webhook events, by outcome (queued, sent, failed, dropped)",
            webhook_events.clone(),
        );
        registry.register(
            "webhook_queue",
            "Events in the cluster's webhook outbox",
            webhook_queue.clone(),
        );
        let hook_latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
        });
        let transport_connections = Family::<Labels, Gauge>::default();
        let transport_disconnects = Family::<Labels, Counter>::default();
        let transport_bytes_out = Family::<Labels, Counter>::default();
        let transport_refusals = Family::<Labels, Counter>::default();
        let http2_errors = Family::<Labels, Counter>::default();
        registry.register(
            "transport_connections",
            "Open sessions, by transport",
            transport_connections.clone(),
        );
        registry.register(
            "transport_disconnects",
            "Sessions closed, by transport and close code",
            transport_disconnects.clone(),
        );
        registry.register(
            "transport_bytes_out",
            "Bytes written to clients by the HTTP transports, by transport",
            transport_bytes_out.clone(),
        );
        registry.register(
            "transport_refusals",
            "Requests of the HTTP fallbacks refused, by transport, status and reason",
            transport_refusals.clone(),
        );
        registry.register(
            "http2_errors",
            "HTTP/2 connections ended by a connection error, by code",
            http2_errors.clone(),
        );
        registry.register(
            "hook_calls",
            "Calls to the application's backend, by hook and outcome",
            hook_calls.clone(),
        );
        registry.register(
            "hook_latency_seconds",
            "Latency of calls to the application's backend, by hook",
            hook_latency.clone(),
        );
        registry.register(
            "token_refreshes",
            "Token refresh commands, by result",
            token_refreshes.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches, by result",
            jwks_fetches.clone(),
        );
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register(
            "ws_upgrades",
            "WebSockets accepted, by HTTP version of the handshake",
            ws_upgrades.clone(),
        );
        registry.register(
            "subscriptions",
            "Active subscriptions",
            subscriptions.clone(),
        );
        registry.register(
            "messages_in",
            "Messages received from clients",
            messages_in.clone(),
        );
        registry.register(
            "bytes_in",
            "Payload bytes received from clients",
            bytes_in.clone(),
        );
        registry.register(
            "messages_out",
            "Messages queued to clients",
            messages_out.clone(),
        );
        registry.register(
            "direct_deliveries",
            "Deliveries fan-out wrote straight to an idle connection's socket",
            direct_deliveries.clone(),
        );
        registry.register(
            "bytes_out",
            "Payload bytes queued to clients",
            bytes_out.clone(),
        );
        registry.register(
            "publications",
            "Publications accepted",
            publications.clone(),
        );
        registry.register(
            "handshake_rejections",
            "Handshakes refused before the upgrade, by HTTP status",
            handshake_rejections.clone(),
        );
        registry.register(
            "disconnects",
            "Connections closed, by close code",
            disconnects.clone(),
        );
        registry.register(
            "slow_consumer_drops",
            "Connections closed because their outgoing queue overflowed",
            slow_consumer_drops.clone(),
        );
        registry.register(
            "broker_latency_seconds",
            "Broker operation latency",
            broker_latency.clone(),
        );
        registry.register(
            "broker_up",
            "1 when the broker is reachable",
            broker_up.clone(),
        );
        registry.register(
            "limit_hits",
            "Times a configured bound refused or cut something, by limit",
            limit_hits.clone(),
        );
        registry.register(
            "broker_errors",
            "Failed broker operations, by operation and kind",
            broker_errors.clone(),
        );
        registry.register(
            "namespace_refusals",
            "Requests a namespace rule refused, by rule",
            namespace_refusals.clone(),
        );
        registry.register(
            "pusher_refusals",
            "Requests the Pusher protocol or API refused, by reason",
            pusher_refusals.clone(),
        );
        registry.register(
            "pusher_limit_hits",
            "Times a Pusher app's own limit refused something, by app and limit",
            pusher_limit_hits.clone(),
        );
        registry.register(
            "history_channels",
            "Channels with retained history (memory broker)",
            history_channels.clone(),
        );
        registry.register(
            "history_bytes",
            "Payload bytes retained in history (memory broker)",
            history_bytes.clone(),
        );
        registry.register(
            "control_messages",
            "Control messages and surveys between nodes, by outcome",
            control_messages.clone(),
        );
        Self {
            registry,
            control_messages,
            limit_hits,
            broker_errors,
            namespace_refusals,
            history_channels,
            history_bytes,
            token_refreshes,
            jwks_fetches,
            hook_calls,
            hook_latency,
            webhook_events,
            webhook_queue,
            pusher_refusals,
            pusher_limit_hits,
            connections,
            subscriptions,
            messages_in,
            bytes_in,
            messages_out,
            direct_deliveries,
            bytes_out,
            publications,
            handshake_rejections,
            disconnects,
            ws_upgrades,
            slow_consumer_drops,
            broker_latency,
            broker_up,
            transport_connections,
            transport_disconnects,
            transport_bytes_out,
            transport_refusals,
            http2_errors,
            admin_refusals,
            config_reloads,
        }
    }

    /// Counts a configuration reload by its outcome.
    pub(crate) fn config_reload(&self, outcome: &'static str) {
        self.config_reloads
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// Counts a refused handshake.
    pub(crate) fn rejected(&self, status: u16) {
        self.handshake_rejections
            .get_or_create(&vec![("status".into(), status.to_string())])
            .inc();
    }

    /// Counts an accepted WebSocket by the HTTP version of its handshake (`1.1` or `2`).
    pub(crate) fn upgraded(&self, http: &str) {
        self.ws_upgrades
            .get_or_create(&vec![("http".into(), http.into())])
            .inc();
    }

    /// Counts a refusal of the Pusher protocol or API.
    pub(crate) fn pusher_refusal(&self, reason: &'static str) {
        self.pusher_refusals
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc();
    }

    /// Counts a refusal by one of a Pusher app's own limits.
    pub(crate) fn pusher_limit(&self, app: &str, limit: &'static str) {
        self.pusher_limit_hits
            .get_or_create(&vec![
                ("app".into(), app.into()),
                ("limit".into(), limit.into()),
            ])
            .inc();
    }

    /// Counts a control message or survey by outcome.
    pub(crate) fn control_message(&self, outcome: &str) {
        self.control_messages
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// Open WebSocket connections, every mode.
    pub(crate) fn open_connections(&self) -> u64 {
        ["plain", "protocol", "pusher"]
            .iter()
            .map(|mode| u64::try_from(self.connections(mode).get()).unwrap_or(0))
            .sum()
    }

    /// Counts a closed connection.
    pub(crate) fn disconnected(&self, code: u16) {
        self.disconnects
            .get_or_create(&vec![("code".into(), code.to_string())])
            .inc();
    }

    /// The session gauge for a transport (`websocket`, `sse`).
    pub(crate) fn transport_connections(&self, transport: &str) -> Gauge {
        self.transport_connections
            .get_or_create(&vec![("transport".into(), transport.into())])
            .clone()
    }

    /// Counts a closed session by transport and close code.
    pub(crate) fn transport_disconnected(&self, transport: &str, code: u16) {
        self.transport_disconnects
            .get_or_create(&vec![
                ("transport".into(), transport.into()),
                ("code".into(), code.to_string()),
            ])
            .inc();
    }

    /// The byte counter of an HTTP transport (`sse`).
    pub(crate) fn transport_bytes(&self, transport: &str) -> Counter {
        self.transport_bytes_out
            .get_or_create(&vec![("transport".into(), transport.into())])
            .clone()
    }

    /// Counts an HTTP/2 connection that ended in a connection error.
    pub(crate) fn http2_error(&self, code: &str) {
        self.http2_errors
            .get_or_create(&vec![("code".into(), code.into())])
            .inc();
    }

    /// Counts a refused request of an HTTP fallback (`stream`, `poll`).
    pub(crate) fn transport_refused(&self, transport: &str, status: u16, reason: &'static str) {
        self.transport_refusals
            .get_or_create(&vec![
                ("transport".into(), transport.into()),
                ("status".into(), status.to_string()),
                ("reason".into(), reason.into()),
            ])
            .inc();
    }

    /// The connection gauge for a mode (`plain` or `protocol`).
    pub(crate) fn connections(&self, mode: &str) -> Gauge {
        self.connections
            .get_or_create(&vec![("mode".into(), mode.into())])
            .clone()
    }

    /// Counts one hit of a configured bound (`write_timeout`, `command_rate`, ...).
    pub(crate) fn limit_hit(&self, limit: &str) {
        self.limit_hits
            .get_or_create(&vec![("limit".into(), limit.into())])
            .inc();
    }

    /// Counts a `refresh` command by its result.
    pub(crate) fn token_refresh(&self, result: &str) {
        self.token_refreshes
            .get_or_create(&vec![("result".into(), result.into())])
            .inc();
    }

    /// Counts a JWKS fetch (or a skipped one) by its result.
    pub(crate) fn jwks_fetch(&self, result: &str) {
        self.jwks_fetches
            .get_or_create(&vec![("result".into(), result.into())])
            .inc();
    }

    /// Counts a hook call (or a skipped one) by its outcome.
    pub(crate) fn hook_call(&self, hook: &str, outcome: &str) {
        self.hook_calls
            .get_or_create(&vec![
                ("hook".into(), hook.into()),
                ("outcome".into(), outcome.into()),
            ])
            .inc();
    }

    /// Counts `n` webhook events with `outcome`.
    pub(crate) fn webhook_events(&self, outcome: &str, n: u64) {
        if n > 0 {
            self.webhook_events
                .get_or_create(&vec![("outcome".into(), outcome.into())])
                .inc_by(n);
        }
    }

    /// Counts what one outbox call appended and dropped.
    pub(crate) fn webhook_appended(&self, appended: crate::broker::Appended) {
        self.webhook_events("queued", appended.queued);
        self.webhook_events("dropped", appended.dropped);
    }

    /// Records the latency of a hook call that was made.
    pub(crate) fn hook_latency(&self, hook: &str, seconds: f64) {
        self.hook_latency
            .get_or_create(&vec![("hook".into(), hook.into())])
            .observe(seconds);
    }

    /// Counts a request a namespace rule refused (`unknown_namespace`, `publish`, ...).
    pub(crate) fn namespace_refusal(&self, rule: &str) {
        self.namespace_refusals
            .get_or_create(&vec![("rule".into(), rule.into())])
            .inc();
    }

    /// Counts a failed broker operation.
    pub(crate) fn broker_error(&self, op: &str, kind: &str) {
        self.broker_errors
            .get_or_create(&vec![
                ("op".into(), op.into()),
                ("kind".into(), kind.into()),
            ])
            .inc();
    }

    /// Records a broker operation's latency.
    pub(crate) fn broker_op(&self, op: &str, seconds: f64) {
        self.broker_latency
            .get_or_create(&vec![("op".into(), op.into())])
            .observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
