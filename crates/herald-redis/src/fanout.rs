//! Fan-out: one pub/sub connection per node, its subscriptions, and reconnection.
//!
//! On one server (or a master behind Sentinel) the node has one classic pub/sub connection:
//! when it ends (or Sentinel names another master) the node reconnects and SUBSCRIBEs again.
//! On a Redis Cluster it has one cluster client speaking RESP3, whose pushes arrive on a
//! channel: channels are sharded (`SSUBSCRIBE`, on the shard owning the channel's slot) and
//! the control bus classic (`SUBSCRIBE`). When a shard's connection drops (failover) or a
//! shard drops a subscription (its slot moved), the node re-SSUBSCRIBEs every channel through
//! the cluster client, which sends each to the slot's current owner.

use crate::control::{self, Control};
use crate::error::{Failure, bounded};
use crate::link::Follower;
use crate::wire::{self, Message};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use herald_hub::broker::{BrokerError, BrokerEvents};
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Backoff between reconnection attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// SSUBSCRIBEs in flight at once while re-subscribing a cluster node's channels.
const RESUBSCRIBE_AT_ONCE: usize = 32;

/// Where a classic pub/sub connection goes.
pub(crate) enum Source {
    Server(redis::Client),
    Sentinel(Arc<Follower>),
}

impl Source {
    fn client(&self) -> redis::Client {
        match self {
            Self::Server(client) => client.clone(),
            Self::Sentinel(follower) => follower.client(),
        }
    }
}

/// Where SUBSCRIBE goes.
enum Sink {
    Classic(PubSubSink),
    Sharded(ClusterConnection),
}

/// What the reader reads.
pub(crate) enum Incoming {
    Classic(PubSubStream),
    Sharded(UnboundedReceiver<PushInfo>),
}

struct State {
    /// Where SUBSCRIBE goes; `None` while a classic connection is down.
    sink: Option<Sink>,
    /// Every channel the node asked for, with how many `subscribe`s it got beyond the
    /// `unsubscribe`s; re-subscribed after a reconnection. The hub pairs the calls, but a
    /// late `unsubscribe` may arrive after the next `subscribe`: counting keeps the channel.
    channels: HashMap<String, usize>,
}

/// The node's pub/sub side.
pub(crate) struct Fanout {
    /// `None` on a cluster, whose client reconnects by itself.
    source: Option<Source>,
    state: tokio::sync::Mutex<State>,
    events: OnceLock<Arc<dyn BrokerEvents>>,
    up: AtomicBool,
    /// A cluster node's re-subscription is running.
    resyncing: AtomicBool,
    /// How long one SUBSCRIBE, UNSUBSCRIBE or connection attempt may take.
    op_timeout: Duration,
    /// The control bus, whose two topics every connection subscribes first.
    control: Arc<Control>,
}

impl Fanout {
    /// Connects the classic pub/sub connection; the returned stream goes to [`Fanout::run`].
    pub(crate) async fn connect(
        source: Source,
        op_timeout: Duration,
        control: Arc<Control>,
    ) -> Result<(Arc<Self>, Incoming), BrokerError> {
        let (mut sink, stream) = bounded(op_timeout, source.client().get_async_pubsub())
            .await
            .map_err(Failure::into_read_error)?
            .split();
        bounded(op_timeout, sink.subscribe(control_topics(&control)))
            .await
            .map_err(Failure::into_read_error)?;
        let fanout = Self::new(Some(source), Sink::Classic(sink), op_timeout, control);
        Ok((fanout, Incoming::Classic(stream)))
    }

    /// Connects a cluster client, built with `pushes`' sender as its push sender (RESP3).
    pub(crate) async fn connect_cluster(
        client: &redis::cluster::ClusterClient,
        pushes: UnboundedReceiver<PushInfo>,
        op_timeout: Duration,
        control: Arc<Control>,
    ) -> Result<(Arc<Self>, Incoming), BrokerError> {
        let mut conn = bounded(op_timeout, client.get_async_connection())
            .await
            .map_err(Failure::into_read_error)?;
        bounded(op_timeout, conn.subscribe(control_topics(&control)))
            .await
            .map_err(Failure::into_read_error)?;
        let fanout = Self::new(None, Sink::Sharded(conn), op_timeout, control);
        Ok((fanout, Incoming::Sharded(pushes)))
    }

