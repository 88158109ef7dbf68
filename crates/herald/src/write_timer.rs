//! The write timeout: a deadline for a peer that stopped reading.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Fails a write that made no progress for a whole timeout.
///
/// It costs nothing until a write is blocked: the sleep is allocated on the first block and
/// reset only when a block starts. A write that goes through sets a flag (no clock read, no
/// timer reset); the sleep looks at it when it fires and starts over if the transport took
/// bytes meanwhile. So a write fails between one and two timeouts after its last progress.
#[derive(Debug)]
pub(crate) struct WriteTimer {
    /// In milliseconds, as [`millis`](crate::socket::millis) rounds it.
    timeout_ms: u32,
    sleep: Option<Pin<Box<Sleep>>>,
    /// A write is blocked and the sleep runs for it.
    armed: bool,
    /// The transport accepted bytes since the sleep was last set.
    progress: bool,
}

impl WriteTimer {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            timeout_ms: crate::socket::millis(timeout),
            sleep: None,
            armed: false,
            progress: false,
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.into())
    }

    /// The transport accepted bytes. Costs a store.
    pub(crate) fn progress(&mut self) {
        self.progress = true;
    }

    /// The queue is empty: nothing is blocked. Costs a store.
    pub(crate) fn idle(&mut self) {
        self.armed = false;
    }

    /// A write is blocked with bytes queued: `Ready` once the transport accepted none of them
    /// for a whole timeout.
    pub(crate) fn poll_blocked(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.armed {
            self.armed = true;
            self.progress = false;
            let deadline = Instant::now() + self.timeout();
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let timeout = self.timeout();
        let Some(sleep) = self.sleep.as_mut() else {
            // Unreachable: armed above, and arming sets the sleep.
            return Poll::Pending;
        };
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if !std::mem::take(&mut self.progress) {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(Instant::now() + timeout);
        }
    }
}
