//! Keepalive: a Ping after a silence, and a deadline for the peer's answer.
//!
//! The timers are shared. Connections of one runtime with the same interval and timeout belong
//! to one [`Wheel`] (one per thread that creates such connections), which rounds every deadline
//! up to a tick of a sixteenth of the shorter of the two and keeps one tokio timer per tick.
//! A connection holds a handle to the timer of its tick, not a timer of its own: an idle
//! connection costs a waker slot in that timer (about 24 bytes) instead of a boxed `Sleep`
//! (112 bytes and the allocator's header). When a tick's timer fires it wakes each connection
//! waiting on it, as the connections' own timers would have; each looks at its state and
//! waits on the timer of its next deadline.

use futures_util::FutureExt;
use futures_util::future::{Shared, WeakShared};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::Unconstrained;
use tokio::time::{Instant, Sleep};

/// What the timer asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Ping,
    TimedOut,
}

/// One tick's timer, shared by every connection whose deadline falls in it. Unconstrained by
/// tokio's cooperative budget: a budget-exhausted poll of a `Sleep` wakes its waker at once,
/// and this one's waker wakes every connection of the tick.
type Timer = Shared<Unconstrained<Sleep>>;

/// How many ticks the shorter of interval and timeout is cut into: deadlines are late by at
/// most one tick.
const TICKS: u32 = 16;

#[derive(Debug)]
pub(crate) struct Keepalive {
    wheel: Arc<Wheel>,
    timer: Timer,
    /// Something arrived since the timer last fired.
    heard: bool,
    ping_sent: bool,
}

impl Keepalive {
    /// Must be called within a tokio runtime, as for any timer.
    pub(crate) fn new(interval: Duration, timeout: Duration) -> Self {
        let wheel = Wheel::current(interval, timeout);
        let timer = wheel.timer(Instant::now() + interval);
        Self {
            wheel,
            timer,
            heard: false,
            ping_sent: false,
        }
    }

    /// The peer sent something: it is alive. Costs a store: no clock read, no timer reset.
    /// The timer looks at the flag when it fires, so a Ping follows between one and two
    /// intervals of silence.
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Due> {
        loop {
            // Every branch below replaces the fired timer: a `Shared` is polled at most
            // until it is ready.
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if std::mem::take(&mut self.heard) {
                self.ping_sent = false;
                self.timer = self.wheel.timer(now + self.wheel.interval);
                continue;
            }
            self.timer = self.wheel.timer(now + self.wheel.timeout);
            if self.ping_sent {
                return Poll::Ready(Due::TimedOut);
            }
            self.ping_sent = true;
            return Poll::Ready(Due::Ping);
        }
    }
}

/// The shared timers of one runtime's connections with one interval and timeout.
#[derive(Debug)]
struct Wheel {
    runtime: tokio::runtime::Id,
    interval: Duration,
    timeout: Duration,
    origin: Instant,
    /// Nanoseconds per tick, at least one millisecond's worth.
    tick: u64,
    /// The timers of the ticks to come, by tick number since `origin`. Weak: a timer lives as
    /// long as a connection waits on it.
    timers: Mutex<BTreeMap<u64, WeakShared<Unconstrained<Sleep>>>>,
}

thread_local! {
    /// The wheels made on this thread. A multi-threaded runtime accepts most connections on
    /// one worker, so a server has about one wheel per keepalive setting.
    static WHEELS: RefCell<Vec<Weak<Wheel>>> = const { RefCell::new(Vec::new()) };
}

impl Wheel {
    /// The wheel of the current runtime for these settings, made on first use.
    fn current(interval: Duration, timeout: Duration) -> Arc<Self> {
        let runtime = tokio::runtime::Handle::current().id();
        let find = |wheels: &mut Vec<Weak<Wheel>>| {
            wheels.retain(|wheel| wheel.strong_count() > 0);
            let found = wheels.iter().filter_map(Weak::upgrade).find(|wheel| {
                wheel.runtime == runtime && wheel.interval == interval && wheel.timeout == timeout
            });
            found.unwrap_or_else(|| {
                let wheel = Arc::new(Self::new(runtime, interval, timeout));
                wheels.push(Arc::downgrade(&wheel));
                wheel
            })
        };
        // While the thread's locals are torn down, a connection gets a wheel of its own.
        WHEELS
            .try_with(|wheels| find(&mut wheels.borrow_mut()))
            .unwrap_or_else(|_| Arc::new(Self::new(runtime, interval, timeout)))
    }

