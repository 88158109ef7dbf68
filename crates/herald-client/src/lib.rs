//! # herald-client
//!
//! A tokio client of the Herald hub's protocol mode (`herald.v1`, docs/protocol.md) for
//! services, bots and games: what `web/herald.js` is for browsers, on the [`herald`]
//! WebSocket client and the wire types of [`herald_hub_protocol`].
//!
//! - **Connect** to a `ws://` or `wss://` URL with a [`Token`]: none, a static one, or a
//!   [`TokenProvider`] asked at every connect, when the hub pushes `refresh`, and after a
//!   4501 close.
//! - **Commands** are async methods of [`Client`] ([`publish`](Client::publish),
//!   [`history`](Client::history), [`presence`](Client::presence), [`ping`](Client::ping)),
//!   each answered by its reply (matched by id) or failed after
//!   [`ClientConfig::command_timeout`].
//! - **Subscriptions** ([`subscribe`](Client::subscribe)) survive reconnects: the client keeps
//!   each channel's last offset and epoch, resubscribes with `recover`, delivers what was
//!   missed, drops duplicates by offset, and says `recovered: false` when the gap cannot be
//!   filled. Channels the server subscribes the client to (`subscribed` pushes: a personal
//!   channel, a `subs` claim, the server API) are delivered the same way; after a reconnect the
//!   client reads what it missed on them with `history` since its last position.
//! - **Reconnects** use exponential [`Backoff`] with full jitter and follow the close codes
//!   ([`Disconnect::should_reconnect`](herald_hub_protocol::Disconnect::should_reconnect)). A
//!   connection that stays silent past the hub's ping interval is asked with a `ping` and
//!   dropped when no answer comes.
//! - **Events** ([`Event`]) arrive on one bounded `tokio::sync::mpsc` receiver, in order.
//! - **Bounded**: commands in flight, channels held, publications buffered and events queued
//!   all have limits in [`ClientConfig`], and the WebSocket's message size limit applies to
//!   everything the hub sends.
//!
//! It is not a server, and not a plain-mode client (any WebSocket client is one: [`herald`]).
//!
//! Start with [`Client::connect`]:
//!
//! ```no_run
//! use herald_client::{Client, ClientConfig, Event, SubscribeOptions, Token};
//!
//! # async fn run() -> herald_client::Result<()> {
//! let config = ClientConfig::new("ws://127.0.0.1:8080/ws").token(Token::Static("eyJ...".into()));
//! let (client, mut events) = Client::connect(config)?;
//! client.subscribe("chat:1", SubscribeOptions::default()).await?;
//! client.publish("chat:1", &serde_json::json!({"text": "hi"})).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Publication(p) => println!("{} #{}: {}", p.channel, p.offset, p.data),
//!         Event::Subscribed(s) if s.recovered == Some(false) => {
//!             // The gap could not be filled: reload the channel's state from the source.
//!         }
//!         Event::Disconnected(d) if !d.will_reconnect => break,
//!         _ => {}
//!     }
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! The connection lives on a task of its own; [`Client`] is a cheap handle to it, and
//! [`Event`]s come out in the order the client learned of them. While the event queue is full
//! the task stops reading the connection: read events steadily (a command awaited in the same
//! loop waits until the task can read its reply).

mod backoff;
mod channels;
mod client;
mod config;
mod driver;
mod error;
mod event;
mod token;

pub use backoff::Backoff;
pub use client::{Client, HistoryOptions, SubscribeOptions};
pub use config::ClientConfig;
pub use error::{Error, Result};
pub use event::{Disconnected, Event, Subscribed, Unsubscribed};
pub use token::{Token, TokenError, TokenProvider};

pub use herald::{CloseFrame, Closed, Initiator};

/// The wire types the client's results and events carry.
pub use herald_hub_protocol as protocol;
pub use herald_hub_protocol::{
    ClientInfo, Connected, ErrorBody, ErrorCode, HistoryResult, Membership, Publication,
    PublicationBody, PublishResult, StreamPosition,
};
