//! The conformance suite every [`Broker`] implementation passes: the module invariants as
//! executable cases.
//!
//! Each case takes a factory that builds a fresh, started-nowhere broker for a given
//! [`HistoryConfig`] (node-wide bounds; what each channel keeps comes with its publishes as a
//! [`Retention`]), and panics (it is test code) when the broker breaks an invariant. Brokers that
//! share state between instances (Redis) get distinct channel names per case, so cases can
//! run against one server. [`run_all`] runs every case, given also a *footprint*: how much
//! state the broker holds over all channels (the memory broker's [`memory_footprint`], the
//! key count for Redis), to show that reads add none. `crates/herald-hub/tests/
//! broker_conformance.rs` runs it for [`MemoryBroker`](super::MemoryBroker) and
//! `crates/herald-redis/tests/` for the Redis broker.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use super::{
    Broker, BrokerError, BrokerEvents, HistoryQuery, MAX_CONTROL_SIZE, OutboxEvent, OutboxPolicy,
    Payload, Publication, Retention, Tracked,
};
use crate::config::HistoryConfig;
use crate::recovery::recover;
use bytes::Bytes;
use futures_util::StreamExt;
use herald_hub_protocol::{ClientInfo, StreamPosition};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a case waits for an event before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Whether a client at `since` recovers from `history` (read after `since.offset`), by the
/// hub's recovery rule: for broker tests outside this suite.
pub fn recovers(since: &StreamPosition, history: super::History) -> bool {
    recover(since, history).recovered
}

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
    /// A control message, as sent.
    Control(Vec<u8>),
    /// A survey question, as asked (answered with [`answer_to`]).
    Survey(Vec<u8>),
    /// A control frame the broker could not read, dropped.
    ControlMalformed,
}

/// What a [`Recorder`] answers a survey: `answer:` and the question.
pub fn answer_to(question: &[u8]) -> Bytes {
    [b"answer:".as_slice(), question].concat().into()
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
    fn control(&self, message: &[u8]) {
        self.push(Event::Control(message.to_vec()));
    }
    fn control_malformed(&self) {
        self.push(Event::ControlMalformed);
    }
    fn survey(&self, question: &[u8]) -> Option<Bytes> {
        self.push(Event::Survey(question.to_vec()));
        Some(answer_to(question))
    }
}

/// An in-memory broker keeping `history`: the factory for [`MemoryBroker`](super::MemoryBroker).
pub async fn memory(history: HistoryConfig) -> Arc<dyn Broker> {
    Arc::new(super::MemoryBroker::new(&history))
}

