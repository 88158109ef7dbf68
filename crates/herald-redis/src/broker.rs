//! [`RedisBroker`]: the [`Broker`] trait over Redis.

use crate::error::{bounded, broker_error};
use crate::fanout::Fanout;
use crate::presence::{self, MEMBER_LIFETIME, REFRESH_EVERY};
use crate::wire::{self, Keys};
use futures_util::future::{AbortHandle, BoxFuture, FutureExt, abortable};
use herald_hub::broker::{
    Broker, BrokerError, BrokerEvents, Health, History, HistoryQuery, Payload,
};
use herald_hub::config::HistoryConfig;
use herald_hub_protocol::{ClientInfo, StreamPosition};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/publish.lua")));
static HISTORY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/history.lua")));
static PRESENCE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/presence.lua")));

/// How often the node checks Redis (PING) and, every tenth time, refreshes its members.
const CHECK_EVERY: Duration = Duration::from_secs(1);

struct Inner {
    conn: ConnectionManager,
    history: HistoryConfig,
    fanout: Arc<Fanout>,
    local: presence::Local,
    /// Whether the last command reached Redis.
    commands_up: AtomicBool,
}

/// The Redis broker: offsets, history and presence in Redis, fan-out over Redis pub/sub.
/// See the [crate docs](crate) for the key layout and the invariants.
pub struct RedisBroker {
    inner: Arc<Inner>,
    /// The pub/sub reader and the upkeep loop, stopped on drop.
    background: Vec<AbortHandle>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("history", &self.inner.history)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        for handle in &self.background {
            handle.abort();
        }
    }
}

impl RedisBroker {
    /// Connects to Redis at `url` (`redis://HOST[:PORT][/DB]`, `rediss://…`), keeping
    /// `history` per channel. Must run inside a tokio runtime: it spawns the node's pub/sub
    /// reader and its upkeep.
    ///
    /// # Errors
    /// [`BrokerError::Internal`] for an unusable URL, [`BrokerError::Unavailable`] when Redis
    /// cannot be reached now.
    pub async fn connect(url: &str, history: HistoryConfig) -> Result<Self, BrokerError> {
        let client = redis::Client::open(url).map_err(|e| broker_error(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_max_delay(Duration::from_secs(2));
        let conn = bounded(client.get_connection_manager_with_config(config)).await?;
        let (fanout, stream) = Fanout::connect(client).await?;
        let inner = Arc::new(Inner {
            conn,
            history,
            fanout: fanout.clone(),
            local: presence::Local::default(),
            commands_up: AtomicBool::new(true),
        });
        let (reader, reader_handle) = abortable(fanout.run(stream));
        let (upkeeper, upkeep_handle) = abortable(upkeep(inner.clone()));
        tokio::spawn(reader);
        tokio::spawn(upkeeper);
        Ok(Self {
            inner,
            background: vec![reader_handle, upkeep_handle],
        })
    }
}

/// A new epoch, offered to the scripts: used only when the channel has none in Redis.
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Inner {
    /// Runs a command future, noting whether Redis answered.
    async fn track<T>(
        &self,
        op: impl Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, BrokerError> {
        let result = bounded(op).await;
        let up = !matches!(result, Err(BrokerError::Unavailable(_)));
        self.commands_up.store(up, Ordering::Relaxed);
        result
    }

    async fn publish(
        &self,
        channel: &str,
        payload: Payload,
        publisher: Option<ClientInfo>,
    ) -> Result<StreamPosition, BrokerError> {
        let keys = Keys::new(channel);
        let (client, user) = publisher.map(|p| (p.client, p.user)).unwrap_or_default();
        let mut call = PUBLISH.key(&keys.meta);
        call.key(&keys.history)
            .arg(new_epoch())
            .arg(self.history.size)
            .arg(millis(self.history.ttl))
            .arg(&keys.topic)
            .arg(wire::kind(&payload))
            .arg(payload.bytes().as_ref())
            .arg(client)
            .arg(user);
        let mut conn = self.conn.clone();
        let (offset, epoch): (u64, String) = self.track(call.invoke_async(&mut conn)).await?;
        Ok(StreamPosition { offset, epoch })
    }

    async fn history(&self, channel: &str, query: HistoryQuery) -> Result<History, BrokerError> {
        let keys = Keys::new(channel);
        let mut call = HISTORY.key(&keys.meta);
        call.key(&keys.history)
            .arg(new_epoch())
            .arg(query.after)
            .arg(query.limit)
            .arg(millis(self.history.ttl));
        let mut conn = self.conn.clone();
        let raw: Vec<Vec<u8>> = self.track(call.invoke_async(&mut conn)).await?;
        wire::parse_history(raw).ok_or_else(|| BrokerError::Internal("malformed history".into()))
    }

    async fn presence(
        &self,
        channel: &str,
        op: &str,
        members: &[(String, String)],
    ) -> Result<Vec<String>, BrokerError> {
        let keys = Keys::new(channel);
        let mut call = PRESENCE.key(&keys.members);
        call.key(&keys.users)
            .arg(op)
            .arg(&keys.topic)
            .arg(millis(MEMBER_LIFETIME));
        for (client, user) in members {
            call.arg(client).arg(user);
        }
        let mut conn = self.conn.clone();
        self.track(call.invoke_async(&mut conn)).await
    }

    async fn ping(&self) {
        let mut conn = self.conn.clone();
        let pinged = self
            .track(redis::cmd("PING").query_async::<String>(&mut conn))
            .await;
        if let Err(e) = pinged {
            tracing::debug!(error = %e, "redis ping failed");
        }
    }

    async fn refresh_members(&self) {
        for (channel, members) in self.local.snapshot() {
            if let Err(e) = self.presence(&channel, "refresh", &members).await {
                tracing::warn!(channel, error = %e, "presence refresh failed");
            }
        }
    }
}

/// The node's upkeep: health checks, and refreshing its presence members before they expire.
async fn upkeep(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    let refresh_ticks = (REFRESH_EVERY.as_secs() / CHECK_EVERY.as_secs()).max(1);
    for n in 0u64.. {
        tick.tick().await;
        inner.ping().await;
        if n % refresh_ticks == 0 {
            inner.refresh_members().await;
        }
    }
}

impl Broker for RedisBroker {
    fn start(&self, events: Arc<dyn BrokerEvents>) {
        self.inner.fanout.start(events);
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        payload: Payload,
        publisher: Option<ClientInfo>,
    ) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        self.inner.publish(channel, payload, publisher).boxed()
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        self.inner.history(channel, query).boxed()
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.fanout.subscribe(channel).boxed()
    }

    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.fanout.unsubscribe(channel).boxed()
    }

    fn presence_add<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            self.inner.local.add(channel, &info.client, &info.user);
            let member = [(info.client, info.user)];
            let added = self.inner.presence(channel, "add", &member).await;
            if added.is_err() {
                self.inner.local.remove(channel, &member[0].0);
            }
            added.map(drop)
        }
        .boxed()
    }

    fn presence_remove<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            self.inner.local.remove(channel, &info.client);
            let member = [(info.client, info.user)];
            self.inner
                .presence(channel, "remove", &member)
                .await
                .map(drop)
        }
        .boxed()
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        async move {
            Ok(wire::members(
                self.inner.presence(channel, "list", &[]).await?,
            ))
        }
        .boxed()
    }

    fn health(&self) -> Health {
        if self.inner.fanout.is_up() && self.inner.commands_up.load(Ordering::Relaxed) {
            Health::Ok
        } else {
            Health::Degraded
        }
    }
}
