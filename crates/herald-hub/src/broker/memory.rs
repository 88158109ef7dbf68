//! The in-memory broker: one node, history in process memory, lost on restart (every
//! channel's epoch is new after a restart).

use super::{
    Broker, BrokerError, BrokerEvents, Health, History, HistoryQuery, Payload, Publication,
};
use futures_util::future::{BoxFuture, FutureExt};
use herald_hub_protocol::{ClientInfo, StreamPosition};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// History retention for each channel.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Publications kept per channel (0: no history, offsets still grow).
    pub size: usize,
    /// How long a publication is kept; a channel idle this long (nothing retained) is
    /// forgotten, and its next publication starts a new epoch.
    pub ttl: Duration,
}

struct Stream {
    epoch: Arc<str>,
    top: u64,
    entries: VecDeque<(Instant, Arc<Publication>)>,
    last_publish: Instant,
}

impl Stream {
    fn new(now: Instant) -> Self {
        Self {
            epoch: new_epoch(),
            top: 0,
            entries: VecDeque::new(),
            last_publish: now,
        }
    }

    fn trim(&mut self, retention: Retention, now: Instant) {
        while self.entries.len() > retention.size {
            self.entries.pop_front();
        }
        while let Some((at, _)) = self.entries.front() {
            if now.duration_since(*at) < retention.ttl {
                break;
            }
            self.entries.pop_front();
        }
    }

    fn expired(&self, retention: Retention, now: Instant) -> bool {
        self.entries.is_empty() && now.duration_since(self.last_publish) >= retention.ttl
    }

    fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.to_string(),
        }
    }
}

/// A random epoch: 8 hex digits, new for every stream this process creates.
fn new_epoch() -> Arc<str> {
    format!("{:08x}", rand::random::<u32>()).into()
}

/// The in-memory broker. Publish holds the channel's lock while it appends to history and
/// hands the publication to fan-out, which makes both atomic and ordered per channel.
pub struct MemoryBroker {
    retention: Retention,
    streams: RwLock<HashMap<String, Arc<Mutex<Stream>>>>,
    presence: Mutex<HashMap<String, HashMap<String, ClientInfo>>>,
    events: OnceLock<Arc<dyn BrokerEvents>>,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl MemoryBroker {
    /// A broker keeping `retention` per channel.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            streams: RwLock::new(HashMap::new()),
            presence: Mutex::new(HashMap::new()),
            events: OnceLock::new(),
        }
    }

    fn stream(&self, channel: &str) -> Arc<Mutex<Stream>> {
        if let Some(stream) = read(&self.streams).get(channel) {
            return stream.clone();
        }
        write(&self.streams)
            .entry(channel.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(Stream::new(Instant::now()))))
            .clone()
    }

    /// Forgets channels whose history is empty and idle past the TTL (their next publication
    /// starts a new epoch). The hub calls this periodically so memory follows live channels.
    pub fn sweep(&self) {
        let now = Instant::now();
        let retention = self.retention;
        write(&self.streams).retain(|_, stream| {
            let mut stream = lock(stream);
            stream.trim(retention, now);
            !stream.expired(retention, now)
        });
    }

    /// How many channels have a stream (for tests and metrics).
    pub fn stream_count(&self) -> usize {
        read(&self.streams).len()
    }

    fn publish_now(
        &self,
        channel: &str,
        payload: Payload,
        publisher: Option<ClientInfo>,
    ) -> StreamPosition {
        let now = Instant::now();
        let stream = self.stream(channel);
        let mut stream = lock(&stream);
        stream.trim(self.retention, now);
        if stream.expired(self.retention, now) {
            *stream = Stream::new(now);
        }
        stream.top += 1;
        stream.last_publish = now;
        let publication = Arc::new(Publication {
            offset: stream.top,
            payload,
            publisher,
        });
        if self.retention.size > 0 {
            stream.entries.push_back((now, publication.clone()));
            stream.trim(self.retention, now);
        }
        if let Some(events) = self.events.get() {
            // Still under the channel's lock: fan-out order is offset order.
            events.publication(channel, &stream.epoch, publication);
        }
        stream.position()
    }

    fn history_now(&self, channel: &str, query: &HistoryQuery) -> History {
        let now = Instant::now();
        let stream = self.stream(channel);
        let mut stream = lock(&stream);
        stream.trim(self.retention, now);
        if stream.expired(self.retention, now) && stream.top > 0 {
            *stream = Stream::new(now);
        }
        let publications = stream
            .entries
            .iter()
            .map(|(_, p)| p)
            .filter(|p| p.offset > query.after)
            .take(query.limit)
            .cloned()
            .collect();
        History {
            position: stream.position(),
            publications,
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
    ) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        let position = self.publish_now(channel, payload, publisher);
        async move { Ok(position) }.boxed()
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
        lock(&self.presence)
            .entry(channel.to_owned())
            .or_default()
            .insert(info.client.clone(), info.clone());
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
        let removed = {
            let mut presence = lock(&self.presence);
            let removed = presence
                .get_mut(channel)
                .and_then(|members| members.remove(&info.client))
                .is_some();
            if presence.get(channel).is_some_and(HashMap::is_empty) {
                presence.remove(channel);
            }
            removed
        };
        if removed && let Some(events) = self.events.get() {
            events.leave(channel, &info);
        }
        async { Ok(()) }.boxed()
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        let mut members: Vec<ClientInfo> = lock(&self.presence)
            .get(channel)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        members.sort_by(|a, b| a.client.cmp(&b.client));
        async move { Ok(members) }.boxed()
    }

    fn health(&self) -> Health {
        Health::Ok
    }

    fn maintain(&self) {
        self.sweep();
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
