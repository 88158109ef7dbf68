//! WebSocket over HTTP/2 (RFC 8441), behind the `http2` feature: the client's extended
//! CONNECT, and the server settings that allow it.
//!
//! The WebSocket protocol is unchanged on an HTTP/2 stream: the same frames, masking and
//! permessage-deflate, through the same [`WebSocket`]. Only the opening handshake differs:
//!
//! - the server advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3; [`server`]);
//! - the client waits for it, then sends `:method` CONNECT, `:protocol` websocket,
//!   `Sec-WebSocket-Version: 13` and its offers, without `Sec-WebSocket-Key` (§4, §5);
//! - the server answers 200 instead of 101, without `Sec-WebSocket-Accept`; the stream's DATA
//!   frames then carry the WebSocket's bytes.
//!
//! On the server, [`WebSocketUpgrade`](crate::upgrade::WebSocketUpgrade) accepts both
//! handshakes: route `GET` and `CONNECT` to it and serve with [`server`]'s builder. On the
//! client, [`ClientBuilder::connect_h2`] opens a connection for one WebSocket;
//! [`Http2Connection`] carries many WebSockets and plain requests on one connection.
//!
//! ```no_run
//! use axum::{Router, routing::on, routing::MethodFilter};
//! use herald::upgrade::WebSocketUpgrade;
//!
//! async fn echo(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade.on_upgrade(|mut ws| async move {
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if message.is_data() && ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() -> herald::Result<()> {
//! let app: Router = Router::new().route("/echo", on(MethodFilter::GET.or(MethodFilter::CONNECT), echo));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     loop {
//!         let Ok((tcp, _)) = listener.accept().await else { break };
//!         let app = app.clone();
//!         tokio::spawn(async move {
//!             let service = hyper_util::service::TowerToHyperService::new(app);
//!             let io = hyper_util::rt::TokioIo::new(tcp);
//!             let _ = herald::h2::server().serve_connection_with_upgrades(io, service).await;
//!         });
//!     }
//! });
//! // h2c prior knowledge for ws://, h2 by ALPN for wss://.
//! let url = format!("ws://{addr}/echo");
//! let (mut ws, _accepted) = herald::ClientBuilder::new(&url)?.connect_h2().await?;
//! ws.send(herald::Message::text("over HTTP/2")).await?;
//! # Ok(()) }
//! ```

use crate::client::ClientBuilder;
use crate::error::{Error, Result};
use crate::socket::WebSocket;
use crate::stream::MaybeTlsStream;
use axum::body::Body;
use herald_proto::handshake::{Accepted, Response};
use herald_proto::{HandshakeError, Role};
use http_body_util::BodyExt as _;
use hyper::client::conn::http2::{Connection, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

/// An HTTP/1.1 and HTTP/2 server connection builder (hyper-util's `auto`) whose HTTP/2 side
/// advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3), so that clients may open
/// WebSockets with an extended CONNECT. Serve with `serve_connection_with_upgrades`.
pub fn server() -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http2().enable_connect_protocol();
    builder
}

/// A client's HTTP/2 connection on which the server enabled extended CONNECT: WebSockets
/// ([`websocket`](Self::websocket)) and plain requests ([`send_request`](Self::send_request))
/// share it, each on its own stream. Cloning shares the connection; it closes when the
/// last clone and the last WebSocket on it are dropped.
#[derive(Clone, Debug)]
pub struct Http2Connection {
    send: SendRequest<Body>,
}

impl Http2Connection {
    /// Opens the connection for `builder`'s URL: h2c with prior knowledge for `ws://`, h2
    /// chosen by ALPN after TLS for `wss://`. Then waits, up to the handshake timeout, for
    /// the server's `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Tls`]; [`Error::Http2`] when the server did not choose h2 by
    /// ALPN or the HTTP/2 handshake failed; [`Error::HandshakeTimeout`] when the server did
    /// not enable extended CONNECT in time.
    pub async fn open(builder: &ClientBuilder) -> Result<Self> {
        let stream = builder.open_transport(true).await?;
        #[cfg(feature = "tls")]
        if let MaybeTlsStream::Tls(tls) = &stream
            && tls.get_ref().1.alpn_protocol() != Some(b"h2")
        {
            return Err(Error::Http2("the server did not choose h2 by ALPN".into()));
        }
        Self::handshake(stream, builder.config.handshake_timeout).await
    }

    /// Speaks HTTP/2 (prior knowledge) on an open transport and waits, up to `timeout`, for
    /// the server's `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3: a client must not send
    /// an extended CONNECT before it).
    ///
    /// # Errors
    /// As for [`open`](Self::open), less the connection errors.
    pub async fn handshake<S>(io: S, timeout: std::time::Duration) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let settled = Arc::new(Notify::new());
        let executor = Exec(Arc::downgrade(&settled));
        let exchange = async {
            let (send, mut connection) =
                hyper::client::conn::http2::handshake(executor, TokioIo::new(io))
                    .await
                    .map_err(http2_error)?;
            wait_for_extended_connect(&mut connection, &settled).await?;
            tokio::spawn(connection);
            Ok::<_, Error>(Self { send })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::HandshakeTimeout)?
    }

    /// Opens a WebSocket on a new stream of this connection with `builder`'s request
    /// (path, Origin, subprotocols, headers) and settings; its URL's host and port are not
    /// dialed again.
    ///
    /// # Errors
    /// [`Error::Handshake`] when the server refuses (its status, headers and at most
    /// `max_body_size` of its body) or answers wrongly; [`Error::Http2`] when the stream
    /// fails; [`Error::HandshakeTimeout`].
    pub async fn websocket(
        &self,
        builder: &ClientBuilder,
    ) -> Result<(WebSocket<MaybeTlsStream>, Accepted)> {
        let config = &builder.config;
        let mut request = builder.request.clone();
        if let Some(settings) = &config.deflate {
            request = request.extension(herald_proto::deflate::client_offer(settings));
        }
        let (parts, ()) = request.extended_connect().into_parts();
        let mut connect = http::Request::from_parts(parts, Body::empty());
        connect
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let max_body = config.handshake_limits.max_body_size;
        let exchange = async {
            let mut response = self
                .send
                .clone()
                .send_request(connect)
                .await
                .map_err(http2_error)?;
            if !response.status().is_success() {
                let refusal = Box::new(refusal(response, max_body).await);
                return Err(HandshakeError::Rejected(refusal).into());
            }
            let upgraded = hyper::upgrade::on(&mut response)
                .await
                .map_err(http2_error)?;
            let (parts, _) = response.into_parts();
            let answer = Response {
                status: parts.status,
                headers: parts.headers,
                body: bytes::Bytes::new(),
            };
            Ok::<_, Error>((upgraded, request.check_extended_connect(answer)?))
        };
        let (upgraded, accepted) = tokio::time::timeout(config.handshake_timeout, exchange)
            .await
            .map_err(|_| Error::HandshakeTimeout)??;
        let deflate = crate::client::negotiated_deflate(config, &accepted)?;
        let io = MaybeTlsStream::H2(Box::new(TokioIo::new(upgraded)));
        let ws = WebSocket::with_extensions(io, Role::Client, config, Default::default(), deflate);
        Ok((ws, accepted))
    }

    /// Sends a plain HTTP request on a new stream of this connection.
    ///
    /// # Errors
    /// [`Error::Http2`] when the request or its stream fails.
    pub async fn send_request(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        self.send
            .clone()
            .send_request(request)
            .await
            .map_err(http2_error)
    }
}

