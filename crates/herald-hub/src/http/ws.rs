//! The WebSocket upgrade: handshake checks (herald-proto), then Origin (403), credentials
//! (401), room (400), in that order, all before the 101. The per-IP limit (429) was applied
//! at accept (`server.rs`); the connection's slots ride along in its `Permit`.
//!
//! An HTTP/2 extended CONNECT (RFC 8441) comes the same way, checked by the same rules and
//! answered 200; as its connection may carry many, each such WebSocket also takes a slot of
//! `limits.max_connections` (503 when none is free).
//!
//! Credentials: a token, verified when a JWT key is configured, decides when one is sent;
//! otherwise the connect hook decides when one is configured (after the room check, so a
//! request without a room costs the backend nothing); otherwise the anonymous policy.

use crate::auth::{Identity, find_token};
use crate::hooks::{ConnectHook, Failure, Handshake, Verdict};
use crate::hub::Hub;
use crate::names::{self, RoomError};
use crate::server::{Permit, StreamSlots};
use crate::session::{self, Grant, Mode, Transport};
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
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
    Extension(streams): Extension<StreamSlots>,
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
    let http = if upgrade.is_http2() { "2" } else { "1.1" };
    // An HTTP/1.1 WebSocket has its connection's slot; one on an HTTP/2 stream takes its own.
    let stream_slot = match upgrade.is_http2().then(|| streams.acquire()) {
        Some(None) => {
            hub.metrics.rejected(503);
            hub.metrics.limit_hit("max_connections");
            tracing::debug!(%peer, "refused: too many connections");
            return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
        }
        Some(Some(slot)) => Some(slot),
        None => None,
    };
    match check(&hub, &upgrade, peer).await {
        Ok(grant) => {
            hub.metrics.upgraded(http);
            tracing::debug!(%peer, http, "websocket accepted");
            let config = hub.ws.clone();
            let upgrade = match grant.mode {
                Mode::Protocol => upgrade.protocols([SUBPROTOCOL]),
                Mode::Plain { .. } | Mode::Pusher(_) => upgrade,
            };
            // Graceful shutdown waits for this session through the tracker token.
            let token = tracker.token();
            upgrade
                .config(config)
                .on_upgrade_with(crate::direct::io, move |ws| {
                    // herald's close timeout bounds the closing handshake; the wire holds to it
                    // even against a client that keeps sending after our Close.
                    let wire = session::WsWire { ws };
                    // `map`, not an `async` block: a block would keep its captured socket and
                    // grant beside the session's own copies for the connection's whole life.
                    session::run(hub, wire, grant).map(move |()| drop((token, permit, stream_slot)))
                })
        }
        Err(refusal) => refusal.respond(&hub, peer),
    }
}

