//! Fan-out: one pub/sub connection per node, its subscriptions, and reconnection.

use crate::control::{self, Control};
use crate::error::{Failure, bounded};
use crate::wire::{self, Message, TOPIC_PREFIX};
use futures_util::StreamExt;
use herald_hub::broker::{BrokerError, BrokerEvents};
use redis::aio::{PubSubSink, PubSubStream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Backoff between reconnection attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

struct State {
    /// Where SUBSCRIBE goes; `None` while the connection is down.
    sink: Option<PubSubSink>,
    /// Every channel the node asked for, with how many `subscribe`s it got beyond the
    /// `unsubscribe`s; re-subscribed after a reconnection. The hub pairs the calls, but a
    /// late `unsubscribe` may arrive after the next `subscribe`: counting keeps the channel.
    channels: HashMap<String, usize>,
}

/// The node's pub/sub side.
pub(crate) struct Fanout {
    client: redis::Client,
    state: tokio::sync::Mutex<State>,
    events: OnceLock<Arc<dyn BrokerEvents>>,
    up: AtomicBool,
    /// How long one SUBSCRIBE, UNSUBSCRIBE or connection attempt may take.
    op_timeout: Duration,
    /// The control bus, whose two topics every connection subscribes first.
    control: Arc<Control>,
}

impl Fanout {
    /// Connects the pub/sub connection; the returned stream goes to [`Fanout::run`].
    pub(crate) async fn connect(
        client: redis::Client,
        op_timeout: Duration,
        control: Arc<Control>,
    ) -> Result<(Arc<Self>, PubSubStream), BrokerError> {
        let (mut sink, stream) = bounded(op_timeout, client.get_async_pubsub())
            .await
            .map_err(Failure::into_read_error)?
            .split();
        bounded(op_timeout, sink.subscribe(control_topics(&control)))
            .await
            .map_err(Failure::into_read_error)?;
        let fanout = Arc::new(Self {
            client,
            state: tokio::sync::Mutex::new(State {
                sink: Some(sink),
                channels: HashMap::new(),
            }),
            events: OnceLock::new(),
            up: AtomicBool::new(true),
            op_timeout,
            control,
        });
        Ok((fanout, stream))
    }

    pub(crate) fn start(&self, events: Arc<dyn BrokerEvents>) {
        let _ = self.events.set(events);
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// SUBSCRIBEs the node to `channel`; returns once Redis confirmed it.
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<(), BrokerError> {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let Some(sink) = state.sink.as_mut() else {
            return Err(BrokerError::Unavailable(
                "redis pub/sub reconnecting".into(),
            ));
        };
        if !state.channels.contains_key(channel) {
            bounded(self.op_timeout, sink.subscribe(topic(channel)))
                .await
                .map_err(Failure::into_read_error)?;
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
        match state.sink.as_mut() {
            Some(sink) => bounded(self.op_timeout, sink.unsubscribe(topic(channel)))
                .await
                .map_err(Failure::into_read_error),
            // The next connection will not subscribe it.
            None => Ok(()),
        }
    }

    /// Delivers every message, and reconnects whenever the connection ends.
    pub(crate) async fn run(self: Arc<Self>, mut stream: PubSubStream) {
        loop {
            while let Some(message) = stream.next().await {
                self.deliver(&message);
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
        let (mut sink, stream) = bounded(self.op_timeout, self.client.get_async_pubsub())
            .await?
            .split();
        let mut state = self.state.lock().await;
        let mut topics: Vec<String> = state.channels.keys().map(|c| topic(c)).collect();
        topics.extend(control_topics(&self.control));
        bounded(self.op_timeout, sink.subscribe(&topics)).await?;
        state.sink = Some(sink);
        self.up.store(true, Ordering::Relaxed);
        Ok(stream)
    }

    fn deliver(&self, message: &redis::Msg) {
        let Some(events) = self.events.get() else {
            return;
        };
        let name = message.get_channel_name();
        let Some(channel) = name.strip_prefix(TOPIC_PREFIX) else {
            self.control
                .deliver(name, message.get_payload_bytes(), events);
            return;
        };
        match wire::parse(message.get_payload_bytes()) {
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

fn topic(channel: &str) -> String {
    format!("{TOPIC_PREFIX}{channel}")
}
