//! Accepting connections: the server's opening handshake over any transport.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::socket::WebSocket;
use herald_proto::Role;
use herald_proto::handshake::{Accept, Request, RequestReader, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A request that passed RFC 6455 §4.2.1's checks, with its transport, waiting to be accepted
/// or rejected, e.g. after an asynchronous authentication.
#[derive(Debug)]
pub struct PendingHandshake<S> {
    io: S,
    request: Request,
    reader: RequestReader,
    config: Config,
}

/// Reads and checks a handshake request. A malformed one is answered (400, 405, 426, 431) and
/// reported as [`Error::Refused`].
///
/// # Errors
/// [`Error::Refused`], [`Error::HandshakeTimeout`], [`Error::Io`].
pub async fn read_request<S>(mut io: S, config: &Config) -> Result<PendingHandshake<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let read = async {
        let mut reader = RequestReader::new(config.handshake_limits.clone());
        loop {
            match reader.poll_request() {
                Ok(Some(request)) => return Ok((request, reader)),
                Ok(None) => {}
                Err(refusal) => return Err(Stop::Refuse(refusal)),
            }
            let buf = reader.read_buffer();
            buf.reserve(1024);
            match io.read_buf(buf).await {
                Ok(0) => {
                    return Err(Stop::Fail(Error::Io(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(Stop::Fail(e.into())),
            }
        }
    };
    let outcome = tokio::time::timeout(config.handshake_timeout, read)
        .await
        .map_err(|_| Error::HandshakeTimeout)?;
    match outcome {
        Ok((request, reader)) => Ok(PendingHandshake {
            io,
            request,
            reader,
            config: config.clone(),
        }),
        Err(Stop::Fail(error)) => Err(error),
        Err(Stop::Refuse(refusal)) => Err(write_refusal(&mut io, &refusal).await),
    }
}

/// Why reading a request stopped without one.
enum Stop {
    Fail(Error),
    Refuse(Response),
}

async fn write_refusal<S: AsyncWrite + Unpin>(io: &mut S, refusal: &Response) -> Error {
    let bytes = refusal.encode();
    let _ = io.write_all(&bytes).await;
    let _ = io.shutdown().await;
    Error::Refused(refusal.status)
}

impl<S: AsyncRead + AsyncWrite + Unpin> PendingHandshake<S> {
    /// The request: path, query, headers, Origin, cookies, offered subprotocols and extensions.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Completes the handshake with a 101. With [`Config::deflate`] set, permessage-deflate
    /// is negotiated from the client's offers (by the engine, as for every driver).
    ///
    /// # Errors
    /// [`Error::Misuse`] for a subprotocol that was not offered or an extra header that the
    /// handshake sets itself (nothing is written then, and the transport is dropped);
    /// [`Error::Io`].
    pub async fn accept(mut self, accept: Accept) -> Result<WebSocket<S>> {
        let response = self.request.accept(accept, self.config.deflate.as_ref())?;
        self.io.write_all(&response.encode()).await?;
        let buffered = self.reader.into_remaining();
        Ok(WebSocket::with_extensions(
            self.io,
            Role::Server,
            &self.config,
            buffered,
            response.deflate(),
        ))
    }

    /// Refuses the handshake with `response` (401, 403, ...) and closes the transport.
    ///
    /// # Errors
    /// Always [`Error::Refused`] with the status, so that `?` ends the caller's handler.
    pub async fn reject(self, response: Response) -> Result<()> {
        Err(self.refuse(&response).await)
    }

    async fn refuse(mut self, response: &Response) -> Error {
        write_refusal(&mut self.io, response).await
    }
}

/// Accepts a WebSocket on `io` with default settings, whatever the request.
///
/// # Errors
/// As for [`accept_with`].
pub async fn accept<S>(io: S) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(io, &Config::default(), |_| Ok(Accept::default())).await
}

/// Accepts a WebSocket on `io`; `decide` sees the request and accepts it (subprotocol, extra
/// headers) or returns the refusal to send (status, headers, body).
///
/// ```no_run
/// use herald::{Config, http::StatusCode};
/// use herald::handshake::{Accept, Response};
///
/// # async fn run(tcp: tokio::net::TcpStream) -> herald::Result<()> {
/// let ws = herald::accept_with(tcp, &Config::default(), |request| {
///     if request.origin() == Some("https://example.com") {
///         Ok(Accept::default())
///     } else {
///         Err(Response::text(StatusCode::FORBIDDEN, "origin not allowed"))
///     }
/// })
/// .await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Refused`] when the request was malformed or `decide` refused it;
/// [`Error::HandshakeTimeout`]; [`Error::Io`].
pub async fn accept_with<S, F>(io: S, config: &Config, decide: F) -> Result<WebSocket<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> std::result::Result<Accept, Response>,
{
    // Boxed: the handshake's state (the request, its buffers) is several KiB, and a future
    // holding it inline would keep that much in the connection's task for its whole life.
    Box::pin(async move {
        let pending = read_request(io, config).await?;
        match decide(pending.request()) {
            Ok(accept) => pending.accept(accept).await,
            Err(refusal) => Err(pending.refuse(&refusal).await),
        }
    })
    .await
}
