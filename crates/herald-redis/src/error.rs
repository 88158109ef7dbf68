//! Redis failures as broker errors.
//!
//! What a failure means depends on whether the command reached Redis and whether it changes
//! anything there. Only a failure to talk to Redis makes the broker unavailable (and its
//! health degraded); an error *reply* means Redis is up and refused this one command, which a
//! client's input must never turn into a degraded node.

use herald_hub::broker::BrokerError;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use std::future::Future;
use std::time::Duration;

/// How an operation on Redis failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The command never reached Redis: the connection was refused or could not be set up.
    NotSent,
    /// The command may have reached Redis but no answer came: timed out, or the connection
    /// dropped.
    NoAnswer,
    /// Redis answered with an error reply.
    ErrorReply,
    /// The answer could not be used, or the client is misconfigured.
    Unusable,
}

/// A failed Redis operation.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    detail: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn from_redis(e: &RedisError) -> Self {
        let kind = match e.kind() {
            // Refused before running: the shard or master is failing over (a cluster with a
            // slot unserved, a master gone, a demoted master refusing writes, a server
            // loading its data). Nothing ran, and Redis is, for this key, out of reach.
            ErrorKind::Server(
                ServerErrorKind::ClusterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::BusyLoading,
            )
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::MasterNameNotFoundBySentinel
            | ErrorKind::NoValidReplicasFoundBySentinel => FailureKind::NotSent,
            ErrorKind::Server(_) | ErrorKind::Extension => FailureKind::ErrorReply,
            ErrorKind::Io if e.is_connection_refusal() => FailureKind::NotSent,
            // A command may have been written before the connection broke.
            ErrorKind::Io => FailureKind::NoAnswer,
            // The connection was refused at its setup, before any command.
            ErrorKind::AuthenticationFailed => FailureKind::NotSent,
            _ => FailureKind::Unusable,
        };
        Self::new(kind, e.to_string())
    }

    /// Whether Redis is out of reach: the only failures that make health degraded.
    pub(crate) fn is_connection(&self) -> bool {
        matches!(self.kind, FailureKind::NotSent | FailureKind::NoAnswer)
    }

    /// As the error of a command that changes nothing a client could see twice (a read, a
    /// SUBSCRIBE, a presence change the next refresh repeats).
    pub(crate) fn into_read_error(self) -> BrokerError {
        if self.is_connection() {
            BrokerError::Unavailable(self.detail)
        } else {
            BrokerError::Internal(self.detail)
        }
    }

    /// As the error of a publish: one that went out unanswered may have taken effect.
    pub(crate) fn into_publish_error(self) -> BrokerError {
        match self.kind {
            FailureKind::NotSent => BrokerError::Unavailable(self.detail),
            FailureKind::NoAnswer => BrokerError::OutcomeUnknown(self.detail),
            FailureKind::ErrorReply | FailureKind::Unusable => BrokerError::Internal(self.detail),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Runs a Redis operation for at most `timeout`.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    op: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::from_redis(&e)),
        Err(_) => Err(Failure::new(
            FailureKind::NoAnswer,
            "redis did not answer in time",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io;

    fn io_error(kind: io::ErrorKind) -> RedisError {
        RedisError::from(io::Error::new(kind, "test"))
    }

    #[test]
    fn error_replies_are_internal_and_never_unavailable() {
        let reply = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "ERR Invalid stream ID",
        ));
        let failure = Failure::from_redis(&reply);
        assert!(!failure.is_connection());
        assert!(matches!(
            failure.into_read_error(),
            BrokerError::Internal(_)
        ));
        let unknown = RedisError::from((ErrorKind::Extension, "OOM command not allowed"));
        assert!(matches!(
            Failure::from_redis(&unknown).into_publish_error(),
            BrokerError::Internal(_)
        ));
    }

    #[test]
    fn a_refused_connection_published_nothing_and_a_dropped_one_may_have() {
        let refused = Failure::from_redis(&io_error(io::ErrorKind::ConnectionRefused));
        assert!(refused.is_connection());
        assert!(matches!(
            refused.into_publish_error(),
            BrokerError::Unavailable(_)
        ));
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::TimedOut] {
            let dropped = Failure::from_redis(&io_error(kind));
            assert!(dropped.is_connection());
            assert!(matches!(
                dropped.into_publish_error(),
                BrokerError::OutcomeUnknown(_)
            ));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_operation_times_out_as_no_answer() {
        let never = std::future::pending::<Result<(), RedisError>>();
        let failure = bounded(Duration::from_secs(3), never).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::NoAnswer);
        assert!(matches!(
            failure.into_read_error(),
            BrokerError::Unavailable(_)
        ));
    }
}
