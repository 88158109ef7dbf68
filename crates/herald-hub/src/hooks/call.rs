//! The machinery every hook shares: one POST of JSON to the backend under a timeout, a
//! permit of a bounded semaphore (`try_acquire`: past the bound the call is not made), the
//! circuit breaker, and `herald_hook_calls_total{hook,outcome}` and
//! `herald_hook_latency_seconds{hook}`.

use super::breaker::Breaker;
use crate::fetch::{self, FetchError, HttpUrl, Outgoing};
use crate::metrics::Metrics;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Why no answer came: the hook's failure rule (`fail_open`) applies, except to
/// [`Overloaded`](Self::Overloaded) for the connect hook, which is always a 503.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// `max_in_flight` calls are already waiting; no call was made.
    #[error("too many calls in flight")]
    Overloaded,
    /// The circuit is open after consecutive failures; no call was made.
    #[error("circuit open")]
    OpenCircuit,
    /// The call failed: unreachable, another status than 200, an answer too large or not
    /// JSON of the expected shape, or past the timeout.
    #[error("{0}")]
    Call(#[from] FetchError),
}

impl Failure {
    /// The `outcome` label of `herald_hook_calls_total`.
    fn outcome(&self) -> &'static str {
        match self {
            Self::Overloaded => "overloaded",
            Self::OpenCircuit => "open_circuit",
            Self::Call(FetchError::Timeout) => "timeout",
            Self::Call(_) => "error",
        }
    }
}

/// The bounds on calling one hook.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// How long one call may take, connect to the last byte.
    pub(crate) timeout: Duration,
    /// Calls in flight at once on this node.
    pub(crate) max_in_flight: usize,
    /// Consecutive failures that open the circuit.
    pub(crate) breaker_failures: u32,
    /// How long an open circuit skips calls.
    pub(crate) breaker_cooldown: Duration,
    /// The largest answer read, bytes; a larger one is a failed call.
    pub(crate) max_answer: usize,
}

/// One hook's endpoint and bounds, shared by every connection on the node.
pub(crate) struct Caller {
    hook: &'static str,
    url: HttpUrl,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    bounds: Bounds,
    in_flight: Semaphore,
    breaker: Breaker,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("hook", &self.hook)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// The caller of hook `hook` (the metrics label) at `url`, configured at `key`; `None`
    /// without a URL. (`HubConfig::validate` refused a URL that does not parse.)
    pub(crate) fn new(
        hook: &'static str,
        url: Option<&str>,
        key: &str,
        bounds: Bounds,
        metrics: Arc<Metrics>,
    ) -> Option<Self> {
        let url = HttpUrl::parse(url?)?;
        Some(Self {
            hook,
            tls: fetch::tls_for(&url, key),
            url,
            bounds,
            in_flight: Semaphore::new(bounds.max_in_flight),
            breaker: Breaker::new(bounds.breaker_failures, bounds.breaker_cooldown),
            metrics,
        })
    }

    /// POSTs `body`, reads the answer with `read`, and counts the outcome: `outcome` names a
    /// successful one (`allow`, `deny`, `ok`), a failure names itself.
    ///
    /// # Errors
    /// [`Failure`]: no answer; the caller applies the failure rule.
    pub(crate) async fn post<T>(
        &self,
        body: Bytes,
        read: impl FnOnce(&[u8]) -> Result<T, FetchError>,
        outcome: impl FnOnce(&T) -> &'static str,
    ) -> Result<T, Failure> {
        let result = self.call(body, read).await;
        let label = match &result {
            Ok(answer) => outcome(answer),
            Err(failure) => failure.outcome(),
        };
        self.metrics.hook_call(self.hook, label);
        result
    }

    async fn call<T>(
        &self,
        body: Bytes,
        read: impl FnOnce(&[u8]) -> Result<T, FetchError>,
    ) -> Result<T, Failure> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Err(Failure::Overloaded);
        };
        if !self.breaker.allows(Instant::now()) {
            return Err(Failure::OpenCircuit);
        }
        let started = Instant::now();
        // Boxed: the exchange (TCP, TLS, HTTP) is a future of several KiB, and every caller's
        // future would be as large as its largest state for its whole life — a session's for
        // as long as its connection lasts, idle or not. One allocation per backend call.
        let sent = Box::pin(fetch::call(
            &self.url,
            self.tls.as_ref(),
            Outgoing::PostJson(body),
            self.bounds.max_answer,
        ));
        let answer = tokio::time::timeout(self.bounds.timeout, sent)
            .await
            .unwrap_or(Err(FetchError::Timeout));
        self.metrics
            .hook_latency(self.hook, started.elapsed().as_secs_f64());
        match answer.and_then(|a| read(&a)) {
            Ok(answer) => {
                self.breaker.success();
                Ok(answer)
            }
            Err(e) => {
                if self.breaker.failure(Instant::now()) {
                    tracing::warn!(hook = self.hook, error = %e, "hook failing: circuit open");
                } else {
                    tracing::debug!(hook = self.hook, error = %e, "hook call failed");
                }
                Err(Failure::Call(e))
            }
        }
    }
}
