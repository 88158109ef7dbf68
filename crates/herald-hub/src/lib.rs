//! # herald-hub
//!
//! The Herald hub: a real-time server on [`herald`] WebSockets. Rooms and channels,
//! broadcast, an Origin policy and JWT authentication checked before the upgrade, history
//! with offsets and epochs so that a reconnecting client recovers exactly what it missed,
//! presence, an HTTP publish API, Prometheus metrics and graceful shutdown.
//!
//! Clients talk to it in one of two ways:
//! - **plain mode**: any WebSocket client; the room comes from the path and query
//!   (`/chat?groupId=1234` is room `chat:1234`) and every message goes to the whole room;
//! - **protocol mode**: subprotocol `herald.v1` ([`herald_hub_protocol`]), with commands,
//!   replies, many subscriptions per connection, history, presence and recovery.
//!
//! Where to start: [`HubConfig`] (every setting and its default), [`Hub::new`], then
//! [`run`]. The [`broker::Broker`] trait is where history and cross-node fan-out plug in;
//! [`broker::MemoryBroker`] is the single-node default. `herald serve` (crate herald-cli)
//! is this crate behind a command line.
//!
//! The public items are what code that embeds the hub needs, and they are the stable part:
//! [`Hub`] and [`HubError`]; [`HubConfig`], its sections in [`config`] (per-namespace rules
//! in [`config::NamespaceConfig`]), the rules
//! [`HubConfig::validate`] checks ([`ConfigError`]) and [`BrokerConfig`]; [`run`]; the
//! [`broker`] module: the [`Broker`](broker::Broker) and [`BrokerEvents`](broker::BrokerEvents)
//! traits a broker crate implements and calls, [`MemoryBroker`](broker::MemoryBroker), the
//! payload, publication and history types, and (feature `conformance`) the shared conformance
//! suite; [`metrics`], read through [`Hub::metrics`]; and from [`auth`] the token
//! [`Claims`](auth::Claims) with [`issue_hs256`](auth::issue_hs256). Fan-out, sessions, rate
//! limits, the Origin policy, recovery and the HTTP routes are internal.
//!
//! ```no_run
//! use herald_hub::{Hub, HubConfig, run};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new(HubConfig::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! run(listener, hub, async {
//!     let _ = stopped.await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

pub mod auth;
mod broadcast;
pub mod broker;
pub mod config;
mod control;
mod direct;
mod fanout;
mod fetch;
mod hooks;
mod http;
mod hub;
mod limits;
pub mod metrics;
pub mod names;
mod namespace;
mod node;
mod origin;
mod pusher;
mod recovery;
pub mod reload;
mod server;
mod server_api;
mod service;
mod session;
mod transport;
mod users;
mod webhooks;

pub use config::{BrokerConfig, ConfigError, HubConfig};
pub use hub::{Hub, HubError};
pub use server::run;