/// Why a handshake is refused: the hub's own short reason, or the backend's deny body as sent.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A rule of the hub; the body is the reason and a newline.
    Hub(StatusCode, &'static str),
    /// The connect hook's deny: the body is exactly the backend's.
    Backend(StatusCode, String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Hub(status, _) | Self::Backend(status, _) => *status,
        }
    }

    /// The refusal as an HTTP response, counted and logged once.
    pub(crate) fn respond(self, hub: &Hub, peer: SocketAddr) -> Response {
        let status = self.status();
        hub.metrics.rejected(status.as_u16());
        let mut response = match self {
            Self::Hub(_, reason) => {
                tracing::debug!(%peer, status = status.as_u16(), reason, "handshake refused");
                (status, format!("{reason}\n")).into_response()
            }
            Self::Backend(_, body) => {
                tracing::debug!(%peer, status = status.as_u16(), "handshake refused by the backend");
                (status, body).into_response()
            }
        };
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<(StatusCode, &'static str)> for Refusal {
    fn from((status, reason): (StatusCode, &'static str)) -> Self {
        Self::Hub(status, reason)
    }
}

async fn check(hub: &Hub, upgrade: &WebSocketUpgrade, peer: SocketAddr) -> Result<Grant, Refusal> {
    let request = upgrade.request();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !hub.live().origins.allows(request.origin(), host) {
        return Err((StatusCode::FORBIDDEN, "origin not allowed").into());
    }
    // With the hook deciding, the room is checked first: a request without one costs the
    // backend nothing. Otherwise credentials (401) come before the room (400).
    let (identity, mode) = if deciding_hook(hub, request.into()).is_some() {
        let mode = mode(hub, request)?;
        (identify(hub, request.into(), peer).await?, mode)
    } else {
        let identity = identify(hub, request.into(), peer).await?;
        (identity, mode(hub, request)?)
    };
    Ok(Grant {
        identity,
        mode,
        transport: Transport::WebSocket,
    })
}

/// Who opens the connection: a token, verified when a JWT key is configured, decides when
/// one is sent; otherwise the connect hook when one is configured; otherwise the anonymous
/// policy. Every transport admits its clients through here.
pub(crate) async fn identify(
    hub: &Hub,
    request: Handshake<'_>,
    peer: SocketAddr,
) -> Result<Identity, Refusal> {
    if let Some(hook) = deciding_hook(hub, request) {
        return admit(hub, hook, request, peer).await;
    }
    let token =
        find_token(request.headers, request.query, &hub.config.auth).filter(|t| !t.is_empty());
    // The per-IP slot is in the connection's `Permit`, which the session holds.
    let auth = hub.live().auth.clone();
    auth.authenticate(token.as_deref())
        .await
        .map_err(|e| Refusal::Hub(StatusCode::UNAUTHORIZED, e.reason()))
}

/// The connect hook, when it decides about `request`: a token is verified when there is a key
/// to verify it with; else the hook decides.
fn deciding_hook<'h>(hub: &'h Hub, request: Handshake<'_>) -> Option<&'h ConnectHook> {
    let token = find_token(request.headers, request.query, &hub.config.auth);
    let has_token = token.is_some_and(|t| !t.is_empty());
    hub.connect_hook
        .as_ref()
        .filter(|_| !has_token || !hub.live().config.auth.has_key())
}

/// The connect hook's answer, or the failure rule: 503 when the hook is overloaded, else
/// 503 (`fail_open` off) or the anonymous policy (`fail_open` on).
async fn admit(
    hub: &Hub,
    hook: &ConnectHook,
    request: Handshake<'_>,
    peer: SocketAddr,
) -> Result<Identity, Refusal> {
    match hook.admit(request, peer.ip()).await {
        Ok(Verdict::Allow(identity)) => Ok(identity),
        Ok(Verdict::Deny { status, body }) => Err(Refusal::Backend(status, body)),
        Err(Failure::Overloaded) => Err(Refusal::Hub(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many handshakes waiting for the backend",
        )),
        Err(_) if hook.fail_open => {
            let auth = hub.live().auth.clone();
            auth.authenticate(None)
                .await
                .map_err(|e| Refusal::Hub(StatusCode::UNAUTHORIZED, e.reason()))
        }
        Err(_) => Err(Refusal::Hub(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend unavailable",
        )),
    }
}

/// The connection's mode from its subprotocols, and in plain mode its room (400 without one).
fn mode(hub: &Hub, request: &herald_proto::handshake::Request) -> Result<Mode, Refusal> {
    if request.subprotocols().iter().any(|p| p == SUBPROTOCOL) {
        return Ok(Mode::Protocol);
    }
    let routes = &hub.config.plain.routes;
    let room = names::plain_room(routes, request.path(), request.query()).map_err(refusal)?;
    // `HubConfig::validate` refuses routes into unknown namespaces, at start and at every
    // reload; checked all the same,
    // so no room reaches a session without its rules.
    if hub.live().namespaces.rules(&room, &hub.metrics).is_err() {
        return Err((StatusCode::BAD_REQUEST, "unknown namespace").into());
    }
    Ok(Mode::Plain { room: room.into() })
}

/// The 400 for a plain-mode request that names no room.
fn refusal(e: RoomError) -> Refusal {
    let reason = match e {
        RoomError::NoRoute => "subprotocol herald.v1 required",
        RoomError::MissingParam(_) => "missing room query parameter",
        RoomError::SeparatorInParam(_) => "room query parameter contains ':'",
        RoomError::InvalidName => "invalid room name",
    };
    Refusal::Hub(StatusCode::BAD_REQUEST, reason)
}
