//! [`RedisBroker`]: the [`Broker`] trait over Redis.

use crate::control::Control;
use crate::error::{Failure, bounded};
use crate::fanout::{Fanout, Incoming, Source};
use crate::link::{Commands, Follower};
use crate::options::RedisOptions;
use crate::presence::{self, Held};
use crate::target::Target;
use crate::users;
use crate::wire::{self, Keys};
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, BoxFuture, FutureExt, abortable};
use herald_hub::broker::{
    Appended, Broker, BrokerError, BrokerEvents, Health, History, HistoryQuery, Lead, OutboxEntry,
    OutboxPolicy, Payload, Retention, Tracked,
};
use herald_hub::config::HistoryConfig;
use herald_hub_protocol::{ClientInfo, StreamPosition};
use redis::aio::ConnectionManagerConfig;
use redis::{RedisError, Script};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

const PRESENCE_CODE: &str = include_str!("lua/presence.lua");

static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/publish.lua")));
static HISTORY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/history.lua")));
static PRESENCE: LazyLock<Script> = LazyLock::new(|| Script::new(PRESENCE_CODE));

/// Channels per presence refresh round trip (one pipeline), bounding a request's size.
const REFRESH_BATCH: usize = 1000;

/// Script calls in flight at once when a cluster runs them one by one (presence and
/// connection refreshes).
const CLUSTER_AT_ONCE: usize = 64;

/// Most publications one history read asks Redis for (`XRANGE COUNT` takes an `i64`).
const MAX_READ: usize = u32::MAX as usize;

struct Inner {
    conn: Commands,
    history: HistoryConfig,
    options: RedisOptions,
    fanout: Arc<Fanout>,
    local: presence::Local,
    /// The connections this node counted per user.
    connections: users::Held,
    /// Written by a refresh (of connection counts or presence members) from its snapshot to
    /// its last write, read by each removal. A refresh re-adds everything it read (so that
    /// what Redis lost while it stalled comes back), so one whose snapshot was taken before
    /// a removal must not write after it: the removed client would count again for a whole
    /// lifetime, and a member that left would be added back and announced leaving twice.
    /// Removals share it, so they do not wait for each other.
    refreshing: tokio::sync::RwLock<()>,
    /// The control bus.
    control: Arc<Control>,
    /// Whether the last command reached Redis (an error reply counts: Redis answered).
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
            .field("options", &self.inner.options)
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
    /// Connects to Redis at `url`, with the default [`RedisOptions`]: one server
    /// (`redis://HOST[:PORT][/DB]`, `rediss://…`), a Redis Cluster
    /// (`redis+cluster://HOST:PORT,HOST:PORT…`, its seed nodes) or the master Sentinel names
    /// (`redis+sentinel://HOST:PORT,HOST:PORT…/MASTER[/DB]`, the Sentinels). `history` is kept for the broker's `Debug` only: what each
    /// channel retains comes with its publishes, and Redis has no node-wide bounds of its own. Must run inside a tokio
    /// runtime: it spawns the node's pub/sub reader and its upkeep.
    ///
    /// # Errors
    /// [`BrokerError::Internal`] for an unusable URL, [`BrokerError::Unavailable`] when Redis
    /// cannot be reached now.
    pub async fn connect(url: &str, history: HistoryConfig) -> Result<Self, BrokerError> {
        Self::connect_with(url, history, RedisOptions::default()).await
    }

