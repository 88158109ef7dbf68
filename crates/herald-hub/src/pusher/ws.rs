//! The Pusher connection route, `/app/{key}?protocol=7&client=…&version=…`.
//!
//! The Origin policy is checked before the upgrade (403), as for every WebSocket. An unknown
//! key or protocol version is answered the Pusher way: the upgrade completes, then a
//! `pusher:error` and a close with 4001 (unknown app) or 4007 (unsupported protocol).

use crate::auth::{Identity, query_param};
use crate::hub::Hub;
use crate::pusher::frame;
use crate::server::Permit;
use crate::session::{self, Grant, Mode};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use herald::upgrade::{UpgradeRejection, WebSocketUpgrade};
use herald::{CloseCode, Message};
use herald_hub_protocol::Disconnect;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

/// The protocol versions served: 7, and 5 and 6, which differ from it only in what the
/// server ignores.
const VERSIONS: [&str; 3] = ["5", "6", "7"];

pub(crate) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    Path(key): Path<String>,
    Extension(tracker): Extension<TaskTracker>,
    Extension(permit): Extension<Permit>,
    upgrade: Result<WebSocketUpgrade, UpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let response = rejection.into_response();
            hub.metrics.rejected(response.status().as_u16());
            return response;
        }
    };
    let request = upgrade.request();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !hub.live().origins.allows(request.origin(), host) {
        hub.metrics.rejected(403);
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let version = request.query().and_then(|q| query_param(q, "protocol"));
    let refusal = match (hub.pusher.by_key(&key), version.as_deref()) {
        (None, _) => Some((Disconnect::new(4001, "app does not exist"), "unknown_app")),
        (_, None) => Some((Disconnect::new(4008, "no protocol version"), "version")),
        (_, Some(v)) if !VERSIONS.contains(&v) => Some((
            Disconnect::new(4007, "unsupported protocol version"),
            "version",
        )),
        (Some(_), Some(_)) => None,
    };
    let config = hub.ws.clone();
    let token = tracker.token();
    if let Some((close, reason)) = refusal {
        hub.metrics.pusher_refusal(reason);
        return upgrade.config(config).on_upgrade(move |mut ws| async move {
            let error = frame::error(Some(close.code), close.reason);
            let closing = async {
                let _ = ws.send(Message::text(error)).await;
                let _ = ws.close(CloseCode::from(close.code), close.reason).await;
            };
            let _ = tokio::time::timeout(hub.ws.close_timeout, closing).await;
            hub.metrics.disconnected(close.code);
            drop((token, permit));
        });
    }
    let Some(app) = hub.pusher.by_key(&key).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let grant = Grant {
        identity: identity(),
        mode: Mode::Pusher(app),
        transport: session::Transport::WebSocket,
    };
    // `map`, not an `async` block: a block would keep its captured socket and grant beside
    // the session's own copies for the connection's whole life.
    upgrade.config(config).on_upgrade(move |ws| {
        let wire = session::WsWire { ws };
        session::run(hub, wire, grant).map(move |()| drop((token, permit)))
    })
}

/// A Pusher connection's identity: anonymous to the hub, with no channel patterns. Its
/// channels are granted by the app's signatures, checked in the session.
fn identity() -> Identity {
    Identity {
        user: String::new(),
        subscribe: Arc::from([]),
        publish: Arc::from([]),
        expires: None,
        subs: Vec::new(),
        anonymous: false,
        from_hook: false,
    }
}
