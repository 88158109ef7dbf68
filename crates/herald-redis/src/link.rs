//! The command connection, whichever shape Redis has: one server (the `redis` crate's
//! connection manager), a Redis Cluster (its cluster client, which routes each command to the
//! shard owning its keys and follows slot moves and failovers), or a master behind Sentinel
//! ([`Follower`]: a connection manager to the master Sentinel names, replaced when it names
//! another).

use crate::error::{Failure, bounded};
use crate::options::RedisOptions;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, Value};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Commands to Redis, cheap to clone.
#[derive(Clone)]
pub(crate) enum Commands {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
    Sentinel(Arc<Follower>),
}

impl Commands {
    /// Whether Redis is a cluster: pipelines and PUBLISH differ there.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(f) => {
                let mut c = f.manager();
                Box::pin(async move { c.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(f) => {
                let mut c = f.manager();
                Box::pin(async move { c.req_packed_commands(pipeline, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
            Self::Sentinel(f) => f.manager().get_db(),
        }
    }
}

/// The master Sentinel names now.
struct Master {
    /// `HOST:PORT`, to notice a change.
    addr: String,
    client: redis::Client,
    manager: ConnectionManager,
}

/// A connection to the master behind Sentinel that follows failovers: [`Follower::check`]
/// asks the Sentinels which server is the master and, when it changed, connects to the new
/// one and bumps [`Follower::moves`] so the pub/sub connection moves too.
pub(crate) struct Follower {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    master: RwLock<Master>,
    moved: watch::Sender<u64>,
    config: ConnectionManagerConfig,
    options: RedisOptions,
}

impl Follower {
    /// Asks `sentinels` for `master` and connects to it.
    pub(crate) async fn connect(
        sentinels: &[String],
        master: &str,
        settings: &str,
        options: RedisOptions,
        config: ConnectionManagerConfig,
    ) -> Result<Self, Failure> {
        let settings = settings
            .into_connection_info()
            .map_err(|e| Failure::from_redis(&e))?
            .redis_settings()
            .clone();
        let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(settings);
        let mut sentinel = SentinelClient::build(
            sentinels.to_vec(),
            master.to_owned(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(|e| Failure::from_redis(&e))?;
        let current = Self::resolve(&mut sentinel, options, &config).await?;
        Ok(Self {
            sentinel: tokio::sync::Mutex::new(sentinel),
            master: RwLock::new(current),
            moved: watch::channel(0).0,
            config,
            options,
        })
    }

    async fn resolve(
        sentinel: &mut SentinelClient,
        options: RedisOptions,
        config: &ConnectionManagerConfig,
    ) -> Result<Master, Failure> {
        let client = bounded(options.op_timeout, sentinel.async_get_client()).await?;
        let addr = client.get_connection_info().addr().to_string();
        let manager = bounded(
            options.op_timeout,
            client.get_connection_manager_with_config(config.clone()),
        )
        .await?;
        Ok(Master {
            addr,
            client,
            manager,
        })
    }

    pub(crate) fn manager(&self) -> ConnectionManager {
        read(&self.master).manager.clone()
    }

    /// A client for the current master (for the pub/sub connection).
    pub(crate) fn client(&self) -> redis::Client {
        read(&self.master).client.clone()
    }

    /// Counts master changes.
    pub(crate) fn moves(&self) -> watch::Receiver<u64> {
        self.moved.subscribe()
    }

    /// Asks the Sentinels for the master and follows it if it moved. Returns whether it did.
    pub(crate) async fn check(&self) -> Result<bool, Failure> {
        let mut sentinel = self.sentinel.lock().await;
        let client = bounded(self.options.op_timeout, sentinel.async_get_client()).await?;
        let addr = client.get_connection_info().addr().to_string();
        if addr == read(&self.master).addr {
            return Ok(false);
        }
        let next = Self::resolve(&mut sentinel, self.options, &self.config).await?;
        tracing::warn!(from = %read(&self.master).addr, to = %next.addr, "redis master moved (sentinel failover): following");
        *self
            .master
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        self.moved.send_modify(|n| *n += 1);
        Ok(true)
    }
}

// A poisoned lock means a panic elsewhere already; the master stays usable.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
