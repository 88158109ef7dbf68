//! The memory broker's own rules: node-wide bounds, byte accounting and the sweep. The
//! invariants every broker keeps are in the conformance suite.
#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;
use futures_util::FutureExt;
use std::time::Duration;

fn broker(history: HistoryConfig) -> MemoryBroker {
    MemoryBroker::new(&history)
}

fn bytes(n: usize) -> Payload {
    Payload::Binary(Bytes::from(vec![7u8; n]))
}

/// The brokers' futures are ready at once: run them in place.
fn now<T>(f: BoxFuture<'_, T>) -> T {
    f.now_or_never().expect("the memory broker never waits")
}

fn publish(b: &MemoryBroker, channel: &str, payload: Payload) -> Result<u64, BrokerError> {
    let retention = Retention::from(&b.history);
    now(b.publish(channel, payload, None, retention)).map(|p| p.offset)
}

fn retained(b: &MemoryBroker, channel: &str) -> Vec<u64> {
    let query = HistoryQuery {
        after: 0,
        limit: usize::MAX,
        reverse: false,
    };
    let history = now(b.history(channel, query)).unwrap();
    history.publications.iter().map(|p| p.offset).collect()
}

fn limit_name(e: BrokerError) -> String {
    match e {
        BrokerError::Limit(name) => name,
        other => panic!("not a limit: {other:?}"),
    }
}

#[test]
fn a_publish_to_a_new_channel_past_max_channels_fails_and_old_channels_go_on() {
    let b = broker(HistoryConfig {
        max_channels: 3,
        ..HistoryConfig::default()
    });
    for c in ["a", "b", "c"] {
        assert_eq!(publish(&b, c, bytes(1)).unwrap(), 1);
    }
    let refused = publish(&b, "d", bytes(1)).unwrap_err();
    assert_eq!(limit_name(refused), "history.max_channels");
    assert_eq!(publish(&b, "a", bytes(1)).unwrap(), 2);
    assert_eq!(b.stream_count(), 3);
    assert!(
        retained(&b, "d").is_empty(),
        "the refused channel has no stream"
    );
    assert_eq!(b.stream_count(), 3);
}

#[test]
fn expired_channels_free_their_slots_at_the_sweep() {
    let b = broker(HistoryConfig {
        max_channels: 2,
        ttl: Duration::from_millis(20),
        ..HistoryConfig::default()
    });
    publish(&b, "a", bytes(1)).unwrap();
    publish(&b, "b", bytes(1)).unwrap();
    assert!(publish(&b, "c", bytes(1)).is_err());
    std::thread::sleep(Duration::from_millis(30));
    b.sweep();
    assert_eq!(b.retained(), Some(Retained::default()));
    assert_eq!(publish(&b, "c", bytes(1)).unwrap(), 1);
}

#[test]
fn over_max_bytes_the_publishing_channel_drops_its_own_oldest_first() {
    let b = broker(HistoryConfig {
        size: 100,
        max_bytes: 100,
        ..HistoryConfig::default()
    });
    for _ in 0..6 {
        publish(&b, "big", bytes(10)).unwrap();
    }
    for _ in 0..4 {
        publish(&b, "small", bytes(10)).unwrap();
    }
    assert_eq!(b.retained_bytes(), 100);
    // Full: "big" makes room from its own history, "small" keeps everything.
    assert_eq!(publish(&b, "big", bytes(20)).unwrap(), 7);
    assert_eq!(retained(&b, "big"), [3, 4, 5, 6, 7]);
    assert_eq!(retained(&b, "small"), [1, 2, 3, 4]);
    assert_eq!(b.retained_bytes(), 100);
}

#[test]
fn a_publish_that_cannot_fit_even_alone_fails_and_keeps_the_channels_history() {
    let b = broker(HistoryConfig {
        size: 100,
        max_bytes: 100,
        ..HistoryConfig::default()
    });
    for _ in 0..9 {
        publish(&b, "a", bytes(10)).unwrap();
    }
    publish(&b, "b", bytes(10)).unwrap();
    // "b" would need more than its own 10 bytes: refused, its history intact.
    let refused = publish(&b, "b", bytes(30)).unwrap_err();
    assert_eq!(limit_name(refused), "history.max_bytes");
    assert_eq!(retained(&b, "b"), [1]);
    let too_big = publish(&b, "c", bytes(101)).unwrap_err();
    assert_eq!(limit_name(too_big), "history.max_bytes");
    assert_eq!(b.retained_bytes(), 100);
    assert_eq!(
        b.stream_count(),
        2,
        "a refused first publish creates no stream"
    );
    // The refused publication took no offset.
    assert_eq!(publish(&b, "b", bytes(10)).unwrap(), 2);
}

