//! The conformance suite every [`Broker`] implementation passes: the module invariants as
//! executable cases.
//!
//! Each case takes a factory that builds a fresh, started-nowhere broker for a given history
//! retention, and panics (it is test code) when the broker breaks an invariant. Brokers that
//! share state between instances (Redis) get distinct channel names per case, so cases can
//! run against one server. [`run_all`] runs every case; `crates/herald-hub/tests/
//! broker_conformance.rs` runs it for [`MemoryBroker`](super::MemoryBroker) and
//! `crates/herald-redis/tests/` for the Redis broker.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use super::{Broker, BrokerEvents, HistoryQuery, Payload, Publication};
use crate::config::HistoryConfig;
use bytes::Bytes;
use herald_hub_protocol::ClientInfo;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a case waits for an event before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a broker handed to its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A publication: channel, epoch, offset.
    Publication(String, String, u64),
    /// A join: channel, client.
    Join(String, String),
    /// A leave: channel, client.
    Leave(String, String),
    /// Fan-out may have missed publications.
    Lost,
}

/// Records every event a broker hands to its node.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    changed: Notify,
}

impl Recorder {
    fn push(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
        self.changed.notify_waiters();
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The publications on `channel` so far: (epoch, offset).
    pub fn publications(&self, channel: &str) -> Vec<(String, u64)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Publication(c, epoch, offset) if c == channel => Some((epoch, offset)),
                _ => None,
            })
            .collect()
    }

    /// Waits until `condition` holds for the events, or panics after [`WAIT`].
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&[Event]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            if condition(&self.events()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                assert!(condition(&self.events()), "timed out waiting for {what}");
                return;
            }
        }
    }
}

impl BrokerEvents for Recorder {
    fn publication(&self, channel: &str, epoch: &Arc<str>, publication: Arc<Publication>) {
        self.push(Event::Publication(
            channel.into(),
            epoch.to_string(),
            publication.offset,
        ));
    }
    fn join(&self, channel: &str, info: &ClientInfo) {
        self.push(Event::Join(channel.into(), info.client.clone()));
    }
    fn leave(&self, channel: &str, info: &ClientInfo) {
        self.push(Event::Leave(channel.into(), info.client.clone()));
    }
    fn lost(&self) {
        self.push(Event::Lost);
    }
}

/// An in-memory broker keeping `history`: the factory for [`MemoryBroker`](super::MemoryBroker).
pub async fn memory(history: HistoryConfig) -> Arc<dyn Broker> {
    Arc::new(super::MemoryBroker::new(super::memory::Retention {
        size: history.size,
        ttl: history.ttl,
    }))
}

/// A started broker and the recorder of its events.
pub async fn started<F, Fut>(
    factory: &F,
    history: HistoryConfig,
) -> (Arc<dyn Broker>, Arc<Recorder>)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let broker = factory(history).await;
    let recorder = Arc::new(Recorder::default());
    broker.start(recorder.clone());
    (broker, recorder)
}

/// A channel name no other case (or earlier run on the same server) uses.
pub fn fresh_channel(case: &str) -> String {
    format!("conformance:{case}:{:016x}", rand::random::<u64>())
}

fn json(n: u64) -> Payload {
    Payload::Json(Bytes::from(n.to_string()))
}

fn client(n: u32) -> ClientInfo {
    ClientInfo {
        client: format!("node-{n}"),
        user: format!("user {n}"),
    }
}

/// Runs every case.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    offsets_grow_by_one_from_one(&factory).await;
    history_honours_after_and_limit(&factory).await;
    fan_out_order_is_offset_order_with_concurrent_publishers(&factory).await;
    subscribe_before_read_leaves_no_gap(&factory).await;
    a_late_unsubscribe_keeps_a_newer_subscribe(&factory).await;
    epoch_is_stable_while_history_lives_and_changes_after_loss(&factory).await;
    presence_adds_removes_lists_and_announces(&factory).await;
}