    /// [`connect`](Self::connect) with the given timings.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        url: &str,
        history: HistoryConfig,
        options: RedisOptions,
    ) -> Result<Self, BrokerError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.op_timeout))
            .set_max_delay(options.max_reconnect_delay);
        let (conn, fanout, stream) = match Target::parse(url).map_err(Failure::into_read_error)? {
            Target::Single(url) => {
                let client = redis::Client::open(url)
                    .map_err(|e| Failure::from_redis(&e).into_read_error())?;
                let manager = client.get_connection_manager_with_config(config);
                let conn = Commands::Single(
                    bounded(options.op_timeout, manager)
                        .await
                        .map_err(Failure::into_read_error)?,
                );
                let control = Arc::new(Control::new(conn.clone(), options.op_timeout));
                let (fanout, stream) =
                    Fanout::connect(Source::Server(client), options.op_timeout, control).await?;
                (conn, fanout, stream)
            }
            Target::Sentinel {
                sentinels,
                master,
                settings,
            } => {
                let follower = Follower::connect(&sentinels, &master, &settings, options, config)
                    .await
                    .map_err(Failure::into_read_error)?;
                let follower = Arc::new(follower);
                let conn = Commands::Sentinel(follower.clone());
                let control = Arc::new(Control::new(conn.clone(), options.op_timeout));
                let (fanout, stream) =
                    Fanout::connect(Source::Sentinel(follower), options.op_timeout, control)
                        .await?;
                (conn, fanout, stream)
            }
            Target::Cluster(seeds) => connect_cluster(&seeds, options).await?,
        };
        let control = fanout.control();
        let inner = Arc::new(Inner {
            conn,
            history,
            options,
            fanout: fanout.clone(),
            local: presence::Local::default(),
            connections: users::Held::default(),
            refreshing: tokio::sync::RwLock::new(()),
            control,
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

/// The command connection and fan-out on a Redis Cluster: two cluster clients, one for
/// commands and one (RESP3, with a push channel) for pub/sub.
async fn connect_cluster(
    seeds: &[String],
    options: RedisOptions,
) -> Result<(Commands, Arc<Fanout>, Incoming), BrokerError> {
    let builder = |seeds: &[String]| {
        redis::cluster::ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.op_timeout)
    };
    // A cluster that cannot be reached is unavailable, whatever the client calls it.
    let unreachable = |e: Failure| BrokerError::Unavailable(e.to_string());
    let commands = builder(seeds)
        .build()
        .map_err(|e| Failure::from_redis(&e).into_read_error())?;
    let conn = bounded(options.op_timeout, commands.get_async_connection())
        .await
        .map_err(unreachable)?;
    let conn = Commands::Cluster(conn);
    let control = Arc::new(Control::new(conn.clone(), options.op_timeout));
    let (sender, pushes) = tokio::sync::mpsc::unbounded_channel();
    let pubsub = builder(seeds)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(sender)
        .build()
        .map_err(|e| Failure::from_redis(&e).into_read_error())?;
    let (fanout, stream) = Fanout::connect_cluster(&pubsub, pushes, options.op_timeout, control)
        .await
        .map_err(|e| match e {
            BrokerError::Internal(e) => BrokerError::Unavailable(e),
            e => e,
        })?;
    Ok((conn, fanout, stream))
}

/// A new epoch, offered to the scripts: used only when Redis has none for the channel (or no
/// vacant epoch).
fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Inner {
    /// Runs a command future under the operation timeout, noting whether Redis answered.
    async fn track<T>(
        &self,
        op: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Failure> {
        let result = bounded(self.options.op_timeout, op).await;
        let up = !result.as_ref().err().is_some_and(Failure::is_connection);
        self.commands_up.store(up, Ordering::Relaxed);
        result
    }

    async fn publish(
        &self,
        channel: &str,
        payload: Payload,
        publisher: Option<ClientInfo>,
        retention: Retention,
    ) -> Result<StreamPosition, BrokerError> {
        let keys = Keys::new(channel);
        let (client, user) = publisher.map(|p| (p.client, p.user)).unwrap_or_default();
        let mut call = PUBLISH.key(&keys.meta);
        call.key(&keys.history)
            .key(&keys.vacant)
            .arg(new_epoch())
            .arg(new_epoch())
            .arg(retention.size)
            .arg(millis(retention.ttl))
            .arg(&keys.topic)
            .arg(wire::kind(&payload))
            .arg(payload.bytes().as_ref())
            .arg(client)
            .arg(user)
            .arg(self.publish_command());
        let mut conn = self.conn.clone();
        let (offset, epoch): (u64, String) = self
            .track(call.invoke_async(&mut conn))
            .await
            .map_err(Failure::into_publish_error)?;
        Ok(StreamPosition { offset, epoch })
    }

    async fn history(&self, channel: &str, query: HistoryQuery) -> Result<History, BrokerError> {
        let keys = Keys::new(channel);
        // The hub caps `limit` by the channel's retention; MAXLEN bounds what there is.
        let limit = query.limit.min(MAX_READ);
        let mut call = HISTORY.key(&keys.meta);
        call.key(&keys.history)
            .key(&keys.vacant)
            .arg(wire::first_id(query.after, limit).unwrap_or_default())
            .arg(limit)
            .arg(new_epoch())
            .arg(if query.reverse { "rev" } else { "fwd" });
        let mut conn = self.conn.clone();
        let raw: Vec<Vec<u8>> = self
            .track(call.invoke_async(&mut conn))
            .await
            .map_err(Failure::into_read_error)?;
        wire::parse_history(raw).ok_or_else(|| BrokerError::Internal("malformed history".into()))
    }

    /// One presence script call. Presence changes count as reads for errors: a member whose
    /// add or remove went unanswered is set right by the next refresh or by its expiry.
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
            .arg(millis(self.options.member_lifetime))
            .arg(self.publish_command());
        for (client, user) in members {
            call.arg(client).arg(user);
        }
        let mut conn = self.conn.clone();
        self.track(call.invoke_async(&mut conn))
            .await
            .map_err(Failure::into_read_error)
    }

    /// `op` for many channels' members in one round trip: a pipeline that loads the script
    /// (so it is there even if Redis lost its script cache) and then calls it per channel.
    async fn presence_batch(&self, op: &str, batch: &[Held]) -> Result<(), Failure> {
        if self.conn.is_cluster() {
            // A cluster pipeline goes to one shard: one script call per channel instead.
            return self
                .each(
                    batch
                        .iter()
                        .map(|held| {
                            let keys = Keys::new(&held.channel);
                            let mut call = PRESENCE.key(&keys.members);
                            call.key(&keys.users)
                                .arg(op)
                                .arg(&keys.topic)
                                .arg(millis(self.options.member_lifetime))
                                .arg(self.publish_command());
                            for (client, user) in &held.members {
                                call.arg(client).arg(user);
                            }
                            call
                        })
                        .collect(),
                )
                .await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SCRIPT").arg("LOAD").arg(PRESENCE_CODE).ignore();
        let lifetime = millis(self.options.member_lifetime);
        for held in batch {
            let keys = Keys::new(&held.channel);
            pipe.cmd("EVALSHA")
                .arg(PRESENCE.get_hash())
                .arg(2)
                .arg(&keys.members)
                .arg(&keys.users)
                .arg(op)
                .arg(&keys.topic)
                .arg(lifetime)
                .arg(self.publish_command());
            for (client, user) in &held.members {
                pipe.arg(client).arg(user);
            }
            pipe.ignore();
        }
        let mut conn = self.conn.clone();
        self.track(pipe.query_async::<()>(&mut conn)).await
    }

    /// `PUBLISH`, or `SPUBLISH` on a cluster (the scripts' fan-out command).
    fn publish_command(&self) -> &'static str {
        if self.conn.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Runs script calls (each on its own shard), a bounded number at once; the first
    /// failure is returned after all ran.
    async fn each(&self, calls: Vec<redis::ScriptInvocation<'static>>) -> Result<(), Failure> {
        let mut runs: Vec<BoxFuture<'_, Result<(), Failure>>> = Vec::with_capacity(calls.len());
        for call in calls {
            let mut conn = self.conn.clone();
            runs.push(Box::pin(async move {
                self.track(call.invoke_async::<redis::Value>(&mut conn))
                    .await
                    .map(drop)
            }));
        }
        let results: Vec<Result<(), Failure>> = futures_util::stream::iter(runs)
            .buffer_unordered(CLUSTER_AT_ONCE)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// PUBLISHes a control frame to every node; returns how many nodes got it.
    async fn broadcast(&self, frame: Vec<u8>) -> Result<usize, BrokerError> {
        let mut conn = self.conn.clone();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(crate::control::ALL).arg(frame);
        self.track(publish.query_async::<usize>(&mut conn))
            .await
            .map_err(Failure::into_read_error)
    }

    async fn survey(
        &self,
        question: &[u8],
        timeout: Duration,
    ) -> Result<Vec<bytes::Bytes>, BrokerError> {
        let (frame, waiter) = self.control.begin(question)?;
        let nodes = self.broadcast(frame).await?;
        Ok(waiter.wait(nodes, timeout).await)
    }

    async fn connection_add(
        &self,
        user: &str,
        client: &str,
        limit: usize,
    ) -> Result<bool, BrokerError> {
        let lifetime = millis(self.options.member_lifetime);
        let mut conn = self.conn.clone();
        let call = users::add(user, client, limit, lifetime);
        let added: u8 = self
            .track(call.invoke_async(&mut conn))
            .await
            .map_err(Failure::into_read_error)?;
        if added == 1 {
            self.connections.add(user, client);
        }
        Ok(added == 1)
    }

    async fn connection_remove(&self, user: &str, client: &str) -> Result<(), BrokerError> {
        let _no_refresh = self.refreshing.read().await;
        self.connections.remove(user, client);
        let lifetime = millis(self.options.member_lifetime);
        let mut conn = self.conn.clone();
        let call = users::remove(user, client, lifetime);
        self.track(call.invoke_async::<u8>(&mut conn))
            .await
            .map(drop)
            .map_err(Failure::into_read_error)
    }

    async fn outbox<T: redis::FromRedisValue>(
        &self,
        call: redis::ScriptInvocation<'static>,
    ) -> Result<T, BrokerError> {
        let mut conn = self.conn.clone();
        self.track(call.invoke_async(&mut conn))
            .await
            .map_err(Failure::into_read_error)
    }

    async fn appended(
        &self,
        call: redis::ScriptInvocation<'static>,
    ) -> Result<Appended, BrokerError> {
        let raw: Vec<u64> = self.outbox(call).await?;
        crate::outbox::parse_appended(&raw)
            .ok_or_else(|| BrokerError::Internal("malformed outbox answer".into()))
    }

    async fn outbox_lead(&self, node: &str, policy: OutboxPolicy) -> Result<Lead, BrokerError> {
        let raw: Vec<u64> = self.outbox(crate::outbox::lead(node, policy)).await?;
        crate::outbox::parse_lead(&raw)
            .ok_or_else(|| BrokerError::Internal("malformed outbox lead".into()))
    }

    async fn outbox_read(&self, max: usize) -> Result<Vec<OutboxEntry>, BrokerError> {
        let mut conn = self.conn.clone();
        let mut range = redis::cmd("XRANGE");
        range
            .arg(crate::outbox::OUT)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(max);
        let raw: redis::Value = self
            .track(range.query_async(&mut conn))
            .await
            .map_err(Failure::into_read_error)?;
        crate::outbox::parse_range(raw)
            .ok_or_else(|| BrokerError::Internal("malformed outbox entries".into()))
    }

    async fn outbox_ack(&self, ids: &[String]) -> Result<(), BrokerError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut del = redis::cmd("XDEL");
        del.arg(crate::outbox::OUT).arg(ids);
        self.track(del.query_async::<u64>(&mut conn))
            .await
            .map(drop)
            .map_err(Failure::into_read_error)
    }

    /// Refreshes the expiry of every connection this node counted.
    async fn refresh_connections(&self) {
        let _no_removal = self.refreshing.write().await;
        let held = self.connections.snapshot();
        let lifetime = millis(self.options.member_lifetime);
        if self.conn.is_cluster() {
            let calls = held
                .iter()
                .map(|(user, clients)| users::refresh_one(user, clients, lifetime))
                .collect();
            if let Err(e) = self.each(calls).await {
                tracing::warn!(users = held.len(), error = %e, "connection count refresh failed");
            }
            return;
        }
        for batch in held.chunks(REFRESH_BATCH) {
            let mut conn = self.conn.clone();
            let pipe = users::refresh(batch, lifetime);
            if let Err(e) = self.track(pipe.query_async::<()>(&mut conn)).await {
                tracing::warn!(users = batch.len(), error = %e, "connection count refresh failed");
            }
        }
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

    /// Adds back every member this node holds, with a new expiry: members that expired or were
    /// swept while Redis stalled or a cycle ran late come back (and are announced again).
    async fn refresh_members(&self) {
        let _no_removal = self.refreshing.write().await;
        let held = self.local.snapshot();
        for batch in held.chunks(REFRESH_BATCH) {
            if let Err(e) = self.presence_batch("add", batch).await {
                tracing::warn!(channels = batch.len(), error = %e, "presence refresh failed");
            }
        }
        // A member that left while its refresh was on the way may have been added back.
        let left = self.local.missing(&held);
        for batch in left.chunks(REFRESH_BATCH) {
            if let Err(e) = self.presence_batch("remove", batch).await {
                tracing::warn!(channels = batch.len(), error = %e, "presence cleanup failed");
            }
        }
    }
}

/// The node's upkeep: health checks, and refreshing its presence members before they
/// expire, and at once when Redis answers again after failing.
async fn upkeep(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.options.check_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut refreshed: Option<Instant> = None;
    loop {
        tick.tick().await;
        let was_up = inner.commands_up.load(Ordering::Relaxed);
        if let Commands::Sentinel(follower) = &inner.conn
            && let Err(e) = follower.check().await
        {
            tracing::debug!(error = %e, "sentinel check failed");
        }
        inner.ping().await;
        let back = !was_up && inner.commands_up.load(Ordering::Relaxed);
        let due = refreshed.is_none_or(|at| at.elapsed() >= inner.options.refresh_every);
        if back || due {
            refreshed = Some(Instant::now());
            inner.refresh_members().await;
            inner.refresh_connections().await;
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
        retention: Retention,
    ) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        self.inner
            .publish(channel, payload, publisher, retention)
            .boxed()
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
            // Held here even if Redis does not answer: the member is subscribed, and the next
            // refresh adds it.
            self.inner.local.add(channel, &info.client, &info.user);
            let member = [(info.client, info.user)];
            self.inner.presence(channel, "add", &member).await.map(drop)
        }
        .boxed()
    }

    fn presence_remove<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            let _no_refresh = self.inner.refreshing.read().await;
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

    fn control<'a>(&'a self, message: bytes::Bytes) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            let frame = Control::control_frame(&message)?;
            self.inner.broadcast(frame).await.map(drop)
        }
        .boxed()
    }

    fn survey<'a>(
        &'a self,
        question: bytes::Bytes,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<bytes::Bytes>, BrokerError>> {
        async move { self.inner.survey(&question, timeout).await }.boxed()
    }

    fn connection_add<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        self.inner.connection_add(user, client, limit).boxed()
    }

    fn connection_remove<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.connection_remove(user, client).boxed()
    }

    fn track<'a>(
        &'a self,
        node: &'a str,
        thing: &'a Tracked,
        held: bool,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        self.inner
            .appended(crate::outbox::track(node, thing, held, policy))
            .boxed()
    }

    fn outbox_push<'a>(
        &'a self,
        event: bytes::Bytes,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        async move {
            self.inner
                .appended(crate::outbox::push(&event, policy))
                .await
        }
        .boxed()
    }

    fn outbox_lead<'a>(
        &'a self,
        node: &'a str,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Lead, BrokerError>> {
        self.inner.outbox_lead(node, policy).boxed()
    }

    fn outbox_read<'a>(
        &'a self,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxEntry>, BrokerError>> {
        self.inner.outbox_read(max).boxed()
    }

    fn outbox_ack<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.inner.outbox_ack(ids).boxed()
    }

    fn health(&self) -> Health {
        if self.inner.fanout.is_up() && self.inner.commands_up.load(Ordering::Relaxed) {
            Health::Ok
        } else {
            Health::Degraded
        }
    }
}