impl ClientBuilder {
    /// Opens an HTTP/2 connection ([`Http2Connection::open`]) and one WebSocket on it
    /// ([`Http2Connection::websocket`]). The connection lives as long as the WebSocket.
    ///
    /// # Errors
    /// As for those two.
    pub async fn connect_h2(self) -> Result<(WebSocket<MaybeTlsStream>, Accepted)> {
        let connection = Http2Connection::open(&self).await?;
        connection.websocket(&self).await
    }
}

/// The server's refusal, with at most `max` bytes of its body.
async fn refusal(response: http::Response<hyper::body::Incoming>, max: usize) -> Response {
    let (parts, body) = response.into_parts();
    let limited = http_body_util::Limited::new(body, max);
    let body = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    };
    Response {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Drives the connection until the server's settings enable extended CONNECT. hyper runs
/// the HTTP/2 connection in a task of its own ([`Exec`]), which wakes `settled` each time it
/// made progress; the setting is read after each.
async fn wait_for_extended_connect<S>(
    connection: &mut Connection<TokioIo<S>, Body, Exec>,
    settled: &Notify,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let progress = settled.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        if connection.is_extended_connect_protocol_enabled() {
            return Ok(());
        }
        tokio::select! {
            () = progress => {}
            ended = &mut *connection => {
                return Err(match ended {
                    Err(e) => http2_error(e),
                    Ok(()) => Error::Http2("the server closed the connection".into()),
                });
            }
        }
    }
}

fn http2_error(e: hyper::Error) -> Error {
    Error::Http2(e.to_string())
}

/// hyper's executor for the client: tokio, with each poll of the spawned futures (the
/// HTTP/2 connection among them) announced on a `Notify` while someone waits for the
/// server's settings; once that waiter is gone the announcements stop.
#[derive(Clone, Debug)]
struct Exec(Weak<Notify>);

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Announced {
            future: Box::pin(future),
            notify: self.0.clone(),
        });
    }
}

struct Announced<F> {
    future: Pin<Box<F>>,
    notify: Weak<Notify>,
}

impl<F: Future> Future for Announced<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let poll = self.future.as_mut().poll(cx);
        if let Some(notify) = self.notify.upgrade() {
            notify.notify_waiters();
        }
        poll
    }
}