/// Offsets are 1, 2, 3, … in one epoch; the position is the last one.
pub async fn offsets_grow_by_one_from_one<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("offsets");
    let empty = broker
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(empty.position.offset, 0);
    let mut epoch = None;
    for n in 1..=5 {
        let position = broker.publish(&channel, json(n), None).await.unwrap();
        assert_eq!(position.offset, n);
        assert_eq!(epoch.get_or_insert(position.epoch.clone()), &position.epoch);
    }
    let history = broker
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.position.offset, 5);
    assert_eq!(Some(&history.position.epoch), epoch.as_ref());
    assert_eq!(
        empty.position.epoch, history.position.epoch,
        "reading creates the epoch"
    );
    assert!(
        history.publications.is_empty(),
        "limit 0 reads the position only"
    );
}

/// `after` and `limit` select the oldest publications past an offset; payload kinds and the
/// publisher come back as published.
pub async fn history_honours_after_and_limit<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("history");
    for n in 1..=10 {
        broker.publish(&channel, json(n), None).await.unwrap();
    }
    let history = broker
        .history(&channel, HistoryQuery { after: 3, limit: 4 })
        .await
        .unwrap();
    let offsets: Vec<u64> = history.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [4, 5, 6, 7]);
    assert_eq!(history.position.offset, 10);
    assert_eq!(history.publications[0].payload, json(4));
    let kinds = [
        Payload::Text(Bytes::from_static("ünï\ncode".as_bytes())),
        Payload::Binary(Bytes::from_static(&[0, 255, 10, 32])),
        Payload::Json(Bytes::from_static(b"{\"a\": [1, 2]}")),
    ];
    for payload in &kinds {
        broker
            .publish(&channel, payload.clone(), Some(client(7)))
            .await
            .unwrap();
    }
    let tail = broker
        .history(
            &channel,
            HistoryQuery {
                after: 10,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let got: Vec<Payload> = tail
        .publications
        .iter()
        .map(|p| p.payload.clone())
        .collect();
    assert_eq!(got, kinds);
    assert!(
        tail.publications
            .iter()
            .all(|p| p.publisher == Some(client(7)))
    );
    let retained = HistoryConfig {
        size: 3,
        ..HistoryConfig::default()
    };
    let (small, _) = started(factory, retained).await;
    let channel = fresh_channel("history-size");
    for n in 1..=6 {
        small.publish(&channel, json(n), None).await.unwrap();
    }
    let kept = small
        .history(
            &channel,
            HistoryQuery {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let offsets: Vec<u64> = kept.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [4, 5, 6], "history keeps the newest `size`");
}

/// Publications from concurrent publishers reach the node once each, in offset order.
pub async fn fan_out_order_is_offset_order_with_concurrent_publishers<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, recorder) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("order");
    broker.subscribe(&channel).await.unwrap();
    let (publishers, each) = (4u64, 50u64);
    let mut running = Vec::new();
    for _ in 0..publishers {
        let (broker, channel) = (broker.clone(), channel.clone());
        running.push(tokio::spawn(async move {
            for n in 0..each {
                broker.publish(&channel, json(n), None).await.unwrap();
            }
        }));
    }
    for publisher in running {
        publisher.await.unwrap();
    }
    let total = (publishers * each) as usize;
    recorder
        .wait_until("every publication", |_| {
            recorder.publications(&channel).len() >= total
        })
        .await;
    let offsets: Vec<u64> = recorder
        .publications(&channel)
        .iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(offsets, (1..=total as u64).collect::<Vec<_>>());
    broker.unsubscribe(&channel).await.unwrap();
}

