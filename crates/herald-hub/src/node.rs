//! This node's local subscribers per channel, and fan-out to them.

use crate::broadcast::{Broadcast, Delivery, PresenceEvent};
use crate::broker::{Broker, BrokerError, BrokerEvents, Publication};
use crate::direct::{Direct, Outcome};
use crate::fanout;
use crate::limits::{Rate, RateLimiter};
use crate::metrics::Metrics;
use crate::session::subscriptions::Subscriptions;
use futures_util::task::AtomicWaker;
use herald_hub_protocol::{ClientInfo, Disconnect};
use herald_proto::DeflateConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use tokio::sync::OnceCell;

/// How the node reaches one connection.
#[derive(Clone, Debug)]
pub(crate) struct Subscriber {
    /// The connection's outgoing queue and kill signal.
    pub(crate) signal: Arc<Signal>,
    /// Whether it wants join/leave pushes.
    pub(crate) presence_events: bool,
}

/// What reaches a connection's task from outside it: its deliveries, and a request to close.
///
/// The deliveries are a bounded queue behind a lock rather than a channel: a tokio channel
/// allocates a 32-slot block and a cache-padded shared state (about 1.3 KiB) when it is made,
/// on every connection, idle or not; this queue allocates on its first delivery and grows
/// with the largest backlog it had, never past `capacity`.
#[derive(Debug)]
pub(crate) struct Signal {
    reason: Mutex<Option<Disconnect>>,
    deliveries: Mutex<Deliveries>,
    /// The connection's task, woken by a kill and by a delivery into an empty queue.
    ready: AtomicWaker,
    capacity: usize,
}

/// What ended a [`Signal::wait`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The connection is to close with this reason.
    Killed(Disconnect),
    /// Deliveries were moved into the batch.
    Deliveries,
}

#[derive(Debug, Default)]
struct Deliveries {
    queue: std::collections::VecDeque<Delivery>,
    /// The connection's task stopped reading: deliveries are dropped, not counted.
    closed: bool,
    /// The socket's write side, when fan-out may write to it (`crate::direct`).
    direct: Option<Box<Direct>>,
}

/// Why a delivery was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `capacity` deliveries are waiting already: a slow consumer.
    Full,
    /// The connection is ending.
    Closed,
}