/// The state a broker retains on this node (channels with a stream, plus retained bytes):
/// the footprint for [`MemoryBroker`](super::MemoryBroker).
pub async fn memory_footprint(broker: Arc<dyn Broker>) -> u64 {
    let retained = broker
        .retained()
        .expect("the memory broker reports what it retains");
    (retained.channels + retained.bytes) as u64
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

/// Runs every case; `footprint` measures the state a broker holds over all channels.
pub async fn run_all<F, Fut, P, PFut>(factory: F, footprint: P)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
    P: Fn(Arc<dyn Broker>) -> PFut,
    PFut: Future<Output = u64>,
{
    reads_of_never_published_channels_create_nothing(&factory, &footprint).await;
    a_position_read_before_the_first_publish_continues_into_that_stream_only(&factory).await;
    offsets_grow_by_one_from_one(&factory).await;
    history_honours_after_and_limit(&factory).await;
    a_reverse_read_returns_the_newest_first(&factory).await;
    each_channel_keeps_the_retention_its_publishes_carry(&factory).await;
    fan_out_order_is_offset_order_with_concurrent_publishers(&factory).await;
    subscribe_before_read_leaves_no_gap(&factory).await;
    a_late_unsubscribe_keeps_a_newer_subscribe(&factory).await;
    epoch_is_stable_while_history_lives_and_changes_after_loss(&factory).await;
    presence_adds_removes_lists_and_announces(&factory).await;
    control_messages_and_surveys_reach_the_node(&factory).await;
    connection_counts_refuse_past_the_limit_until_one_is_removed(&factory).await;
    the_outbox_emits_each_transition_once_after_the_grace_delay(&factory).await;
}

/// How many never-published channels [`reads_of_never_published_channels_create_nothing`]
/// reads.
pub const UNIQUE_READS: usize = 10_000;

/// History of [`UNIQUE_READS`] unique never-published channels (and presence, subscribe and
/// unsubscribe, removing an absent member for every tenth) leaves the broker's footprint
/// unchanged: each reads as offset 0 with no publications, and nothing is created.
pub async fn reads_of_never_published_channels_create_nothing<F, Fut, P, PFut>(
    factory: &F,
    footprint: &P,
) where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
    P: Fn(Arc<dyn Broker>) -> PFut,
    PFut: Future<Output = u64>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let prefix = fresh_channel("unread");
    let before = footprint(broker.clone()).await;
    let read = |n: usize| {
        let (broker, channel) = (broker.clone(), format!("{prefix}:{n}"));
        async move {
            let query = HistoryQuery {
                after: 3,
                limit: 10,
                reverse: false,
            };
            let history = broker.history(&channel, query).await.unwrap();
            assert_eq!(history.position.offset, 0, "{channel} reads as offset 0");
            assert!(history.publications.is_empty());
            if n.is_multiple_of(10) {
                assert!(broker.presence(&channel).await.unwrap().is_empty());
                broker.presence_remove(&channel, client(1)).await.unwrap();
                broker.subscribe(&channel).await.unwrap();
                broker
                    .history(&channel, HistoryQuery::default())
                    .await
                    .unwrap();
                broker.unsubscribe(&channel).await.unwrap();
            }
        }
    };
    futures_util::stream::iter(0..UNIQUE_READS)
        .for_each_concurrent(16, read)
        .await;
    let after = footprint(broker.clone()).await;
    assert_eq!(
        before, after,
        "reading {UNIQUE_READS} never-published channels created state"
    );
}

