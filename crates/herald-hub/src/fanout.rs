//! Pushing one delivery to every subscriber of a channel, spread over the runtime's workers
//! when the channel is large.
//!
//! A push that writes straight into a socket (`crate::direct`) is a system call, so one
//! publication to 10,000 idle subscribers is 10,000 writes: on one thread the last
//! subscriber waits for all the others. A channel with at least [`SHARD`] subscribers per
//! extra thread is split into shards, one per worker of the tokio runtime at most: the
//! calling thread takes shard 0 and scoped threads take the rest, each walking the
//! subscriber map and taking every `shards`-th entry. Every shard is pushed before the call
//! returns, so two publications to one channel still reach each subscriber in order.
//!
//! Writing into sockets from the fan-out loop pays off only while it does not stop batching:
//! a direct write is one system call per delivery, where a subscriber's task that finds
//! several deliveries queued writes them with one. [`Pace`] decides per fan-out, from how long
//! the channel was idle since its last fan-out ended against how long a direct fan-out to
//! its subscribers is expected to take: a channel writing directly keeps doing so while its
//! direct fan-outs take at most nine tenths of its time ([`STAY`]); a channel that queues
//! goes back to direct writes once they would take at most four fifths ([`RETURN`]). An
//! overloaded channel, whose fan-outs follow each other with no idle time between them,
//! therefore queues, and its sessions batch what piled up; the two thresholds keep it from
//! trying a direct fan-out whenever its sessions happen to leave a short gap.

use crate::broadcast::Delivery;
use crate::metrics::Metrics;
use crate::node::{Refused, Subscriber};
use herald_hub_protocol::Disconnect;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The fewest subscribers worth a thread of their own: a thread costs tens of
/// microseconds to start, a shard of this size takes milliseconds to write.
pub(crate) const SHARD: usize = 1024;

/// What one fan-out did: pushes that reached a subscriber, and how many of them fan-out
/// wrote into the socket itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    pub(crate) delivered: u64,
    pub(crate) direct: u64,
}

impl std::ops::AddAssign for Pushed {
    fn add_assign(&mut self, other: Self) {
        self.delivered += other.delivered;
        self.direct += other.direct;
    }
}

/// While a channel writes directly, a direct fan-out may take this many times as long as
/// the channel was idle before it: nine tenths of the channel's time. At 10,000 subscribers ×
/// 10/s a direct fan-out takes about four fifths, and no subscriber would find two deliveries
/// queued, so queueing would only add a wakeup per delivery.
pub(crate) const STAY: u32 = 9;

/// While a channel queues, direct writes come back once they would take at most this many
/// times its idle time: four fifths of its time. Lower than [`STAY`], because the short gaps
/// an overloaded channel's sessions leave (the fan-out's thread running the woken sessions
/// before the next publication) would otherwise let a slow direct fan-out in every so often.
pub(crate) const RETURN: u32 = 4;

/// When a channel's fan-outs may write into its subscribers' sockets: a direct fan-out is
/// expected to take as long per subscriber as the last ones did (a moving average), and it
/// is allowed when that is at most [`STAY`] times (after a direct fan-out) or [`RETURN`]
/// times (after a queued one) the idle time before this publication.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// When the last fan-out ended.
    last_end: Option<Instant>,
    /// Whether the last fan-out queued instead of writing directly.
    queued: bool,
    /// Nanoseconds per subscriber of the direct fan-outs so far (moving average, weight ¼);
    /// 0 before the first one.
    direct_ns: u64,
}

impl Pace {
    /// Whether a fan-out to `subscribers` starting at `now` may write directly.
    pub(crate) fn allows_direct(&self, now: Instant, subscribers: usize) -> bool {
        let Some(last_end) = self.last_end else {
            return true;
        };
        let idle = now.saturating_duration_since(last_end);
        let expected = Duration::from_nanos(self.direct_ns.saturating_mul(subscribers as u64));
        let times = if self.queued { RETURN } else { STAY };
        expected <= idle.saturating_mul(times)
    }

    /// Records a fan-out to `subscribers` that ran from `start` to `end`, writing directly
    /// or not.
    pub(crate) fn finished(
        &mut self,
        start: Instant,
        end: Instant,
        subscribers: usize,
        direct: bool,
    ) {
        self.last_end = Some(end);
        self.queued = !direct;
        if direct && subscribers > 0 {
            let took = end.saturating_duration_since(start).as_nanos();
            let per = u64::try_from(took / subscribers as u128).unwrap_or(u64::MAX);
            self.direct_ns = if self.direct_ns == 0 {
                per
            } else {
                (self.direct_ns.saturating_mul(3)).saturating_add(per) / 4
            };
        }
    }
}