impl Signal {
    /// A connection's signal whose queue holds at most `capacity` deliveries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            reason: Mutex::new(None),
            deliveries: Mutex::new(Deliveries::default()),
            ready: AtomicWaker::new(),
            capacity,
        }
    }

    /// Asks for a close with `reason`; the first reason wins. Returns whether this call
    /// was the first.
    pub(crate) fn kill(&self, reason: Disconnect) -> bool {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(reason);
        drop(slot);
        self.ready.wake();
        true
    }

    fn reason(&self) -> Option<Disconnect> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a kill and returns its reason.
    pub(crate) fn killed(&self) -> impl Future<Output = Disconnect> + Send + '_ {
        std::future::poll_fn(|cx| {
            // Registered before the check: a kill after it wakes this task.
            self.ready.register(cx.waker());
            match self.reason() {
                Some(reason) => Poll::Ready(reason),
                None => Poll::Pending,
            }
        })
    }

    /// Waits for a kill or, with `deliveries`, for deliveries, moving up to `max` of them into
    /// `batch`. A kill goes first. Cancel-safe: a delivery is either in `batch` or still
    /// queued.
    ///
    /// The connection's one task is the only one that waits, so kills and deliveries wake it
    /// through one `AtomicWaker`, and the waiting future holds its arguments alone: a tokio
    /// `Notify` waiter is some 90 bytes, which the task would keep room for all its life.
    pub(crate) fn wait<'a>(
        &'a self,
        batch: &'a mut Vec<Delivery>,
        max: usize,
        deliveries: bool,
    ) -> impl Future<Output = Wake> + Send + 'a {
        std::future::poll_fn(move |cx| {
            // Registered before the checks: a kill or a first delivery after them wakes it.
            self.ready.register(cx.waker());
            if let Some(reason) = self.reason() {
                return Poll::Ready(Wake::Killed(reason));
            }
            if deliveries && self.take(batch, max) > 0 {
                return Poll::Ready(Wake::Deliveries);
            }
            Poll::Pending
        })
    }

    /// Queues a delivery for the connection's task, never waiting, or writes it to the
    /// connection's socket when the task lent fan-out its socket; returns whether it did
    /// the latter (the `crate::direct` path).
    ///
    /// # Errors
    /// [`Refused`]: the queue is full, or the connection is ending.
    pub(crate) fn push(&self, delivery: &Delivery, direct: bool) -> Result<bool, Refused> {
        let mut d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        if d.closed {
            return Err(Refused::Closed);
        }
        if direct
            && d.queue.is_empty()
            && let Some(direct) = d.direct.as_deref_mut()
        {
            match direct.try_deliver(delivery) {
                Outcome::Done => return Ok(true),
                Outcome::Remainder => {
                    drop(d);
                    // The task writes the rest of the frame before anything else.
                    self.ready.wake();
                    return Ok(true);
                }
                Outcome::Queue => {}
            }
        }
        if d.queue.len() >= self.capacity {
            return Err(Refused::Full);
        }
        let was_empty = d.queue.is_empty();
        d.queue.push_back(delivery.clone());
        drop(d);
        // One wakeup per batch: a task that has not drained the queue yet takes from it again
        // before it next waits (`wait` checks the queue before it returns `Pending`).
        if was_empty {
            self.ready.wake();
        }
        Ok(false)
    }

    /// Moves up to `max` queued deliveries into `batch` without waiting; returns how many.
    pub(crate) fn take(&self, batch: &mut Vec<Delivery>, max: usize) -> usize {
        let mut d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        let n = d.queue.len().min(max);
        batch.extend(d.queue.drain(..n));
        n
    }

    /// The connection's task stops reading: what is queued is freed, later pushes refused.
    pub(crate) fn close_queue(&self) {
        let mut d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        d.closed = true;
        d.queue = std::collections::VecDeque::new();
    }

    /// Shares the connection's socket with fan-out.
    pub(crate) fn attach(&self, direct: Box<Direct>) {
        self.deliveries().direct = Some(direct);
    }

    /// The socket is going away: fan-out stops writing to it.
    pub(crate) fn detach(&self) {
        let direct = self.deliveries().direct.take();
        drop(direct);
    }

    /// Runs `f` on the shared socket, if there is one, under the queue's lock.
    pub(crate) fn with_direct<R>(&self, f: impl FnOnce(&mut Direct) -> R) -> Option<R> {
        self.deliveries().direct.as_deref_mut().map(f)
    }

    /// The task is about to wait with nothing of its own to deliver: lends fan-out its
    /// subscriptions (with a shared socket; otherwise does nothing). `flushed`: the task
    /// holds no byte not written yet.
    pub(crate) fn lend(&self, subscriptions: &mut Subscriptions, flushed: bool) {
        if let Some(direct) = self.deliveries().direct.as_deref_mut() {
            direct.lend(subscriptions, flushed);
        }
    }

    /// The task woke: it takes its subscriptions back.
    pub(crate) fn reclaim(&self, subscriptions: &mut Subscriptions) {
        if let Some(direct) = self.deliveries().direct.as_deref_mut() {
            direct.reclaim(subscriptions);
        }
    }

    fn deliveries(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Channel {
    subscribers: HashMap<u64, Subscriber>,
    /// How many subscribers want join/leave pushes: with none, presence events cost nothing.
    presence_subscribers: usize,
    /// Join/leave pushes allowed per second (`presence.join_leave_rate`): subscribe churn
    /// cannot flood the channel's subscribers.
    presence_budget: Mutex<RateLimiter>,
    /// Set once the broker delivers this channel to the node.
    ready: Arc<OnceCell<()>>,
    /// Whether its next fan-out may write into sockets (`crate::fanout`).
    pace: Mutex<fanout::Pace>,
}

impl Channel {
    fn new(join_leave_rate: u32) -> Self {
        Self {
            subscribers: HashMap::new(),
            presence_subscribers: 0,
            presence_budget: Mutex::new(RateLimiter::new(join_leave_rate, join_leave_rate)),
            ready: Arc::default(),
            pace: Mutex::default(),
        }
    }
}

/// Local subscribers, by channel.
pub(crate) struct Node {
    channels: RwLock<HashMap<Arc<str>, Channel>>,
    metrics: Arc<Metrics>,
    deflate: Option<Arc<DeflateConfig>>,
    join_leave_rate: u32,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").finish_non_exhaustive()
    }
}

