//! Transports besides the WebSocket: adapters that carry a hub session over plain HTTP.

mod body;
pub(crate) mod poll;
pub(crate) mod sse;
pub(crate) mod stream;

use crate::auth::Identity;
use crate::hooks::Handshake;
use crate::http::ws::identify;
use crate::hub::Hub;
use axum::http::request::Parts;
use axum::response::Response;
use std::net::SocketAddr;

/// Admits the opening request of an HTTP transport as a WebSocket upgrade is admitted: the
/// Origin policy (403), then the credentials (401: cookie, token, the connect hook). The one
/// admission rule of `/sse`, `/stream` and `/poll`.
///
/// # Errors
/// The refusal's response; a refused credential's with the CORS headers for the request's
/// origin, so a page can read it.
pub(crate) async fn admit(
    hub: &Hub,
    parts: &Parts,
    peer: SocketAddr,
) -> Result<Identity, Response> {
    let headers = &parts.headers;
    stream::check_origin(hub, headers, peer)?;
    let handshake = Handshake {
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers,
        protocols: &[],
    };
    identify(hub, handshake, peer)
        .await
        .map_err(|refusal| sse::with_cors(refusal.respond(hub, peer), stream::origin(headers)))
}
