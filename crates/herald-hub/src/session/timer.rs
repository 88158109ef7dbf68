//! A session's optional deadlines (token expiry, refresh notice, idle), each allocated the
//! first time it is set: most connections never set one, and inline each would cost the
//! connection's task a tokio `Sleep` (112 bytes) for its whole life.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

/// A deadline that never fires until it is set.
#[derive(Debug, Default)]
pub(super) struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Fires at `at` (the timer is made on the first call, moved on later ones).
    pub(super) fn set(&mut self, at: Instant) {
        match &mut self.sleep {
            Some(sleep) if sleep.deadline() == at => {}
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn an_unset_deadline_never_fires_and_a_set_one_fires_at_its_instant() {
        let mut deadline = Deadline::default();
        let waited = tokio::time::timeout(Duration::from_secs(3600), &mut deadline).await;
        assert!(waited.is_err(), "an unset deadline fired");
        let at = Instant::now() + Duration::from_secs(5);
        deadline.set(at + Duration::from_secs(60));
        deadline.set(at);
        (&mut deadline).await;
        assert_eq!(Instant::now(), at);
    }
}