impl Node {
    /// A node with no subscribers; broadcasts are compressed once with `deflate`; each
    /// channel passes at most `join_leave_rate` join/leave pushes per second (0: no limit).
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        deflate: Option<Arc<DeflateConfig>>,
        join_leave_rate: u32,
    ) -> Self {
        Self {
            channels: RwLock::new(HashMap::new()),
            metrics,
            deflate,
            join_leave_rate,
        }
    }

    /// Registers connection `id` on `channel`, and makes sure the broker delivers the
    /// channel to this node before returning (so history read afterwards meets live
    /// delivery without a gap). Returns the node's name for the channel.
    ///
    /// # Errors
    /// When the broker cannot subscribe; the registration is undone.
    pub(crate) async fn add(
        &self,
        broker: &dyn Broker,
        channel: &str,
        id: u64,
        subscriber: Subscriber,
    ) -> Result<Arc<str>, BrokerError> {
        let (name, ready) = {
            let mut channels = write(&self.channels);
            let name: Arc<str> = channels
                .get_key_value(channel)
                .map_or_else(|| channel.into(), |(k, _)| k.clone());
            let rate = self.join_leave_rate;
            let entry = channels
                .entry(name.clone())
                .or_insert_with(|| Channel::new(rate));
            entry.presence_subscribers += usize::from(subscriber.presence_events);
            if let Some(old) = entry.subscribers.insert(id, subscriber) {
                entry.presence_subscribers -= usize::from(old.presence_events);
            }
            (name, entry.ready.clone())
        };
        self.metrics.subscriptions.inc();
        if let Err(e) = ready.get_or_try_init(|| broker.subscribe(&name)).await {
            self.remove(broker, &name, id).await;
            return Err(e);
        }
        Ok(name)
    }

    /// Unregisters connection `id` from `channel`; the last one out unsubscribes the node
    /// (if the node's broker subscription was made). Returns whether `id` was registered.
    pub(crate) async fn remove(&self, broker: &dyn Broker, channel: &str, id: u64) -> bool {
        // Unsubscribe the node only if the broker subscription was made: after a failed
        // subscribe there is nothing to undo, and undoing it anyway could cut a newer one.
        let unsubscribe = {
            let mut channels = write(&self.channels);
            let Some(entry) = channels.get_mut(channel) else {
                return false;
            };
            let Some(old) = entry.subscribers.remove(&id) else {
                return false;
            };
            entry.presence_subscribers -= usize::from(old.presence_events);
            let last = entry.subscribers.is_empty();
            let subscribed = entry.ready.initialized();
            if last {
                channels.remove(channel);
            }
            last && subscribed
        };
        self.metrics.subscriptions.dec();
        if unsubscribe && let Err(e) = broker.unsubscribe(channel).await {
            tracing::warn!(channel, error = %e, "broker unsubscribe failed");
        }
        true
    }

    /// The channels with local subscribers that `matches` accepts, with how many, at most
    /// `max` of them (sorted by name); and whether more matched.
    pub(crate) fn counts(
        &self,
        matches: impl Fn(&str) -> bool,
        max: usize,
    ) -> (Vec<(String, u64)>, bool) {
        let channels = read(&self.channels);
        let mut listed: Vec<(String, u64)> = channels
            .iter()
            .filter(|(name, _)| matches(name))
            .take(max.saturating_add(1))
            .map(|(name, entry)| (name.to_string(), entry.subscribers.len() as u64))
            .collect();
        let truncated = listed.len() > max;
        listed.truncate(max);
        listed.sort_unstable();
        (listed, truncated)
    }

    /// Queues a delivery, made once from the channel's name, to every subscriber of
    /// `channel`; returns how many got it.
    fn fan_out(
        &self,
        channel: &str,
        make: impl FnOnce(&Arc<str>) -> Delivery,
        presence_only: bool,
    ) -> u64 {
        let channels = read(&self.channels);
        let Some((name, entry)) = channels.get_key_value(channel) else {
            return 0;
        };
        if presence_only && entry.presence_subscribers == 0 {
            return 0;
        }
        if presence_only {
            let mut budget = entry
                .presence_budget
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if budget.check(std::time::Instant::now()) != Rate::Allowed {
                self.metrics.limit_hit("join_leave_rate");
                return 0;
            }
        }
        let delivery = make(name);
        let subscribers = entry.subscribers.len();
        let shards = fanout::shards(subscribers, fanout::workers);
        let start = std::time::Instant::now();
        let direct = lock(&entry.pace).allows_direct(start, subscribers);
        let pushed = fanout::push_all(
            &entry.subscribers,
            &delivery,
            presence_only,
            direct,
            shards,
            &self.metrics,
        );
        let end = std::time::Instant::now();
        lock(&entry.pace).finished(start, end, subscribers, direct);
        self.metrics.messages_out.inc_by(pushed.delivered);
        if pushed.direct > 0 {
            self.metrics.direct_deliveries.inc_by(pushed.direct);
        }
        pushed.delivered
    }
}