    fn new(
        source: Option<Source>,
        sink: Sink,
        op_timeout: Duration,
        control: Arc<Control>,
    ) -> Arc<Self> {
        Arc::new(Self {
            source,
            state: tokio::sync::Mutex::new(State {
                sink: Some(sink),
                channels: HashMap::new(),
            }),
            events: OnceLock::new(),
            up: AtomicBool::new(true),
            resyncing: AtomicBool::new(false),
            op_timeout,
            control,
        })
    }

    /// The control bus it subscribes for.
    pub(crate) fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    pub(crate) fn start(&self, events: Arc<dyn BrokerEvents>) {
        let _ = self.events.set(events);
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// SUBSCRIBEs (SSUBSCRIBEs on a cluster) the node to `channel`; returns once Redis
    /// confirmed it.
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<(), BrokerError> {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let sink = match state.sink.as_mut() {
            Some(Sink::Sharded(_)) if !self.is_up() => None,
            sink => sink,
        };
        let Some(sink) = sink else {
            return Err(BrokerError::Unavailable(
                "redis pub/sub reconnecting".into(),
            ));
        };
        if !state.channels.contains_key(channel) {
            let topic = wire::Keys::new(channel).topic;
            let sent = match sink {
                Sink::Classic(sink) => bounded(self.op_timeout, sink.subscribe(topic)).await,
                Sink::Sharded(conn) => bounded(self.op_timeout, conn.ssubscribe(topic)).await,
            };
            sent.map_err(Failure::into_read_error)?;
        }
        *state.channels.entry(channel.to_owned()).or_default() += 1;
        Ok(())
    }

    /// UNSUBSCRIBEs the node from `channel`.
    pub(crate) async fn unsubscribe(&self, channel: &str) -> Result<(), BrokerError> {
        let mut state = self.state.lock().await;
        let Some(count) = state.channels.get_mut(channel) else {
            return Ok(());
        };
        *count -= 1;
        if *count > 0 {
            return Ok(());
        }
        state.channels.remove(channel);
        let topic = wire::Keys::new(channel).topic;
        let sent = match state.sink.as_mut() {
            Some(Sink::Classic(sink)) => bounded(self.op_timeout, sink.unsubscribe(topic)).await,
            Some(Sink::Sharded(conn)) => bounded(self.op_timeout, conn.sunsubscribe(topic)).await,
            // The next connection will not subscribe it.
            None => Ok(()),
        };
        sent.map_err(Failure::into_read_error)
    }

    /// Delivers every message, and reconnects (or re-subscribes) whenever the connection ends.
    pub(crate) async fn run(self: Arc<Self>, incoming: Incoming) {
        match incoming {
            Incoming::Classic(stream) => self.run_classic(stream).await,
            Incoming::Sharded(pushes) => self.run_sharded(pushes).await,
        }
    }

    async fn run_classic(self: Arc<Self>, mut stream: PubSubStream) {
        let mut moves = match &self.source {
            Some(Source::Sentinel(follower)) => Some(follower.moves()),
            _ => None,
        };
        loop {
            loop {
                let moved = async {
                    match moves.as_mut() {
                        Some(moves) => moves.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => self.deliver(message.get_channel_name(), message.get_payload_bytes()),
                        None => break,
                    },
                    true = moved => {
                        tracing::warn!("redis master moved: moving the pub/sub connection");
                        break;
                    }
                }
            }
            tracing::warn!("redis pub/sub connection lost: reconnecting");
            self.up.store(false, Ordering::Relaxed);
            self.state.lock().await.sink = None;
            self.lost();
            stream = self.reconnect().await;
            // Anyone who subscribed between the loss and now may have missed publications.
            self.lost();
            tracing::info!("redis pub/sub connection restored");
        }
    }

    async fn run_sharded(self: Arc<Self>, mut pushes: UnboundedReceiver<PushInfo>) {
        while let Some(push) = pushes.recv().await {
            match push.kind {
                PushKind::Message | PushKind::SMessage => {
                    if let Some(message) = redis::Msg::from_push_info(push) {
                        self.deliver(message.get_channel_name(), message.get_payload_bytes());
                    }
                }
                PushKind::Disconnection => {
                    tracing::warn!("redis cluster connection lost: re-subscribing");
                    self.clone().resync();
                }
                PushKind::SUnsubscribe => {
                    // Ours unless the node still wants the channel: then its slot moved.
                    let topic = push
                        .data
                        .first()
                        .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
                    let held = match topic.as_deref().and_then(wire::topic_channel) {
                        Some(channel) => self.state.lock().await.channels.contains_key(channel),
                        None => false,
                    };
                    if held {
                        tracing::warn!(
                            topic,
                            "redis cluster dropped a subscription (slot moved): re-subscribing"
                        );
                        self.clone().resync();
                    }
                }
                _ => {}
            }
        }
    }

    /// Marks fan-out down, tells the hub its subscribers may have missed publications, and
    /// re-SSUBSCRIBEs every channel in the background until all are confirmed; then tells the
    /// hub once more, for anyone who subscribed meanwhile.
    fn resync(self: Arc<Self>) {
        self.up.store(false, Ordering::Relaxed);
        self.lost();
        if self.resyncing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            let mut delay = BACKOFF.0;
            loop {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF.1);
                match self.resubscribe_sharded().await {
                    Ok(()) => break,
                    Err(e) => tracing::debug!(error = %e, "redis cluster re-subscription failed"),
                }
            }
            self.resyncing.store(false, Ordering::Release);
            self.up.store(true, Ordering::Relaxed);
            self.lost();
            tracing::info!("redis cluster subscriptions restored");
        });
    }

    async fn resubscribe_sharded(&self) -> Result<(), Failure> {
        let (conn, topics) = {
            let state = self.state.lock().await;
            let Some(Sink::Sharded(conn)) = &state.sink else {
                return Ok(());
            };
            let topics: Vec<String> = state
                .channels
                .keys()
                .map(|c| wire::Keys::new(c).topic)
                .collect();
            (conn.clone(), topics)
        };
        let timeout = self.op_timeout;
        let mut control = conn.clone();
        bounded(timeout, control.subscribe(control_topics(&self.control))).await?;
        let mut sends: Vec<BoxFuture<'static, Result<(), Failure>>> = Vec::new();
        for topic in topics {
            let mut conn = conn.clone();
            sends.push(Box::pin(async move {
                bounded(timeout, conn.ssubscribe(topic)).await
            }));
        }
        futures_util::stream::iter(sends)
            .buffer_unordered(RESUBSCRIBE_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    fn lost(&self) {
        if let Some(events) = self.events.get() {
            events.lost();
        }
    }

    async fn reconnect(&self) -> PubSubStream {
        let mut delay = BACKOFF.0;
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(BACKOFF.1);
            match self.try_reconnect().await {
                Ok(stream) => return stream,
                Err(e) => tracing::debug!(error = %e, "redis pub/sub reconnection failed"),
            }
        }
    }

    async fn try_reconnect(&self) -> Result<PubSubStream, Failure> {
        let Some(source) = &self.source else {
            return Err(Failure::new(
                crate::error::FailureKind::Unusable,
                "no classic source",
            ));
        };
        let (mut sink, stream) = bounded(self.op_timeout, source.client().get_async_pubsub())
            .await?
            .split();
        let mut state = self.state.lock().await;
        let mut topics: Vec<String> = state
            .channels
            .keys()
            .map(|c| wire::Keys::new(c).topic)
            .collect();
        topics.extend(control_topics(&self.control));
        bounded(self.op_timeout, sink.subscribe(&topics)).await?;
        state.sink = Some(Sink::Classic(sink));
        self.up.store(true, Ordering::Relaxed);
        Ok(stream)
    }

    fn deliver(&self, name: &str, payload: &[u8]) {
        let Some(events) = self.events.get() else {
            return;
        };
        let Some(channel) = wire::topic_channel(name) else {
            self.control.deliver(name, payload, events);
            return;
        };
        match wire::parse(payload) {
            Some(Message::Publication(epoch, publication)) => {
                events.publication(channel, &epoch.into(), Arc::new(publication));
            }
            Some(Message::Join(info)) => events.join(channel, &info),
            Some(Message::Leave(info)) => events.leave(channel, &info),
            None => tracing::warn!(channel, "malformed redis pub/sub message dropped"),
        }
    }
}

/// The control bus's topics: to every node, and to this one.
fn control_topics(control: &Control) -> Vec<String> {
    vec![control::ALL.to_owned(), control.topic()]
}