/// The vacant epoch: a channel without a stream reads as offset 0 in an epoch no stream has,
/// the same for every such channel until a stream is created; a position read there
/// continues into the channel's next stream from offset 1 (it names the vacant epoch it
/// replaced), but never into a stream after that one, nor after that stream is lost.
pub async fn a_position_read_before_the_first_publish_continues_into_that_stream_only<F, Fut>(
    factory: &F,
) where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let ttl = Duration::from_millis(600);
    let history = HistoryConfig {
        size: 10,
        ttl,
        ..HistoryConfig::default()
    };
    let (broker, _) = started(factory, history).await;
    // Some stream exists, so the broker has a vacant epoch to keep.
    let elsewhere = fresh_channel("elsewhere");
    broker
        .publish(&elsewhere, json(0), None, Retention::from(&history))
        .await
        .unwrap();
    let read = |channel: String| {
        let broker = broker.clone();
        async move {
            let query = HistoryQuery {
                after: 0,
                limit: 10,
                reverse: false,
            };
            broker.history(&channel, query).await.unwrap()
        }
    };
    let channel = fresh_channel("vacant");
    let before = read(channel.clone()).await;
    assert_eq!(before.position.offset, 0);
    assert_eq!(before.vacant_before, None, "a channel without a stream");
    let vacant = before.position.epoch.clone();
    assert!(
        recover(&before.position, read(channel.clone()).await).recovered,
        "with no stream created anywhere, a quiet channel's position stays valid"
    );
    let quiet = fresh_channel("vacant-too");
    assert_eq!(
        read(quiet.clone()).await.position.epoch,
        read(quiet).await.position.epoch,
        "a channel without a stream reads its vacant epoch until a stream is created"
    );
    let mut first = None;
    for n in 1..=2 {
        let at = broker
            .publish(&channel, json(n), None, Retention::from(&history))
            .await
            .unwrap();
        assert_eq!(at.offset, n);
        first = Some(at);
    }
    let first = first.unwrap();
    assert_ne!(first.epoch, vacant, "a stream never has the vacant epoch");
    let live = read(channel.clone()).await;
    assert_eq!(live.position, first);
    assert_eq!(
        live.vacant_before.as_ref(),
        Some(&vacant),
        "a new stream names the vacant epoch it replaced"
    );
    let recovered = recover(&before.position, live.clone());
    assert!(
        recovered.recovered,
        "a position read before the first publish continues into its stream"
    );
    let offsets: Vec<u64> = recovered.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [1, 2]);
    assert!(
        !recover(
            &StreamPosition {
                offset: 1,
                epoch: vacant.clone()
            },
            live
        )
        .recovered,
        "only offset 0 of the vacant epoch continues into the stream"
    );
    let replaced = read(fresh_channel("vacant-after")).await.position.epoch;
    assert_ne!(
        replaced, vacant,
        "creating a stream replaces the vacant epoch"
    );
    assert_ne!(replaced, first.epoch);

    tokio::time::sleep(ttl * 2).await;
    broker.maintain();
    let lost = read(channel.clone()).await;
    assert_eq!(lost.position.offset, 0, "a lost stream reads as vacant");
    assert!(lost.publications.is_empty());
    assert_ne!(lost.position.epoch, first.epoch);
    assert_ne!(lost.position.epoch, vacant);
    assert!(!recover(&before.position, lost.clone()).recovered);
    assert!(!recover(&first, lost.clone()).recovered);
    let again = broker
        .publish(&channel, json(3), None, Retention::from(&history))
        .await
        .unwrap();
    assert_eq!(again.offset, 1);
    for old in [&vacant, &first.epoch, &lost.position.epoch] {
        assert_ne!(&again.epoch, old, "a new stream has a new epoch");
    }
    let now = read(channel.clone()).await;
    for position in [&before.position, &first] {
        let old: StreamPosition = position.clone();
        assert!(
            !recover(&old, now.clone()).recovered,
            "{old:?} must not recover into {:?}",
            now.position
        );
    }
    assert!(
        recover(&lost.position, now).recovered,
        "a position read while the stream was lost continues into the next one"
    );
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
        let position = broker
            .publish(&channel, json(n), None, Retention::default())
            .await
            .unwrap();
        assert_eq!(position.offset, n);
        assert_eq!(epoch.get_or_insert(position.epoch.clone()), &position.epoch);
    }
    let history = broker
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.position.offset, 5);
    assert_eq!(Some(&history.position.epoch), epoch.as_ref());
    assert_ne!(
        empty.position.epoch, history.position.epoch,
        "a channel without a stream reads in the vacant epoch, never a stream's"
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
        broker
            .publish(&channel, json(n), None, Retention::default())
            .await
            .unwrap();
    }
    let history = broker
        .history(
            &channel,
            HistoryQuery {
                after: 3,
                limit: 4,
                reverse: false,
            },
        )
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
            .publish(
                &channel,
                payload.clone(),
                Some(client(7)),
                Retention::default(),
            )
            .await
            .unwrap();
    }
    let tail = broker
        .history(
            &channel,
            HistoryQuery {
                after: 10,
                limit: 100,
                reverse: false,
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
        small
            .publish(&channel, json(n), None, Retention::from(&retained))
            .await
            .unwrap();
    }
    let kept = small
        .history(
            &channel,
            HistoryQuery {
                after: 0,
                limit: 100,
                reverse: false,
            },
        )
        .await
        .unwrap();
    let offsets: Vec<u64> = kept.publications.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [4, 5, 6], "history keeps the newest `size`");
}

