//! Redis failures as broker errors.

use herald_hub::broker::BrokerError;
use redis::{ErrorKind, RedisError};
use std::future::Future;
use std::time::Duration;

/// How long one broker operation may take before it counts as "Redis unavailable".
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// A Redis error as a broker error: answers we could not use are internal, everything else
/// (refused, dropped, timed out, loading, read-only replica…) means "unavailable, retry".
pub(crate) fn broker_error(e: &RedisError) -> BrokerError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType | ErrorKind::InvalidClientConfig => {
            BrokerError::Internal(e.to_string())
        }
        _ => BrokerError::Unavailable(e.to_string()),
    }
}

/// Runs a Redis operation under [`OP_TIMEOUT`].
pub(crate) async fn bounded<T>(
    op: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(broker_error(&e)),
        Err(_) => Err(BrokerError::Unavailable(
            "redis did not answer in time".into(),
        )),
    }
}
