//! The in-memory broker: one node, history in process memory, lost on restart (every
//! channel's epoch is new after a restart).

mod outbox;
mod presence;
mod stream;
#[cfg(test)]
mod tests;
mod users;

use super::{
    Appended, Broker, BrokerError, BrokerEvents, Health, History, HistoryQuery, Lead, OutboxEntry,
    OutboxPolicy, Payload, Publication, Retained, Retention, Tracked,
};
use crate::config::HistoryConfig;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt};
use herald_hub_protocol::{ClientInfo, StreamPosition};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use stream::{Budget, Stream, new_epoch};

/// How many groups of channels share a vacant epoch: creating a stream replaces its group's
/// only, so it invalidates the positions of few quiet channels, not of every one.
const VACANT_GROUPS: usize = 1024;

/// The channels with a stream, and the epochs of those without.
struct Streams {
    map: HashMap<Arc<str>, Arc<Mutex<Stream>>>,
    /// What a channel without a stream reports, one per group of channels
    /// ([`vacant_group`]); a group's is replaced, under the same write lock, whenever a
    /// stream of the group is inserted, so a read sees the map and the vacant epoch that go
    /// together.
    vacant: Vec<Arc<str>>,
}

/// The group of `channel`'s vacant epoch: a hash of its name (fixed for the process).
fn vacant_group(channel: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(channel);
    // The remainder is below VACANT_GROUPS, so it fits.
    usize::try_from(hash % VACANT_GROUPS as u64).unwrap_or(0)
}

/// The in-memory broker. Publish holds the channel's lock while it appends to history and
/// hands the publication to fan-out, which makes both atomic and ordered per channel.
///
/// # Bounds
/// What each channel keeps (publications, their lifetime) comes with its publications as a
/// [`Retention`]; a stream keeps the retention of its last publish, and the sweep and reads
/// trim by it. Memory is bounded node-wide by two settings of [`HistoryConfig`]:
/// - `max_channels`: channels with a stream. A publish to a channel without one, past the
///   bound, fails with [`BrokerError::Limit`] (`history.max_channels`); reads never create a
///   stream, so only publishers count. Streams come back under the bound when they expire
///   (nothing retained, idle for `ttl`) and the periodic [`sweep`](Self::sweep) forgets them.
/// - `max_bytes`: payload bytes retained over all channels. A publish that does not fit
///   first drops the oldest publications *of its own channel* (the channel that grows pays,
///   not its neighbours); when even its whole history would not make room, it fails with
///   [`BrokerError::Limit`] (`history.max_bytes`) and keeps that history. With a
///   retention of size 0 nothing is retained and no bytes are counted.
///
/// The first refusal after each sweep is logged; the hub counts every one (`limit_hits`).
pub struct MemoryBroker {
    history: HistoryConfig,
    streams: RwLock<Streams>,
    budget: Budget,
    presence: Mutex<presence::Presence>,
    events: OnceLock<Arc<dyn BrokerEvents>>,
    /// Whether a refusal was logged since the last sweep.
    refusal_logged: AtomicBool,
    /// Each user's connections (`limits.max_connections_per_user`).
    connections: users::Connections,
    /// The webhook outbox.
    outbox: outbox::Outbox,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("history", &self.history)
            .finish_non_exhaustive()
    }
}

impl MemoryBroker {
    /// A broker within `history`'s node-wide bounds (`max_channels`, `max_bytes`); what each
    /// channel keeps comes with its publications.
    pub fn new(history: &HistoryConfig) -> Self {
        Self {
            history: *history,
            streams: RwLock::new(Streams {
                map: HashMap::new(),
                vacant: (0..VACANT_GROUPS).map(|_| new_epoch()).collect(),
            }),
            budget: Budget::new(history.max_bytes),
            presence: Mutex::default(),
            events: OnceLock::new(),
            refusal_logged: AtomicBool::new(false),
            connections: users::Connections::default(),
            outbox: outbox::Outbox::default(),
        }
    }

    /// How many channels have a stream.
    pub fn stream_count(&self) -> usize {
        read(&self.streams).map.len()
    }

