//! # herald
//!
//! An async WebSocket client and server on tokio, built on the sans-I/O engine
//! [`herald_proto`]. It moves bytes and owns flow control; every RFC 6455 rule lives in the
//! engine.
//!
//! Where to start:
//! - server: [`accept`] / [`accept_with`] on any `AsyncRead + AsyncWrite` stream, or
//!   [`read_request`] to decide asynchronously (authentication) before accepting;
//! - client: [`connect`] for a `ws://` or `wss://` URL, [`ClientBuilder`] for headers, Origin,
//!   subprotocols, timeouts and TLS;
//! - over HTTP/2 (RFC 8441, feature `http2`): [`h2`], with `ClientBuilder::connect_h2` and
//!   `h2::Http2Connection` on the client and `h2::server()` plus the axum extractor on the
//!   server;
//! - then [`WebSocket`]: `recv`/`send`/`close`, a `Stream` and a `Sink`, and `split` for two tasks.
//!
//! ```no_run
//! use herald::Message;
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> herald::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:9001").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut ws = herald::accept(tcp).await?;
//!         while let Some(message) = ws.recv().await {
//!             match message? {
//!                 m @ (Message::Text(_) | Message::Binary(_)) => ws.send(m).await?,
//!                 _ => {}
//!             }
//!         }
//!         Ok::<_, herald::Error>(())
//!     });
//! }
//! # }
//! ```

mod client;
mod config;
mod error;
#[cfg(feature = "http2")]
pub mod h2;
mod keepalive;
mod message;
mod server;
mod socket;
mod split;
mod stream;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "axum")]
pub mod upgrade;
mod write_timer;

pub use client::{ClientBuilder, connect};
pub use config::Config;
pub use error::{Error, Result};
pub use message::Message;
pub use server::{PendingHandshake, accept, accept_with, read_request};
pub use socket::WebSocket;
pub use split::{Reader, Writer};
pub use stream::MaybeTlsStream;

pub use bytes::Bytes;
pub use herald_proto::{
    self as proto, CloseCode, CloseFrame, Closed, DeflateConfig, Initiator, PreparedMessage,
    Utf8Bytes,
};
pub use http;

/// The opening handshake's types: requests, acceptances, refusals.
pub mod handshake {
    pub use herald_proto::handshake::{
        Accept, AcceptResponse, Accepted, ExtensionOffer, Request, Response,
    };
}