    fn new(runtime: tokio::runtime::Id, interval: Duration, timeout: Duration) -> Self {
        let tick = (interval.min(timeout) / TICKS).max(Duration::from_millis(1));
        Self {
            runtime,
            interval,
            timeout,
            origin: Instant::now(),
            tick: u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX),
            timers: Mutex::new(BTreeMap::new()),
        }
    }

    fn ticks_until(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos.div_ceil(u128::from(self.tick))).unwrap_or(u64::MAX)
    }

    /// The timer of the first tick at or after `deadline`.
    fn timer(&self, deadline: Instant) -> Timer {
        let tick = self.ticks_until(deadline);
        let mut timers = self.timers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(timer) = timers.get(&tick).and_then(WeakShared::upgrade) {
            return timer;
        }
        // Ticks that have passed fired already, or nobody waits on them.
        let now = self.ticks_until(Instant::now());
        if timers
            .first_key_value()
            .is_some_and(|(&first, _)| first < now)
        {
            *timers = timers.split_off(&now);
        }
        let at = self.origin + Duration::from_nanos(self.tick.saturating_mul(tick));
        let timer = tokio::task::unconstrained(tokio::time::sleep_until(at)).shared();
        if let Some(weak) = timer.downgrade() {
            timers.insert(tick, weak);
        }
        timer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections with the same settings wait on one timer per tick.
    #[tokio::test(start_paused = true)]
    async fn connections_of_one_tick_share_its_timer() {
        let interval = Duration::from_secs(16);
        let a = Keepalive::new(interval, interval);
        let b = Keepalive::new(interval, interval);
        assert!(Arc::ptr_eq(&a.wheel, &b.wheel));
        assert!(a.timer.ptr_eq(&b.timer));
        tokio::time::advance(Duration::from_secs(2)).await;
        let c = Keepalive::new(interval, interval);
        assert!(Arc::ptr_eq(&a.wheel, &c.wheel));
        assert!(!a.timer.ptr_eq(&c.timer));
        let other = Keepalive::new(interval, interval * 2);
        assert!(!Arc::ptr_eq(&a.wheel, &other.wheel));
    }

    /// A deadline is never early, and late by at most one tick.
    #[tokio::test(start_paused = true)]
    async fn a_ping_comes_after_one_interval_and_at_most_one_tick() {
        let interval = Duration::from_secs(16);
        tokio::time::advance(Duration::from_millis(300)).await;
        let started = Instant::now();
        let mut keepalive = Keepalive::new(interval, interval);
        let due = std::future::poll_fn(|cx| keepalive.poll(cx)).await;
        assert_eq!(due, Due::Ping);
        let waited = started.elapsed();
        assert!(waited >= interval, "{waited:?}");
        assert!(waited <= interval + interval / TICKS, "{waited:?}");
        let due = std::future::poll_fn(|cx| keepalive.poll(cx)).await;
        assert_eq!(due, Due::TimedOut);
        assert!(started.elapsed() >= interval * 2);
    }

    /// The peer was heard: the timer starts over instead of pinging.
    #[tokio::test(start_paused = true)]
    async fn a_heard_peer_is_not_pinged_until_a_whole_interval_of_silence() {
        let interval = Duration::from_secs(16);
        let started = Instant::now();
        let mut keepalive = Keepalive::new(interval, interval);
        keepalive.heard();
        let due = std::future::poll_fn(|cx| keepalive.poll(cx)).await;
        assert_eq!(due, Due::Ping);
        assert!(started.elapsed() >= interval * 2);
    }
}
