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
    /// Something arrived since the timer last fired.
    heard: bool,
    ping_sent: Option<Instant>,
}

impl Keepalive {
    pub(crate) fn new(interval: Duration, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            interval,
            timeout,
            sleep: Box::pin(tokio::time::sleep_until(now + interval)),
            heard: false,
            ping_sent: None,
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
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if std::mem::take(&mut self.heard) {
                self.ping_sent = None;
                self.sleep.as_mut().reset(now + self.interval);
                continue;
            }
            if self.ping_sent.is_some() {
                return Poll::Ready(Due::TimedOut);
            }
            self.ping_sent = Some(now);
            self.sleep.as_mut().reset(now + self.timeout);
            return Poll::Ready(Due::Ping);
        }
    }
}