/// After `subscribe` returns, every publication past the position history reports reaches
/// the node, also while publishers race the subscribe.
pub async fn subscribe_before_read_leaves_no_gap<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, recorder) = started(factory, HistoryConfig::default()).await;
    let publisher = broker.clone();
    let channel = fresh_channel("seam");
    let total = 300u64;
    let publishing = {
        let (publisher, channel) = (publisher.clone(), channel.clone());
        tokio::spawn(async move {
            for n in 1..=total {
                publisher.publish(&channel, json(n), None).await.unwrap();
                tokio::time::sleep(Duration::ZERO).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    broker.subscribe(&channel).await.unwrap();
    let read = broker
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    publishing.await.unwrap();
    let seen = |events: &[Event]| {
        events
            .iter()
            .any(|e| matches!(e, Event::Publication(c, _, o) if *c == channel && *o == total))
    };
    recorder.wait_until("the last publication", seen).await;
    let live: Vec<u64> = recorder
        .publications(&channel)
        .iter()
        .map(|p| p.1)
        .filter(|o| *o > read.position.offset)
        .collect();
    assert_eq!(live, (read.position.offset + 1..=total).collect::<Vec<_>>());
}

/// `subscribe` and `unsubscribe` are counted: when the last local subscriber's `unsubscribe`
/// reaches the broker after the next subscriber's `subscribe`, delivery goes on.
pub async fn a_late_unsubscribe_keeps_a_newer_subscribe<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, recorder) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("recount");
    broker.subscribe(&channel).await.unwrap();
    broker.subscribe(&channel).await.unwrap();
    broker.unsubscribe(&channel).await.unwrap();
    let position = broker.publish(&channel, json(1), None).await.unwrap();
    let heard = |e: &[Event]| {
        e.contains(&Event::Publication(
            channel.clone(),
            position.epoch.clone(),
            1,
        ))
    };
    recorder
        .wait_until("delivery after a late unsubscribe", heard)
        .await;
    broker.unsubscribe(&channel).await.unwrap();
}

/// The epoch stays while history lives and is new once history is lost (here: expired).
pub async fn epoch_is_stable_while_history_lives_and_changes_after_loss<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let ttl = Duration::from_millis(600);
    let (broker, _) = started(
        factory,
        HistoryConfig {
            size: 10,
            ttl,
            ..HistoryConfig::default()
        },
    )
    .await;
    let channel = fresh_channel("epoch");
    let first = broker.publish(&channel, json(1), None).await.unwrap();
    let again = broker.publish(&channel, json(2), None).await.unwrap();
    assert_eq!(first.epoch, again.epoch);
    let read = broker
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(read.position, again);
    tokio::time::sleep(ttl * 2).await;
    broker.maintain();
    let after = broker.publish(&channel, json(3), None).await.unwrap();
    assert_eq!(after.offset, 1, "a lost history starts again at 1");
    assert_ne!(after.epoch, first.epoch, "a lost history has a new epoch");
    let read = broker
        .history(
            &channel,
            HistoryQuery {
                after: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(read.position, after);
    assert_eq!(read.publications.len(), 1);
}

/// Presence lists members sorted by client id; add and remove announce join and leave;
/// removing an absent member announces nothing.
pub async fn presence_adds_removes_lists_and_announces<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, recorder) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("presence");
    broker.subscribe(&channel).await.unwrap();
    broker.presence_add(&channel, client(2)).await.unwrap();
    broker.presence_add(&channel, client(1)).await.unwrap();
    assert_eq!(
        broker.presence(&channel).await.unwrap(),
        [client(1), client(2)]
    );
    let join = |n: u32| Event::Join(channel.clone(), client(n).client);
    recorder
        .wait_until("two joins", |e| {
            e.contains(&join(1)) && e.contains(&join(2))
        })
        .await;
    broker.presence_remove(&channel, client(2)).await.unwrap();
    broker.presence_remove(&channel, client(2)).await.unwrap();
    assert_eq!(broker.presence(&channel).await.unwrap(), [client(1)]);
    let leave = Event::Leave(channel.clone(), client(2).client);
    recorder.wait_until("a leave", |e| e.contains(&leave)).await;
    broker.presence_remove(&channel, client(1)).await.unwrap();
    assert!(broker.presence(&channel).await.unwrap().is_empty());
    let leave_one = Event::Leave(channel.clone(), client(1).client);
    recorder
        .wait_until("the last leave", |e| e.contains(&leave_one))
        .await;
    let leaves = recorder.events().iter().filter(|e| **e == leave).count();
    assert_eq!(leaves, 1, "removing an absent member announces nothing");
}
