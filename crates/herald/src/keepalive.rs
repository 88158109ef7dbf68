//! Keepalive: a Ping after a silence, and a deadline for the peer's answer.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What the timer asks the connection to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Ping,
    TimedOut,
}

#[derive(Debug)]
pub(crate) struct Keepalive {
    interval: Duration,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

impl Keepalive {
    pub(crate) fn new(interval: Duration, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            interval,
            timeout,
            sleep: Box::pin(tokio::time::sleep_until(now + interval)),
            last_heard: now,
            ping_sent: None,
        }
    }

    /// The peer sent something: it is alive. Cheap; the timer is re-armed only when it fires.
    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.ping_sent = None;
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Due> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let (deadline, due) = match self.ping_sent {
                Some(sent) => (sent + self.timeout, Due::TimedOut),
                None => (self.last_heard + self.interval, Due::Ping),
            };
            if now < deadline {
                self.sleep.as_mut().reset(deadline);
                continue;
            }
            if due == Due::Ping {
                self.ping_sent = Some(now);
                self.sleep.as_mut().reset(now + self.timeout);
            }
            return Poll::Ready(due);
        }
    }
}