#[test]
fn without_history_nothing_is_retained_or_counted() {
    let b = broker(HistoryConfig {
        size: 0,
        max_bytes: 10,
        ..HistoryConfig::default()
    });
    for n in 1..=5 {
        assert_eq!(publish(&b, "a", bytes(100)).unwrap(), n);
    }
    assert_eq!(b.retained_bytes(), 0);
}

#[test]
fn trimmed_and_expired_publications_give_their_bytes_back() {
    let b = broker(HistoryConfig {
        size: 3,
        ttl: Duration::from_millis(20),
        ..HistoryConfig::default()
    });
    for _ in 0..10 {
        publish(&b, "a", bytes(5)).unwrap();
    }
    assert_eq!(b.retained_bytes(), 15, "size 3 keeps three");
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        retained(&b, "a").is_empty(),
        "a read drops expired publications"
    );
    assert_eq!(b.retained_bytes(), 0);
}

#[test]
fn reads_of_unknown_channels_share_their_groups_vacant_epoch_until_a_stream_of_it_is_created() {
    let b = broker(HistoryConfig::default());
    let read = |c: &str| now(b.history(c, HistoryQuery::default())).unwrap().position;
    // Three channels of one group, and one of another.
    let group = super::vacant_group("x");
    let mut same = (0..)
        .map(|n| format!("c{n}"))
        .filter(|c| super::vacant_group(c) == group);
    let (y, z) = (same.next().unwrap(), same.next().unwrap());
    let other = (0..)
        .map(|n| format!("o{n}"))
        .find(|c| super::vacant_group(c) != group)
        .unwrap();
    let (x0, y0, other0) = (read("x"), read(&y), read(&other));
    assert_eq!((x0.offset, &x0.epoch), (0, &y0.epoch));
    let published = now(b.publish(&z, bytes(1), None, Retention::default())).unwrap();
    assert_ne!(published.epoch, x0.epoch);
    let after = read("x");
    assert_ne!(
        after.epoch, x0.epoch,
        "a new stream replaces its group's vacant epoch"
    );
    assert_ne!(after.epoch, published.epoch);
    assert_eq!(
        read(&other),
        other0,
        "another group's vacant epoch stays as it was"
    );
    let history = now(b.history(&z, HistoryQuery::default())).unwrap();
    assert_eq!(
        history.vacant_before.as_ref(),
        Some(&x0.epoch),
        "the stream names the vacant epoch it replaced"
    );
    assert_eq!(b.stream_count(), 1);
}

/// Publishers racing the sweep never write into a stream the sweep took out: at the end,
/// every byte is accounted for and everything expires.
#[test]
fn publishers_racing_the_sweep_leave_no_orphaned_bytes() {
    let b = Arc::new(broker(HistoryConfig {
        size: 4,
        ttl: Duration::from_millis(2),
        ..HistoryConfig::default()
    }));
    let publishers: Vec<_> = (0..2)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for n in 0..3000u32 {
                    let channel = format!("c{}", (n + t) % 7);
                    publish(&b, &channel, bytes(3)).unwrap();
                    if n.is_multiple_of(50) {
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
            })
        })
        .collect();
    while !publishers.iter().all(std::thread::JoinHandle::is_finished) {
        b.sweep();
    }
    for p in publishers {
        p.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    b.sweep();
    assert_eq!(b.retained(), Some(Retained::default()));
}

#[test]
fn each_stream_keeps_the_retention_of_its_publishes() {
    let b = broker(HistoryConfig::default());
    let short = Retention {
        size: 2,
        ttl: Duration::from_millis(20),
    };
    for _ in 0..5 {
        now(b.publish("short", bytes(1), None, short)).unwrap();
        publish(&b, "long", bytes(1)).unwrap();
    }
    assert_eq!(retained(&b, "short"), [4, 5]);
    assert_eq!(retained(&b, "long"), [1, 2, 3, 4, 5]);
    std::thread::sleep(Duration::from_millis(30));
    b.sweep();
    assert_eq!(
        b.stream_count(),
        1,
        "the short stream expired, the long one lives"
    );
    assert_eq!(retained(&b, "long").len(), 5);
}

#[test]
fn a_reverse_read_takes_the_newest_from_the_end() {
    let b = broker(HistoryConfig::default());
    for _ in 0..6 {
        publish(&b, "a", bytes(1)).unwrap();
    }
    let read = |after, limit| {
        let query = HistoryQuery {
            after,
            limit,
            reverse: true,
        };
        let history = now(b.history("a", query)).unwrap();
        history
            .publications
            .iter()
            .map(|p| p.offset)
            .collect::<Vec<_>>()
    };
    assert_eq!(read(0, 2), [6, 5]);
    assert_eq!(read(4, 10), [6, 5]);
    assert_eq!(read(0, 0), Vec::<u64>::new());
}
