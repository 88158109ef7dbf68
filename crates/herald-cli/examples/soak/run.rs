//! The run's clock: when the load started, when it ends, and an early stop that every loop
//! obeys (the RSS guard pulls it when the server grows past twice its bound).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The load phase: every hostile loop and the publisher stop at `deadline`, or earlier when
/// the run is aborted.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) start: Instant,
    pub(crate) deadline: Instant,
    abort: watch::Receiver<bool>,
}

impl Run {
    /// Starts now and lasts `length`, or until `abort` is raised.
    pub(crate) fn new(length: Duration, abort: watch::Receiver<bool>) -> Arc<Self> {
        let start = Instant::now();
        Arc::new(Self {
            start,
            deadline: start + length,
            abort,
        })
    }

    /// Seconds since the load started.
    pub(crate) fn at(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(crate) fn is_over(&self) -> bool {
        Instant::now() >= self.deadline || *self.abort.borrow()
    }

    pub(crate) fn aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// Runs `f` until it completes or the run ends; `None` when the run ended first.
    pub(crate) async fn until<F: Future>(&self, f: F) -> Option<F::Output> {
        let mut abort = self.abort.clone();
        tokio::select! {
            value = f => Some(value),
            () = tokio::time::sleep_until(self.deadline) => None,
            () = raised(&mut abort) => None,
        }
    }

    /// Sleeps `d`; `false` when the run ended first.
    pub(crate) async fn sleep(&self, d: Duration) -> bool {
        self.until(tokio::time::sleep(d)).await.is_some()
    }

    /// Sleeps until `at`; `false` when the run ended first.
    pub(crate) async fn sleep_until(&self, at: Instant) -> bool {
        at < self.deadline && self.until(tokio::time::sleep_until(at)).await.is_some()
    }
}

/// Completes once the flag is set.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    while !*flag.borrow_and_update() {
        if flag.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The instant of the `n`th event of a loop paced at `rate` per second from `start`.
pub(crate) fn due(start: Instant, n: u64, rate: u32) -> Instant {
    start + Duration::from_secs_f64(n as f64 / f64::from(rate.max(1)))
}
