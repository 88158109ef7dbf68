//! The hub's shared state: configuration, broker, authenticator, Origin policy, metrics and
//! the node's subscriber registry.

use crate::auth::KeyError;
use crate::broker::{Broker, MemoryBroker};
use crate::config::{BrokerConfig, ConfigError, HubConfig};
use crate::hooks::{CommandHooks, ConnectHook};
use crate::limits::PerIp;
use crate::metrics::Metrics;
pub(crate) use crate::names::valid_channel;
use crate::node::Node;
use crate::users::{HubEvents, Users};
use crate::webhooks::Webhooks;
use herald_proto::DeflateConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// Why a hub could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The configuration breaks a rule of [`HubConfig::validate`]: fix the key it names.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A JWT key file could not be used.
    #[error("auth key: {0}")]
    Key(#[from] KeyError),
    /// [`Hub::new`] was given a broker it does not build: the Redis broker is in the
    /// herald-redis crate. Connect it and use [`Hub::with_broker`].
    #[error(
        "Hub::new builds the memory broker only: connect herald_redis::RedisBroker and use Hub::with_broker"
    )]
    Broker,
    /// The TLS certificate or key could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
}

/// A running hub's state, shared by every connection.
pub struct Hub {
    pub(crate) config: HubConfig,
    pub(crate) broker: Arc<dyn Broker>,
    /// What a reload may change: the Origin policy, the token verifier, keys, some limits
    /// and the namespaces' rules (`reload.rs`). Read it with [`Hub::live`]; `config` keeps the startup values.
    pub(crate) live: arc_swap::ArcSwap<crate::reload::Live>,
    /// The connect hook, when `hooks.connect.url` is set.
    pub(crate) connect_hook: Option<ConnectHook>,
    /// The subscribe, publish and RPC hooks whose URL is set.
    pub(crate) command_hooks: CommandHooks,
    /// The webhooks, when `webhooks.url` is set.
    pub(crate) webhooks: Option<Arc<Webhooks>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) node: Arc<Node>,
    pub(crate) users: Arc<Users>,
    /// The emulated connections' downstreams on this node (`/stream`).
    pub(crate) streams: Arc<crate::transport::stream::Streams>,
    /// The long-polling sessions' queued messages on this node (`/poll`).
    pub(crate) polls: Arc<crate::transport::poll::Polls>,
    pub(crate) per_ip: Arc<PerIp>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) ws: herald::Config,
    pub(crate) tls: Option<Arc<herald::tls::ServerConfig>>,
    /// The Pusher apps, by key and id.
    pub(crate) pusher: crate::pusher::Apps,
    node_id: String,
    next_client: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("node", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with the broker named in `config` ([`BrokerConfig::Memory`]).
    ///
    /// # Errors
    /// [`HubError::Config`] for a configuration [`HubConfig::validate`] refuses,
    /// [`HubError::Broker`] for a broker it cannot build, and as
    /// [`with_broker`](Self::with_broker).
    pub fn new(config: HubConfig) -> Result<Arc<Self>, HubError> {
        config.validate()?;
        let broker: Arc<dyn Broker> = match &config.broker {
            BrokerConfig::Memory => Arc::new(MemoryBroker::new(&config.history)),
            _ => return Err(HubError::Broker),
        };
        Self::with_broker(config, broker)
    }

    /// A hub on a given broker (the Redis broker, or a test's).
    ///
    /// # Errors
    /// [`HubError::Config`] for a configuration [`HubConfig::validate`] refuses,
    /// [`HubError::Key`] and [`HubError::Tls`] for an unusable key or TLS file.
    pub fn with_broker(config: HubConfig, broker: Arc<dyn Broker>) -> Result<Arc<Self>, HubError> {
        config.validate()?;
        let metrics = Arc::new(Metrics::new());
        let live = crate::reload::Live::new(config.clone(), metrics.clone(), None)?;
        // `validate` refused half a pair: both files are set, or neither.
        let tls = match (&config.tls.cert, &config.tls.key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key, config.http2)?),
            _ => None,
        };
        let deflate = config.deflate.then(|| {
            let mut deflate = DeflateConfig::default();
            // Broadcasts are compressed once and shared: that needs no server context.
            deflate.server_no_context_takeover = true;
            Arc::new(deflate)
        });
        let node = Arc::new(Node::new(
            metrics.clone(),
            deflate.clone(),
            config.presence.join_leave_rate,
        ));
        let users = Arc::new(Users::default());
        let streams = Arc::new(crate::transport::stream::Streams::default());
        let polls = Arc::new(crate::transport::poll::Polls::default());
        let node_id = format!("{:08x}", rand::random::<u32>());
        broker.start(Arc::new(HubEvents {
            node: node.clone(),
            users: users.clone(),
            metrics: metrics.clone(),
            node_id: node_id.clone(),
            reasons: crate::control::Reasons::default(),
            streams: streams.clone(),
            polls: polls.clone(),
        }));
        let limit = config.limits.max_message_size;
        let ws = herald::Config::default()
            .max_frame_size(limit)
            .max_message_size(limit)
            .keepalive_interval(Some(config.heartbeat.interval))
            .keepalive_timeout(config.heartbeat.timeout)
            .deflate(deflate.as_deref().cloned())
            .handshake_timeout(config.limits.handshake_timeout)
            .close_timeout(config.limits.close_timeout)
            .write_timeout(Some(config.limits.write_timeout).filter(|t| !t.is_zero()));
        Ok(Arc::new(Self {
            per_ip: PerIp::new(config.limits.max_connections_per_ip),
            connect_hook: ConnectHook::new(&config.hooks.connect, metrics.clone()),
            command_hooks: CommandHooks::new(&config.hooks, &metrics),
            webhooks: Webhooks::new(&config, metrics.clone()).map(Arc::new),
            live: arc_swap::ArcSwap::from_pointee(live),
            broker,
            metrics,
            node,
            users,
            streams,
            polls,
            shutdown: CancellationToken::new(),
            ws,
            tls,
            pusher: crate::pusher::Apps::new(&config.pusher),
            node_id,
            next_client: AtomicU64::new(1),
            config,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// This node's id: the prefix of its client and stream session ids.
    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    /// A new connection id, unique across nodes (node id, then a counter).
    pub(crate) fn next_client_id(&self) -> (u64, String) {
        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
        (n, format!("{}-{n}", self.node_id))
    }

    /// Starts graceful shutdown: every connection closes with 1001.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

/// The TLS settings from the PEM files; with `http2`, ALPN offers h2 before http/1.1, so
/// that browsers speak HTTP/2 and open their WebSockets with extended CONNECT (RFC 8441).
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    http2: bool,
) -> Result<Arc<herald::tls::ServerConfig>, HubError> {
    let tls = herald::tls::server_config_from_pem_files(cert, key)
        .map_err(|e| HubError::Tls(e.to_string()))?;
    if !http2 {
        return Ok(tls);
    }
    let mut tls = Arc::unwrap_or_clone(tls);
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}