    /// Payload bytes retained over all channels.
    pub fn retained_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Forgets streams with nothing retained and idle past the TTL (their next publication
    /// starts a new epoch), and drops expired publications. The hub calls this periodically
    /// so memory follows live channels.
    ///
    /// It never holds the map's write lock across entries: it collects the streams under the
    /// read lock, trims each under its own lock, and removes each expired one under a short
    /// write lock, checking again that it is still the same, still expired stream.
    pub fn sweep(&self) {
        let now = Instant::now();
        let candidates: Vec<(Arc<str>, Arc<Mutex<Stream>>)> = read(&self.streams)
            .map
            .iter()
            .map(|(name, stream)| (name.clone(), stream.clone()))
            .collect();
        for (name, stream) in candidates {
            let expired = {
                let mut stream = lock(&stream);
                stream.trim(now, &self.budget);
                stream.expired(now)
            };
            if expired {
                self.remove_if_expired(&name, &stream, now);
            }
        }
        self.refusal_logged.store(false, Ordering::Relaxed);
    }

    fn remove_if_expired(&self, name: &str, candidate: &Arc<Mutex<Stream>>, now: Instant) {
        let mut streams = write(&self.streams);
        if !streams
            .map
            .get(name)
            .is_some_and(|current| Arc::ptr_eq(current, candidate))
        {
            return;
        }
        let mut stream = lock(candidate);
        // A publish may have come in since the check. Expired means nothing retained: no
        // bytes to give back.
        if !stream.expired(now) {
            return;
        }
        stream.removed = true;
        drop(stream);
        streams.map.remove(name);
    }

    /// The channel's stream, created if missing and the bounds allow a first publication of
    /// `size` bytes (a refused publish leaves no stream behind).
    fn stream_for_publish(
        &self,
        channel: &str,
        size: usize,
        retention: Retention,
    ) -> Result<Arc<Mutex<Stream>>, BrokerError> {
        if let Some(stream) = read(&self.streams).map.get(channel) {
            return Ok(stream.clone());
        }
        let mut streams = write(&self.streams);
        if let Some(stream) = streams.map.get(channel) {
            return Ok(stream.clone());
        }
        let max = self.history.max_channels;
        if max > 0 && streams.map.len() >= max {
            return Err(self.refuse("history.max_channels"));
        }
        if retention.size > 0 && !self.budget.could_fit(size, 0) {
            return Err(self.refuse("history.max_bytes"));
        }
        let group = vacant_group(channel);
        let replaced = std::mem::replace(&mut streams.vacant[group], new_epoch());
        let mut created = Stream::new(Instant::now(), retention);
        created.vacant_before = Some(replaced);
        let stream = Arc::new(Mutex::new(created));
        streams.map.insert(channel.into(), stream.clone());
        Ok(stream)
    }

    fn refuse(&self, limit: &str) -> BrokerError {
        if !self.refusal_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit,
                "memory broker refuses publications: a history bound is reached"
            );
        }
        BrokerError::Limit(limit.to_owned())
    }

    fn publish_now(
        &self,
        channel: &str,
        payload: Payload,
        publisher: Option<ClientInfo>,
        retention: Retention,
    ) -> Result<StreamPosition, BrokerError> {
        loop {
            let stream = self.stream_for_publish(channel, payload.len(), retention)?;
            let mut stream = lock(&stream);
            if stream.removed {
                continue;
            }
            stream.retention = retention;
            return self.append(channel, &mut stream, payload, publisher);
        }
    }

    /// Publishes into `stream`, under its lock.
    fn append(
        &self,
        channel: &str,
        stream: &mut Stream,
        payload: Payload,
        publisher: Option<ClientInfo>,
    ) -> Result<StreamPosition, BrokerError> {
        let now = Instant::now();
        stream.trim(now, &self.budget);
        if stream.expired(now) {
            stream.restart(&self.budget, now);
        }
        let retain = stream.retention.size > 0;
        if retain && !self.make_room(stream, payload.len()) {
            return Err(self.refuse("history.max_bytes"));
        }
        let publication = Arc::new(Publication {
            offset: stream.published(now),
            payload,
            publisher,
        });
        if retain {
            stream.push(publication.clone(), now);
            stream.trim(now, &self.budget);
        }
        if let Some(events) = self.events.get() {
            // Still under the channel's lock: fan-out order is offset order.
            events.publication(channel, &stream.epoch, publication);
        }
        Ok(stream.position())
    }

    /// Takes `size` bytes from the budget, dropping the stream's oldest publications as
    /// needed; false when even its whole history would not make room (checked first, so
    /// then nothing is dropped, unless other channels take the freed bytes meanwhile).
    fn make_room(&self, stream: &mut Stream, size: usize) -> bool {
        if !self.budget.could_fit(size, stream.bytes()) {
            return false;
        }
        loop {
            if self.budget.try_take(size) {
                return true;
            }
            // Another channel took the bytes freed so far: the stream runs out first.
            if !stream.pop_oldest(&self.budget) {
                return false;
            }
        }
    }

    fn history_now(&self, channel: &str, query: &HistoryQuery) -> History {
        loop {
            let (vacant, stream) = {
                let streams = read(&self.streams);
                let vacant = &streams.vacant[vacant_group(channel)];
                (vacant.clone(), streams.map.get(channel).cloned())
            };
            let Some(stream) = stream else {
                return History {
                    position: StreamPosition {
                        offset: 0,
                        epoch: vacant.to_string(),
                    },
                    publications: Vec::new(),
                    vacant_before: None,
                };
            };
            let mut stream = lock(&stream);
            if stream.removed {
                continue;
            }
            stream.trim(Instant::now(), &self.budget);
            let publications = if query.reverse {
                stream.newest_after(query.after, query.limit)
            } else {
                stream.after(query.after, query.limit)
            };
            return History {
                position: stream.position(),
                publications,
                vacant_before: stream.vacant_before.as_deref().map(str::to_owned),
            };
        }
    }
}