/// A reverse read returns the newest `limit` publications above `after`, newest first.
pub async fn a_reverse_read_returns_the_newest_first<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("reverse");
    for n in 1..=10 {
        let keep = Retention::default();
        broker.publish(&channel, json(n), None, keep).await.unwrap();
    }
    let read = |after: u64, limit: usize| {
        let (broker, channel) = (broker.clone(), channel.clone());
        async move {
            let query = HistoryQuery {
                after,
                limit,
                reverse: true,
            };
            let history = broker.history(&channel, query).await.unwrap();
            assert_eq!(history.position.offset, 10);
            let offsets: Vec<u64> = history.publications.iter().map(|p| p.offset).collect();
            offsets
        }
    };
    assert_eq!(
        read(0, 3).await,
        [10, 9, 8],
        "the newest three, newest first"
    );
    assert_eq!(
        read(7, 10).await,
        [10, 9, 8],
        "no further back than `after`"
    );
    assert_eq!(
        read(0, 0).await,
        Vec::<u64>::new(),
        "limit 0 reads the position"
    );
    let tail = broker
        .history(
            &channel,
            HistoryQuery {
                after: 0,
                limit: 1,
                reverse: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(tail.publications[0].payload, json(10));
    let never = fresh_channel("reverse-never");
    let query = HistoryQuery {
        after: 0,
        limit: 5,
        reverse: true,
    };
    let empty = broker.history(&never, query).await.unwrap();
    assert_eq!(empty.position.offset, 0);
    assert!(empty.publications.is_empty());
}

/// Each channel keeps the size and TTL its publishes carry, on one broker: a small history
/// keeps its newest few while a larger one keeps more, and a short-lived stream is lost (a
/// new epoch) while a long-lived one goes on.
pub async fn each_channel_keeps_the_retention_its_publishes_carry<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let ttl = Duration::from_millis(600);
    let small = Retention { size: 2, ttl };
    let large = Retention {
        size: 5,
        ttl: Duration::from_secs(300),
    };
    let (short, long) = (fresh_channel("keep-small"), fresh_channel("keep-large"));
    let mut first = Vec::new();
    for n in 1..=6 {
        first.push(broker.publish(&short, json(n), None, small).await.unwrap());
        broker.publish(&long, json(n), None, large).await.unwrap();
    }
    let offsets = |channel: String| {
        let broker = broker.clone();
        async move {
            let query = HistoryQuery {
                after: 0,
                limit: 100,
                reverse: false,
            };
            let history = broker.history(&channel, query).await.unwrap();
            let offsets: Vec<u64> = history.publications.iter().map(|p| p.offset).collect();
            offsets
        }
    };
    assert_eq!(offsets(short.clone()).await, [5, 6], "size 2 keeps two");
    assert_eq!(
        offsets(long.clone()).await,
        [2, 3, 4, 5, 6],
        "size 5 keeps five"
    );
    tokio::time::sleep(ttl * 2).await;
    broker.maintain();
    let again = broker.publish(&short, json(7), None, small).await.unwrap();
    assert_eq!(again.offset, 1, "the short-lived stream expired");
    assert_ne!(again.epoch, first[0].epoch, "and came back in a new epoch");
    let on = broker.publish(&long, json(7), None, large).await.unwrap();
    assert_eq!(on.offset, 7, "the long-lived stream goes on");
    assert_eq!(offsets(long).await, [3, 4, 5, 6, 7]);
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
                broker
                    .publish(&channel, json(n), None, Retention::default())
                    .await
                    .unwrap();
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
                publisher
                    .publish(&channel, json(n), None, Retention::default())
                    .await
                    .unwrap();
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
    let position = broker
        .publish(&channel, json(1), None, Retention::default())
        .await
        .unwrap();
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
    let keep = Retention { size: 10, ttl };
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let channel = fresh_channel("epoch");
    let first = broker.publish(&channel, json(1), None, keep).await.unwrap();
    let again = broker.publish(&channel, json(2), None, keep).await.unwrap();
    assert_eq!(first.epoch, again.epoch);
    let read = broker
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(read.position, again);
    tokio::time::sleep(ttl * 2).await;
    broker.maintain();
    let after = broker.publish(&channel, json(3), None, keep).await.unwrap();
    assert_eq!(after.offset, 1, "a lost history starts again at 1");
    assert_ne!(after.epoch, first.epoch, "a lost history has a new epoch");
    let read = broker
        .history(
            &channel,
            HistoryQuery {
                after: 0,
                limit: 10,
                reverse: false,
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

/// A control message reaches the node's events as sent; a survey gathers the node's answer;
/// both refuse more than [`MAX_CONTROL_SIZE`] bytes.
pub async fn control_messages_and_surveys_reach_the_node<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, recorder) = started(factory, HistoryConfig::default()).await;
    let message = fresh_channel("control").into_bytes();
    broker.control(message.clone().into()).await.unwrap();
    let sent = Event::Control(message);
    recorder
        .wait_until("the control message", |e| e.contains(&sent))
        .await;
    let question = fresh_channel("survey").into_bytes();
    let answers = broker.survey(question.clone().into(), WAIT).await.unwrap();
    assert_eq!(answers, [answer_to(&question)]);
    let huge = Bytes::from(vec![b'x'; MAX_CONTROL_SIZE + 1]);
    let refused = broker.control(huge.clone()).await;
    assert!(matches!(refused, Err(BrokerError::Limit(_))), "{refused:?}");
    let refused = broker.survey(huge, WAIT).await;
    assert!(matches!(refused, Err(BrokerError::Limit(_))), "{refused:?}");
}

/// A user's connections are counted up to the limit: one more is refused, one counted
/// already is counted once, and a removed one frees its place.
pub async fn connection_counts_refuse_past_the_limit_until_one_is_removed<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let user = fresh_channel("user");
    assert!(broker.connection_add(&user, "a", 2).await.unwrap());
    assert!(broker.connection_add(&user, "b", 2).await.unwrap());
    assert!(
        broker.connection_add(&user, "a", 2).await.unwrap(),
        "counted once"
    );
    assert!(!broker.connection_add(&user, "c", 2).await.unwrap());
    let other = fresh_channel("user");
    assert!(
        broker.connection_add(&other, "c", 2).await.unwrap(),
        "per user"
    );
    broker.connection_remove(&user, "a").await.unwrap();
    assert!(broker.connection_add(&user, "c", 2).await.unwrap());
    for (u, c) in [(&user, "b"), (&user, "c"), (&other, "c")] {
        broker.connection_remove(u, c).await.unwrap();
    }
}

