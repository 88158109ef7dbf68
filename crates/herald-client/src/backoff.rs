//! Reconnect delays: exponential growth with full jitter (herald.js `backoffDelay`).

use std::time::Duration;

/// How long to wait before reconnect attempt `n` (0-based): a uniformly random delay below
/// `min × 2ⁿ`, capped at `max`. Full jitter spreads a crowd of clients that lost the same
/// server over the whole window instead of bringing them back in waves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The window of the first attempt. Default 500 ms.
    pub min: Duration,
    /// The largest window. Default 20 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(500),
            max: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The window of attempt `attempt`: `min × 2^attempt`, at most `max`.
    pub fn cap(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(30);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The delay of attempt `attempt` for a `random` number in `[0, 1)`.
    pub fn delay_with(&self, attempt: u32, random: f64) -> Duration {
        self.cap(attempt).mul_f64(random.clamp(0.0, 1.0))
    }

    /// The delay of attempt `attempt`, with a random number from the thread's generator.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_doubles_from_min_up_to_max() {
        let backoff = Backoff::default();
        assert_eq!(backoff.cap(0), Duration::from_millis(500));
        assert_eq!(backoff.cap(1), Duration::from_secs(1));
        assert_eq!(backoff.cap(5), Duration::from_secs(16));
        assert_eq!(backoff.cap(6), Duration::from_secs(20));
        assert_eq!(backoff.cap(u32::MAX), Duration::from_secs(20));
    }

    #[test]
    fn delay_stays_inside_the_window() {
        let backoff = Backoff::default();
        for attempt in 0..40 {
            for _ in 0..100 {
                assert!(backoff.delay(attempt) <= backoff.cap(attempt));
            }
        }
        assert_eq!(backoff.delay_with(3, 0.0), Duration::ZERO);
        assert_eq!(backoff.delay_with(3, 0.5), Duration::from_secs(2));
    }
}