impl Broker for MemoryBroker {
    fn start(&self, events: Arc<dyn BrokerEvents>) {
        let _ = self.events.set(events);
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        payload: Payload,
        publisher: Option<ClientInfo>,
        retention: Retention,
    ) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        let position = self.publish_now(channel, payload, publisher, retention);
        async move { position }.boxed()
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        let history = self.history_now(channel, &query);
        async move { Ok(history) }.boxed()
    }

    fn subscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        // One node: every publication already reaches the node's events.
        async { Ok(()) }.boxed()
    }

    fn unsubscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        async { Ok(()) }.boxed()
    }

    fn presence_add<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        lock(&self.presence).add(channel, info.clone());
        if let Some(events) = self.events.get() {
            events.join(channel, &info);
        }
        async { Ok(()) }.boxed()
    }

    fn presence_remove<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        let removed = lock(&self.presence).remove(channel, &info.client);
        if removed && let Some(events) = self.events.get() {
            events.leave(channel, &info);
        }
        async { Ok(()) }.boxed()
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        let members = lock(&self.presence).members(channel);
        async move { Ok(members) }.boxed()
    }

    fn control<'a>(&'a self, message: Bytes) -> BoxFuture<'a, Result<(), BrokerError>> {
        let sent = self.control_now(&message);
        async move { sent }.boxed()
    }

    fn survey<'a>(
        &'a self,
        question: Bytes,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<Bytes>, BrokerError>> {
        // One node, which answers at once.
        let answers = self.survey_now(&question);
        async move { answers }.boxed()
    }

    fn connection_add<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        let added = self.connections.add(user, client, limit);
        async move { Ok(added) }.boxed()
    }

    fn connection_remove<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.connections.remove(user, client);
        async { Ok(()) }.boxed()
    }

    fn track<'a>(
        &'a self,
        node: &'a str,
        thing: &'a Tracked,
        held: bool,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        let appended = self.outbox.track(node, thing, held, policy);
        async move { Ok(appended) }.boxed()
    }

    fn outbox_push<'a>(
        &'a self,
        event: Bytes,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        let appended = self.outbox.push(event, policy);
        async move { Ok(appended) }.boxed()
    }

    fn outbox_lead<'a>(
        &'a self,
        node: &'a str,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Lead, BrokerError>> {
        let lead = self.outbox.lead(node, policy);
        async move { Ok(lead) }.boxed()
    }

    fn outbox_read<'a>(
        &'a self,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxEntry>, BrokerError>> {
        let events = self.outbox.read(max);
        async move { Ok(events) }.boxed()
    }

    fn outbox_ack<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.outbox.ack(ids);
        async { Ok(()) }.boxed()
    }

    fn health(&self) -> Health {
        Health::Ok
    }

    fn maintain(&self) {
        self.sweep();
    }

    fn retained(&self) -> Option<Retained> {
        Some(Retained {
            channels: self.stream_count(),
            bytes: self.retained_bytes(),
        })
    }
}

// A poisoned lock means a panic elsewhere already; the data (a history) stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
