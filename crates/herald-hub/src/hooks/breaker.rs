//! A circuit breaker for calls to the backend: after `threshold` consecutive failures the
//! circuit opens and calls are skipped for `cooldown`; after it calls go through again, a
//! success closes the circuit and a failure opens it again at once. Pure over the time it is
//! given, so its rules are tested without a clock.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The breaker's state, shared by every handshake on the node.
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Failures since the last success, saturating.
    failures: u32,
    /// While set and in the future, calls are skipped.
    open_until: Option<Instant>,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` (at least 1) consecutive failures.
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether a call may be made at `now`.
    pub(crate) fn allows(&self, now: Instant) -> bool {
        self.lock().open_until.is_none_or(|until| now >= until)
    }

    /// A call succeeded (the backend answered, allow or deny): the circuit closes.
    pub(crate) fn success(&self) {
        *self.lock() = State::default();
    }

    /// A call failed at `now`; returns whether this failure opened the circuit.
    pub(crate) fn failure(&self, now: Instant) -> bool {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        if state.failures < self.threshold {
            return false;
        }
        state.open_until = Some(now + self.cooldown);
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every write leaves a consistent state; a panic elsewhere does not poison the rule.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(10);

    #[test]
    fn circuit_opens_after_threshold_consecutive_failures() {
        let b = Breaker::new(3, COOLDOWN);
        let t = Instant::now();
        assert!(!b.failure(t) && !b.failure(t));
        assert!(b.allows(t));
        assert!(b.failure(t));
        assert!(!b.allows(t));
        assert!(!b.allows(t + COOLDOWN - Duration::from_millis(1)));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = Breaker::new(2, COOLDOWN);
        let t = Instant::now();
        assert!(!b.failure(t));
        b.success();
        assert!(!b.failure(t));
        assert!(b.allows(t));
    }

    #[test]
    fn after_the_cooldown_calls_go_through_and_one_failure_reopens() {
        let b = Breaker::new(2, COOLDOWN);
        let t = Instant::now();
        b.failure(t);
        b.failure(t);
        let later = t + COOLDOWN;
        assert!(b.allows(later));
        assert!(b.failure(later), "still past the threshold");
        assert!(!b.allows(later));
        b.success();
        assert!(b.allows(later));
    }
}
