//! The error type of the async API.

use herald_proto::{HandshakeError, MisuseError, ProtocolError};

/// What can go wrong on a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed; the connection is gone.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol; the connection was failed with the error's close code.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The opening handshake failed; for a refusal, the server's status, headers and body.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// A server refused a request (the refusal was written to the client).
    #[error("handshake refused with {0}")]
    Refused(http::StatusCode),
    /// The application used the connection wrongly (e.g. sent after closing).
    #[error("{0}")]
    Misuse(#[from] MisuseError),
    /// The opening handshake did not finish within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer did not answer a keepalive Ping in time; the connection was dropped.
    #[error("keepalive timed out")]
    KeepaliveTimeout,
    /// Bytes were queued and the transport accepted none of them for
    /// [`Config::write_timeout`](crate::Config::write_timeout): the peer stopped reading. The
    /// connection was abandoned without a closing handshake (the peer would not read the
    /// Close) and what was queued dropped; drop the connection to release the transport.
    #[error("write timed out")]
    WriteTimeout,
    /// TLS could not be set up (bad certificate or key, invalid server name).
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP/2 connection failed, or the server did not choose h2 by ALPN (RFC 8441).
    #[error("HTTP/2: {0}")]
    Http2(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
