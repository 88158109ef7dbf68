//! Serving a Herald WebSocket from an axum 0.8 route (hyper 1.x upgrade), behind the `axum`
//! feature.
//!
//! ```no_run
//! use axum::{Router, routing::get, response::Response};
//! use herald::upgrade::WebSocketUpgrade;
//!
//! async fn chat(upgrade: WebSocketUpgrade) -> Response {
//!     upgrade.on_upgrade(|mut ws| async move {
//!         while let Some(Ok(message)) = ws.recv().await {
//!             if message.is_data() && ws.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! # async fn run() {
//! let app: Router = Router::new().route("/chat", get(chat));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

use crate::config::Config;
use crate::socket::WebSocket;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::FutureExt;
use futures_util::future::Either;
use herald_proto::Role;
use herald_proto::handshake::{Accept, Request};
use http::{StatusCode, request::Parts};
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite};

/// The transport of an upgraded hyper connection.
pub type UpgradedIo = TokioIo<hyper::upgrade::Upgraded>;

/// An axum extractor for a WebSocket handshake, checked by herald-proto (RFC 6455 §4.2.1).
#[derive(Debug)]
pub struct WebSocketUpgrade {
    request: Request,
    on_upgrade: hyper::upgrade::OnUpgrade,
    protocol: Option<String>,
    config: Config,
}

/// The refusal of a request that is not a valid WebSocket handshake (400, 405, 426).
#[derive(Debug)]
pub struct UpgradeRejection(herald_proto::handshake::Response);

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.0.body));
        *response.status_mut() = self.0.status;
        *response.headers_mut() = self.0.headers;
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request = if parts.version == http::Version::HTTP_2 {
            // RFC 8441 §4: over HTTP/2, a WebSocket opens with an extended CONNECT.
            Request::from_extended_connect(
                &parts.method,
                extended_protocol(parts),
                parts.uri.clone(),
                parts.headers.clone(),
            )
        } else {
            Request::from_http(
                &parts.method,
                parts.version,
                parts.uri.clone(),
                parts.headers.clone(),
            )
        }
        .map_err(UpgradeRejection)?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| {
                UpgradeRejection(herald_proto::handshake::Response::text(
                    StatusCode::UPGRADE_REQUIRED,
                    "connection cannot be upgraded",
                ))
            })?;
        Ok(Self {
            request,
            on_upgrade,
            protocol: None,
            config: Config::default(),
        })
    }
}

/// The `:protocol` of an HTTP/2 extended CONNECT, which hyper carries as an extension.
#[cfg(feature = "http2")]
fn extended_protocol(parts: &Parts) -> Option<&str> {
    parts
        .extensions
        .get::<hyper::ext::Protocol>()
        .map(hyper::ext::Protocol::as_str)
}

#[cfg(not(feature = "http2"))]
fn extended_protocol(_parts: &Parts) -> Option<&str> {
    None
}

impl WebSocketUpgrade {
    /// The handshake request: path, query, headers, Origin, cookies, offered subprotocols.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Chooses the first of `supported` that the client offered, if any.
    pub fn protocols<I: IntoIterator<Item = &'static str>>(mut self, supported: I) -> Self {
        let offered = self.request.subprotocols();
        self.protocol = supported
            .into_iter()
            .find(|p| offered.iter().any(|o| o == p))
            .map(str::to_owned);
        self
    }

    /// Connection settings; with [`Config::deflate`] set, permessage-deflate is negotiated.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Whether the request came over HTTP/2 as an extended CONNECT (RFC 8441), answered 200.
    pub fn is_http2(&self) -> bool {
        self.request.is_extended_connect()
    }

    /// Answers 101 (200 over HTTP/2) and runs `callback` with the WebSocket once hyper hands over the connection.
    ///
    /// The response is the engine's ([`Request::accept`]), with permessage-deflate negotiated
    /// from [`Config::deflate`]: the same headers, in the same order, as the one
    /// [`accept_with`](crate::accept_with) writes on a raw transport (hyper adds `Date` and
    /// writes names in lower case).
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<UpgradedIo>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_upgrade_with(
            |upgraded| (TokioIo::new(upgraded), BytesMut::new()),
            callback,
        )
    }

    /// As [`on_upgrade`](Self::on_upgrade), with the transport chosen by `io` from hyper's
    /// upgraded connection: for a server that takes its own stream back with
    /// [`Upgraded::downcast`](hyper::upgrade::Upgraded::downcast) (to write to the socket
    /// itself, or to drop hyper's wrapper). `io` returns the transport and the bytes already
    /// read past the handshake (a downcast's `read_buf`), which the WebSocket reads first.
    ///
    /// ```no_run
    /// use axum::response::Response;
    /// use bytes::BytesMut;
    /// use herald::upgrade::WebSocketUpgrade;
    /// use hyper_util::rt::TokioIo;
    ///
    /// async fn echo(upgrade: WebSocketUpgrade) -> Response {
    ///     let io = |upgraded| (TokioIo::new(upgraded), BytesMut::new());
    ///     upgrade.on_upgrade_with(io, |mut ws| async move {
    ///         while let Some(Ok(message)) = ws.recv().await {
    ///             if message.is_data() && ws.send(message).await.is_err() {
    ///                 break;
    ///             }
    ///         }
    ///     })
    /// }
    /// ```
    pub fn on_upgrade_with<S, M, F, Fut>(self, io: M, callback: F) -> Response
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        M: FnOnce(hyper::upgrade::Upgraded) -> (S, BytesMut) + Send + 'static,
        F: FnOnce(WebSocket<S>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = Accept {
            subprotocol: self.protocol,
            ..Accept::default()
        };
        let accepted = match self.request.accept(accept, self.config.deflate.as_ref()) {
            Ok(accepted) => accepted,
            // `protocols` picks only offered subprotocols and no extra header is set, so the
            // engine has nothing to refuse; should that change, fail closed without details.
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        let deflate = accepted.deflate();
        // Boxed, and consumed once the socket exists: a captured `Config` (or a `ws` local
        // beside the callback's future) would stay in the connection's task for its whole
        // life, as every captured value does.
        let config = Box::new(self.config);
        // Boxed for the same reason: calling it moves what it captured into its future.
        let callback = Box::new(callback);
        let on_upgrade = self.on_upgrade;
        // Two futures chained rather than one `async` block: a block keeps what it captured
        // (the upgrade, `io`, the boxes, the parameters) beside the callback's future for the
        // connection's whole life; `then` drops the first future before it starts the second.
        let open = async move {
            let upgraded = on_upgrade.await.ok()?;
            let (io, buffered) = io(upgraded);
            Some(open_upgraded(io, buffered, config, deflate))
        };
        tokio::spawn(open.then(|ws| match ws {
            Some(ws) => Either::Left(callback(ws)),
            None => Either::Right(std::future::ready(())),
        }));
        accepted.into_http(Body::empty())
    }
}

/// The server's socket over an upgraded HTTP connection; `config` is freed here.
fn open_upgraded<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    buffered: BytesMut,
    config: Box<Config>,
    deflate: Option<herald_proto::DeflateParams>,
) -> WebSocket<S> {
    WebSocket::with_extensions(io, Role::Server, &config, buffered, deflate)
}
