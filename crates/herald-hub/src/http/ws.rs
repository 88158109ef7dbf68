//! The WebSocket upgrade: handshake checks (herald-proto), then Origin (403), credentials
//! (401), room (400), in that order, all before the 101. The per-IP limit (429) was applied
//! at accept (`server.rs`); the connection's slots ride along in its `Permit`.

use crate::auth::find_token;
use crate::hub::Hub;
use crate::names::{self, RoomError};
use crate::server::Permit;
use crate::session::{self, Grant, Mode};
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald::upgrade::{UpgradeRejection, WebSocketUpgrade};
use herald_hub_protocol::SUBPROTOCOL;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

pub(super) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    match check(&hub, &upgrade).await {
        Ok(grant) => {
            let config = hub.ws.clone();
            let upgrade = match grant.mode {
                Mode::Protocol => upgrade.protocols([SUBPROTOCOL]),
                Mode::Plain { .. } => upgrade,
            };
            // Graceful shutdown waits for this session through the tracker token.
            let token = tracker.token();
            upgrade.config(config).on_upgrade(move |ws| async move {
                // herald's close timeout bounds the closing handshake; the wire holds to it
                // even against a client that keeps sending after our Close.
                let wire = session::WsWire {
                    ws,
                    close_wait: hub.ws.close_timeout,
                };
                session::run(hub, wire, grant).await;
                drop((token, permit));
            })
        }
        Err((status, reason)) => {
            hub.metrics.rejected(status.as_u16());
            tracing::debug!(%peer, status = status.as_u16(), reason, "handshake refused");
            let mut response = (status, format!("{reason}\n")).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

async fn check(hub: &Hub, upgrade: &WebSocketUpgrade) -> Result<Grant, (StatusCode, &'static str)> {
    let request = upgrade.request();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !hub.origins.allows(request.origin(), host) {
        return Err((StatusCode::FORBIDDEN, "origin not allowed"));
    }
    let token = find_token(request.headers(), request.query(), &hub.config.auth);
    let identity = hub
        .auth
        .authenticate(token.as_deref())
        .await
        .map_err(|e| (StatusCode::UNAUTHORIZED, e.reason()))?;
    let protocol = request.subprotocols().iter().any(|p| p == SUBPROTOCOL);
    let mode = if protocol {
        Mode::Protocol
    } else {
        let routes = &hub.config.plain.routes;
        let room = names::plain_room(routes, request.path(), request.query()).map_err(refusal)?;
        // `HubConfig::validate` refuses routes into unknown namespaces; checked all the same,
        // so no room reaches a session without its rules.
        if hub.namespaces.rules(&room, &hub.metrics).is_err() {
            return Err((StatusCode::BAD_REQUEST, "unknown namespace"));
        }
        Mode::Plain { room }
    };
    // The per-IP slot is in the connection's `Permit`, which the session holds.
    Ok(Grant { identity, mode })
}

/// The 400 for a plain-mode request that names no room.
fn refusal(e: RoomError) -> (StatusCode, &'static str) {
    let reason = match e {
        RoomError::NoRoute => "subprotocol herald.v1 required",
        RoomError::MissingParam(_) => "missing room query parameter",
        RoomError::SeparatorInParam(_) => "room query parameter contains ':'",
        RoomError::InvalidName => "invalid room name",
    };
    (StatusCode::BAD_REQUEST, reason)
}
