//! A Redis broker that does not need Redis at start: [`connect_or_wait`] connects at once
//! when it can; when Redis cannot be reached it returns a broker that answers every
//! operation as unavailable (reply 109, HTTP 503, health degraded) and keeps connecting in
//! the background, then hands every operation to the connected [`RedisBroker`].

use crate::broker::RedisBroker;
use crate::options::RedisOptions;
use futures_util::future::{AbortHandle, BoxFuture, FutureExt, abortable};
use herald_hub::broker::{
    Appended, Broker, BrokerError, BrokerEvents, Health, History, HistoryQuery, Lead, OutboxEntry,
    OutboxPolicy, Payload, Retention, Tracked,
};
use herald_hub::config::HistoryConfig;
use herald_hub_protocol::{ClientInfo, StreamPosition};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Connects to Redis at `url`; when Redis cannot be reached now, a broker that keeps trying
/// (every `options.max_reconnect_delay` at most) and is unavailable until it gets through.
/// Must run inside a tokio runtime.
///
/// # Errors
/// [`BrokerError::Internal`] for an unusable URL: that does not get better by waiting.
pub async fn connect_or_wait(
    url: &str,
    history: HistoryConfig,
    options: RedisOptions,
) -> Result<Arc<dyn Broker>, BrokerError> {
    match RedisBroker::connect_with(url, history, options).await {
        Ok(broker) => Ok(Arc::new(broker)),
        Err(BrokerError::Unavailable(e)) => {
            tracing::warn!(error = %e, "redis unreachable: serving degraded until it answers");
            Ok(Pending::start(url.to_owned(), history, options))
        }
        Err(e) => Err(e),
    }
}

/// The broker until Redis answers, and after.
struct Pending {
    ready: OnceLock<RedisBroker>,
    /// The node's events, held until the broker exists.
    events: Mutex<Option<Arc<dyn BrokerEvents>>>,
    connecting: OnceLock<AbortHandle>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(task) = self.connecting.get() {
            task.abort();
        }
    }
}

impl Pending {
    fn start(url: String, history: HistoryConfig, options: RedisOptions) -> Arc<Self> {
        let pending = Arc::new(Self {
            ready: OnceLock::new(),
            events: Mutex::new(None),
            connecting: OnceLock::new(),
        });
        let weak = Arc::downgrade(&pending);
        let (task, handle) = abortable(async move {
            let mut wait = Duration::from_millis(100);
            loop {
                tokio::time::sleep(wait).await;
                match RedisBroker::connect_with(&url, history, options).await {
                    Ok(broker) => {
                        if let Some(pending) = weak.upgrade() {
                            pending.connected(broker);
                        }
                        return;
                    }
                    Err(e) => tracing::debug!(error = %e, "redis still unreachable"),
                }
                wait = (wait * 2).min(options.max_reconnect_delay);
            }
        });
        tokio::spawn(task);
        let _ = pending.connecting.set(handle);
        pending
    }

    fn connected(&self, broker: RedisBroker) {
        let events = lock(&self.events);
        if let Some(events) = events.as_ref() {
            broker.start(events.clone());
            // Fan-out missed everything until now: every live subscriber recovers.
            events.lost();
        }
        let _ = self.ready.set(broker);
        tracing::info!("redis reached: the broker is up");
    }

    fn get(&self) -> Result<&RedisBroker, BrokerError> {
        self.ready
            .get()
            .ok_or_else(|| BrokerError::Unavailable("redis not reached yet".into()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands `$call` to the connected broker, or fails as unavailable.
macro_rules! forward {
    ($self:ident, $broker:ident => $call:expr) => {
        match $self.get() {
            Ok($broker) => $call,
            Err(e) => async move { Err(e) }.boxed(),
        }
    };
}

impl Broker for Pending {
    fn start(&self, events: Arc<dyn BrokerEvents>) {
        let mut held = lock(&self.events);
        if let Some(broker) = self.ready.get() {
            broker.start(events.clone());
        }
        *held = Some(events);
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        payload: Payload,
        publisher: Option<ClientInfo>,
        retention: Retention,
    ) -> BoxFuture<'a, Result<StreamPosition, BrokerError>> {
        forward!(self, b => b.publish(channel, payload, publisher, retention))
    }

    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        forward!(self, b => b.history(channel, query))
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.subscribe(channel))
    }

    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.unsubscribe(channel))
    }

    fn presence_add<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.presence_add(channel, info))
    }

    fn presence_remove<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.presence_remove(channel, info))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>> {
        forward!(self, b => b.presence(channel))
    }

    fn control<'a>(&'a self, message: bytes::Bytes) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.control(message))
    }

    fn survey<'a>(
        &'a self,
        question: bytes::Bytes,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<bytes::Bytes>, BrokerError>> {
        forward!(self, b => b.survey(question, timeout))
    }

    fn connection_add<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        forward!(self, b => b.connection_add(user, client, limit))
    }

    fn connection_remove<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.connection_remove(user, client))
    }

    fn track<'a>(
        &'a self,
        node: &'a str,
        thing: &'a Tracked,
        held: bool,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        forward!(self, b => b.track(node, thing, held, policy))
    }

    fn outbox_push<'a>(
        &'a self,
        event: bytes::Bytes,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        forward!(self, b => b.outbox_push(event, policy))
    }

    fn outbox_lead<'a>(
        &'a self,
        node: &'a str,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Lead, BrokerError>> {
        forward!(self, b => b.outbox_lead(node, policy))
    }

    fn outbox_read<'a>(
        &'a self,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxEntry>, BrokerError>> {
        forward!(self, b => b.outbox_read(max))
    }

    fn outbox_ack<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<(), BrokerError>> {
        forward!(self, b => b.outbox_ack(ids))
    }

    fn health(&self) -> Health {
        self.ready.get().map_or(Health::Degraded, Broker::health)
    }

    fn maintain(&self) {
        if let Some(broker) = self.ready.get() {
            broker.maintain();
        }
    }
}