impl BrokerEvents for Node {
    fn publication(&self, channel: &str, epoch: &Arc<str>, publication: Arc<Publication>) {
        let size = publication.payload.len() as u64;
        let make = |name: &Arc<str>| {
            Delivery::Publication(Arc::new(Broadcast::new(
                name.clone(),
                epoch.clone(),
                publication,
                self.deflate.clone(),
            )))
        };
        let recipients = self.fan_out(channel, make, false);
        self.metrics.bytes_out.inc_by(recipients * size);
    }

    fn join(&self, channel: &str, info: &ClientInfo) {
        let make = |name: &Arc<str>| {
            Delivery::Presence(Arc::new(PresenceEvent::new(name.clone(), info, true)))
        };
        self.fan_out(channel, make, true);
    }

    fn leave(&self, channel: &str, info: &ClientInfo) {
        let make = |name: &Arc<str>| {
            Delivery::Presence(Arc::new(PresenceEvent::new(name.clone(), info, false)))
        };
        self.fan_out(channel, make, true);
    }

    fn lost(&self) {
        for entry in read(&self.channels).values() {
            for subscriber in entry.subscribers.values() {
                let _ = subscriber.signal.kill(Disconnect::INSUFFICIENT_STATE);
            }
        }
    }
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn delivery() -> Delivery {
        let info = ClientInfo {
            client: "c".into(),
            user: "u".into(),
        };
        Delivery::Presence(Arc::new(PresenceEvent::new("room".into(), &info, true)))
    }

    #[tokio::test]
    async fn a_kill_wakes_a_waiting_task_and_goes_before_its_deliveries() {
        let signal = Arc::new(Signal::new(8));
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move { signal.wait(&mut Vec::new(), 64, true).await })
        };
        tokio::task::yield_now().await;
        assert!(signal.kill(Disconnect::SLOW));
        assert_eq!(waiter.await.unwrap(), Wake::Killed(Disconnect::SLOW));
        signal.push(&delivery(), false).unwrap();
        let mut batch = Vec::new();
        let wake = signal.wait(&mut batch, 64, true).await;
        assert_eq!(wake, Wake::Killed(Disconnect::SLOW));
        assert!(batch.is_empty(), "deliveries taken past a kill");
        assert!(!signal.kill(Disconnect::SHUTDOWN), "a second kill won");
    }

    #[tokio::test]
    async fn deliveries_end_a_wait_only_when_there_is_room_for_them() {
        let signal = Signal::new(8);
        signal.push(&delivery(), false).unwrap();
        signal.push(&delivery(), false).unwrap();
        let mut batch = Vec::new();
        let no_room = tokio::time::timeout(
            Duration::from_millis(50),
            signal.wait(&mut batch, 64, false),
        );
        assert!(no_room.await.is_err(), "a wait without room ended");
        assert!(batch.is_empty());
        assert_eq!(signal.wait(&mut batch, 1, true).await, Wake::Deliveries);
        assert_eq!(batch.len(), 1, "more than `max` taken");
        assert_eq!(signal.wait(&mut batch, 64, true).await, Wake::Deliveries);
        assert_eq!(batch.len(), 2);
    }
}