/// How many shards `subscribers` subscribers take with `workers()` workers: one per full
/// [`SHARD`], at most one per worker, at least one.
pub(crate) fn shards(subscribers: usize, workers: impl FnOnce() -> usize) -> usize {
    if subscribers < 2 * SHARD {
        // Too few for a second shard: the runtime is not asked.
        return 1;
    }
    (subscribers / SHARD).min(workers()).max(1)
}

/// The number of workers of the runtime this thread runs on; 1 off a runtime.
pub(crate) fn workers() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |handle| handle.metrics().num_workers())
}

/// Pushes `delivery` to every subscriber (only those that want presence events when
/// `presence_only`), in `shards` shards run side by side, writing into idle sockets when
/// `direct`. A subscriber whose queue is full is closed with 4001 and counted in `metrics`.
pub(crate) fn push_all(
    subscribers: &HashMap<u64, Subscriber>,
    delivery: &Delivery,
    presence_only: bool,
    direct: bool,
    shards: usize,
    metrics: &Metrics,
) -> Pushed {
    let how = How {
        presence_only,
        direct,
        shards,
    };
    let shard = |index: usize| push_shard(subscribers, delivery, how, index, metrics);
    if shards <= 1 {
        return shard(0);
    }
    std::thread::scope(|scope| {
        let mut total = Pushed::default();
        let mut running = Vec::with_capacity(shards - 1);
        for index in 1..shards {
            let spawned = std::thread::Builder::new()
                .name("herald-fanout".into())
                .spawn_scoped(scope, move || shard(index));
            match spawned {
                Ok(handle) => running.push(handle),
                // No thread to be had: this one does the shard itself.
                Err(_) => total += shard(index),
            }
        }
        total += shard(0);
        for handle in running {
            match handle.join() {
                Ok(pushed) => total += pushed,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        total
    })
}

#[derive(Clone, Copy)]
struct How {
    presence_only: bool,
    direct: bool,
    shards: usize,
}

fn push_shard(
    subscribers: &HashMap<u64, Subscriber>,
    delivery: &Delivery,
    how: How,
    index: usize,
    metrics: &Metrics,
) -> Pushed {
    let mut pushed = Pushed::default();
    for subscriber in subscribers.values().skip(index).step_by(how.shards) {
        if how.presence_only && !subscriber.presence_events {
            continue;
        }
        match subscriber.signal.push(delivery, how.direct) {
            Ok(written) => {
                pushed.delivered += 1;
                pushed.direct += u64::from(written);
            }
            Err(Refused::Full) => {
                if subscriber.signal.kill(Disconnect::SLOW) {
                    metrics.slow_consumer_drops.inc();
                }
            }
            Err(Refused::Closed) => {}
        }
    }
    pushed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::PresenceEvent;
    use crate::node::Signal;
    use herald_hub_protocol::ClientInfo;
    use std::sync::Arc;

    fn channel(n: u64, capacity: usize) -> HashMap<u64, Subscriber> {
        (0..n)
            .map(|id| {
                let subscriber = Subscriber {
                    signal: Arc::new(Signal::new(capacity)),
                    presence_events: id % 3 == 0,
                };
                (id, subscriber)
            })
            .collect()
    }

    fn delivery() -> Delivery {
        let info = ClientInfo {
            client: "c".into(),
            user: "u".into(),
        };
        Delivery::Presence(Arc::new(PresenceEvent::new("room".into(), &info, true)))
    }

    fn queued(subscriber: &Subscriber) -> usize {
        subscriber.signal.take(&mut Vec::new(), usize::MAX)
    }

    #[test]
    fn a_shard_per_full_shard_of_subscribers_and_per_worker() {
        assert_eq!(shards(0, || 4), 1);
        assert_eq!(shards(SHARD - 1, || 4), 1);
        assert_eq!(shards(10 * SHARD, || 1), 1);
        assert_eq!(shards(2 * SHARD, || 4), 2);
        assert_eq!(shards(10 * SHARD, || 4), 4);
    }

    #[test]
    fn every_subscriber_gets_the_delivery_once_whatever_the_shards() {
        for shards in [1, 2, 3, 7] {
            let subscribers = channel(5000, 4);
            let pushed = push_all(
                &subscribers,
                &delivery(),
                false,
                true,
                shards,
                &Metrics::new(),
            );
            assert_eq!(
                pushed,
                Pushed {
                    delivered: 5000,
                    direct: 0
                },
                "{shards} shards"
            );
            assert!(
                subscribers.values().all(|s| queued(s) == 1),
                "{shards} shards"
            );
        }
    }

    #[test]
    fn presence_pushes_skip_subscribers_that_do_not_want_them_in_every_shard() {
        let subscribers = channel(3000, 4);
        let pushed = push_all(&subscribers, &delivery(), true, true, 2, &Metrics::new());
        assert_eq!(pushed.delivered, 1000);
        for (id, subscriber) in &subscribers {
            assert_eq!(
                queued(subscriber),
                usize::from(id % 3 == 0),
                "subscriber {id}"
            );
        }
    }

    #[test]
    fn a_full_queue_closes_its_subscriber_with_4001_in_any_shard() {
        let subscribers = channel(4096, 1);
        let metrics = Metrics::new();
        assert_eq!(
            push_all(&subscribers, &delivery(), false, true, 4, &metrics).delivered,
            4096
        );
        assert_eq!(
            push_all(&subscribers, &delivery(), false, true, 4, &metrics).delivered,
            0
        );
        assert_eq!(metrics.slow_consumer_drops.get(), 4096);
    }

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn the_first_fan_out_of_a_channel_writes_directly() {
        assert!(Pace::default().allows_direct(Instant::now(), 10_000));
    }

    #[test]
    fn a_channel_writing_directly_goes_on_while_that_takes_nine_tenths_of_its_time_at_most() {
        let t = Instant::now();
        let mut pace = Pace::default();
        // 1,000 subscribers in 7 ms: 7 µs each.
        pace.finished(t, at(t, 7), 1000, true);
        assert!(pace.allows_direct(at(t, 107), 1000), "100 ms idle");
        assert!(
            pace.allows_direct(at(t, 8), 1000),
            "1 ms idle, 9 × 1 ≥ 7 ms"
        );
        assert!(!pace.allows_direct(at(t, 7), 1000), "no idle time");
        assert!(
            !pace.allows_direct(at(t, 22), 20_000),
            "9 × 15 < 140 ms expected"
        );
        assert!(
            pace.allows_direct(at(t, 23), 20_000),
            "9 × 16 ≥ 140 ms expected"
        );
    }

    #[test]
    fn an_overloaded_channel_queues_until_direct_writes_would_take_four_fifths_at_most() {
        let t = Instant::now();
        let mut pace = Pace::default();
        // 10,000 subscribers in 80 ms, then a publication every 10 ms: no idle time at all.
        pace.finished(t, at(t, 80), 10_000, true);
        assert!(!pace.allows_direct(at(t, 80), 10_000));
        pace.finished(at(t, 80), at(t, 83), 10_000, false);
        let mut now = 83;
        for _ in 0..20 {
            // The sessions leave the channel 7–9 ms between publications: 9 × 9 would let
            // an 80 ms direct fan-out in, 4 × 9 does not.
            now += 9;
            assert!(!pace.allows_direct(at(t, now), 10_000), "at {now} ms");
            pace.finished(at(t, now), at(t, now + 1), 10_000, false);
            now += 1;
        }
        // A queued fan-out leaves the direct estimate alone: 20 ms of quiet brings it back.
        assert!(!pace.allows_direct(at(t, now + 19), 10_000));
        assert!(pace.allows_direct(at(t, now + 20), 10_000));
    }

    #[test]
    fn the_direct_cost_is_a_moving_average() {
        let t = Instant::now();
        let mut pace = Pace::default();
        pace.finished(t, at(t, 8), 1000, true); // 8 µs each
        pace.finished(t, at(t, 4), 1000, true); // 4 µs: (3 × 8 + 4) / 4 = 7
        assert_eq!(pace.direct_ns, 7000);
        pace.finished(t, at(t, 100), 0, true); // no subscribers: nothing learnt
        assert_eq!(pace.direct_ns, 7000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn the_runtime_reports_its_workers() {
        assert_eq!(workers(), 3);
    }

    #[test]
    fn off_a_runtime_there_is_one_worker() {
        assert_eq!(workers(), 1);
    }
}