/// The outbox's events over two nodes of one broker, by name and thing, oldest first; each
/// read is acknowledged, so the next read starts after it. Ids grow.
async fn drained(broker: &dyn Broker) -> Vec<(String, Tracked)> {
    let entries = broker.outbox_read(1000).await.unwrap();
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|id| {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    });
    assert_eq!(ids, sorted, "outbox ids grow in outbox order");
    broker.outbox_ack(&ids).await.unwrap();
    entries
        .into_iter()
        .filter_map(|e| match e.event {
            OutboxEvent::Tracked(thing, held) => Some((thing.event_name(held).into(), thing)),
            OutboxEvent::Raw(_) => None,
        })
        .collect()
}

/// The outbox emits a thing's "held" event when its first node holds it and its "released"
/// event once the last let go and the grace delay passed; a hold within the grace delay
/// emits nothing; a node that stops renewing its life has its things released by the leader;
/// only one node leads at a time; a full outbox drops and reports; delivered events go.
pub async fn the_outbox_emits_each_transition_once_after_the_grace_delay<F, Fut>(factory: &F)
where
    F: Fn(HistoryConfig) -> Fut,
    Fut: Future<Output = Arc<dyn Broker>>,
{
    let (broker, _) = started(factory, HistoryConfig::default()).await;
    let broker = broker.as_ref();
    let grace = Duration::from_millis(300);
    let policy = OutboxPolicy {
        grace,
        max_events: 100,
        node_life: Duration::from_millis(1500),
        lease: Duration::from_secs(30),
    };
    let a = fresh_channel("node-a");
    let b = fresh_channel("node-b");
    let first = broker.outbox_lead(&a, policy).await.unwrap();
    assert!(first.leader && first.rejoined, "{first:?}");
    let second = broker.outbox_lead(&b, policy).await.unwrap();
    assert!(!second.leader, "one leader at a time: {second:?}");
    drained(broker).await;

    let user = Tracked::User(fresh_channel("user"));
    let online = ("user_online".to_string(), user.clone());
    let offline = ("user_offline".to_string(), user.clone());
    broker.track(&a, &user, true, policy).await.unwrap();
    broker.track(&b, &user, true, policy).await.unwrap();
    broker.track(&a, &user, true, policy).await.unwrap();
    broker.track(&a, &user, false, policy).await.unwrap();
    assert_eq!(
        drained(broker).await,
        vec![online.clone()],
        "first holder only"
    );
    broker.track(&b, &user, false, policy).await.unwrap();
    broker.outbox_lead(&a, policy).await.unwrap();
    assert_eq!(drained(broker).await, vec![], "not before the grace delay");
    broker.track(&b, &user, true, policy).await.unwrap();
    tokio::time::sleep(grace * 2).await;
    broker.outbox_lead(&a, policy).await.unwrap();
    assert_eq!(
        drained(broker).await,
        vec![],
        "a hold within the grace delay"
    );
    broker.track(&b, &user, false, policy).await.unwrap();
    tokio::time::sleep(grace * 2).await;
    broker.outbox_lead(&a, policy).await.unwrap();
    assert_eq!(drained(broker).await, vec![offline]);

    let channel = Tracked::Channel(fresh_channel("room"));
    let member = Tracked::Member {
        channel: fresh_channel("room"),
        user: "ann".into(),
    };
    broker.track(&b, &channel, true, policy).await.unwrap();
    broker.track(&b, &member, true, policy).await.unwrap();
    assert_eq!(
        drained(broker).await,
        vec![
            ("channel_occupied".into(), channel.clone()),
            ("member_added".into(), member.clone()),
        ]
    );
    // Node b stops renewing its life; a keeps leading.
    let deadline = tokio::time::Instant::now() + policy.node_life + grace * 3;
    let mut events = Vec::new();
    while tokio::time::Instant::now() < deadline {
        assert!(broker.outbox_lead(&a, policy).await.unwrap().leader);
        events.extend(drained(broker).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    events.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        events,
        vec![
            ("channel_vacated".into(), channel.clone()),
            ("member_removed".into(), member),
        ],
        "a dead node's things are released once"
    );
    let back = broker.outbox_lead(&b, policy).await.unwrap();
    assert!(back.rejoined && !back.leader, "{back:?}");

    let raw = Bytes::from_static(br#"{"event":"publication"}"#);
    let appended = broker.outbox_push(raw.clone(), policy).await.unwrap();
    assert_eq!((appended.queued, appended.dropped), (1, 0));
    let entries = broker.outbox_read(10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event, OutboxEvent::Raw(raw.clone()));
    let full = OutboxPolicy {
        max_events: 1,
        ..policy
    };
    let refused = broker.outbox_push(raw, full).await.unwrap();
    assert_eq!((refused.queued, refused.dropped), (0, 1), "dropped");
    let other = Tracked::User(fresh_channel("user"));
    assert_eq!(
        broker.track(&a, &other, true, full).await.unwrap().dropped,
        1
    );
    assert_eq!(broker.outbox_lead(&a, policy).await.unwrap().waiting, 1);
    broker.outbox_ack(&[entries[0].id.clone()]).await.unwrap();
    assert!(broker.outbox_read(10).await.unwrap().is_empty());
}
