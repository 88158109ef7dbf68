//! The operator's page, `/admin` (with `admin.enabled`): nodes, connections, channels with
//! subscriber counts, a live tail of a channel, publish, disconnect a user.
//!
//! Every path under `/admin` asks for HTTP Basic credentials (`admin.user`,
//! `admin.password`), compared in constant time; a refusal is 401 with a `WWW-Authenticate`
//! challenge, counted in `herald_admin_refusals_total`. The page's data comes from the same
//! service calls as the HTTP API (`server_api.rs`, `service.rs`), which reach every node; the
//! tail is an event stream session (`transport::sse`) of an identity that may subscribe to
//! any channel and publish to none. The POSTs read JSON only (`Content-Type:
//! application/json`, which a cross-site form cannot send), under the API's body bounds.

use super::api::{error, read_body, reply_error};
use super::web;
use crate::auth::Identity;
use crate::broker::Payload;
use crate::hub::Hub;
use crate::server::Permit;
use crate::transport::sse;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::task::TaskTracker;
use wildmatch::WildMatch;

const PUBLISH_SHAPE: &str = "expected {\"channel\": ..., \"data\": ...}";
const DISCONNECT_SHAPE: &str = "expected {\"user\": ...}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    channel: String,
    data: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    user: String,
}

/// The `/admin` routes, added to `router` when `admin.enabled`.
pub(super) fn routes(mut router: Router<Arc<Hub>>) -> Router<Arc<Hub>> {
    for asset in web::ADMIN_ASSETS {
        router = router.route(
            asset.path,
            axum::routing::get(
                move |State(hub): State<Arc<Hub>>, headers: HeaderMap| async move {
                    match authorize(&hub, &headers) {
                        Ok(()) => web::serve(asset),
                        Err(response) => response,
                    }
                },
            ),
        );
    }
    router
        .route("/admin/api/overview", axum::routing::get(overview))
        .route("/admin/api/publish", axum::routing::post(publish))
        .route("/admin/api/disconnect", axum::routing::post(disconnect))
        .route("/admin/api/tail", axum::routing::get(tail))
}

/// Whether two secrets are equal, in time independent of where they differ and of their
/// lengths: their SHA-256 digests are compared byte by byte, all of them.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks the request's Basic credentials against `admin.user` and `admin.password`; `Err`
/// is the 401 to send.
fn authorize(hub: &Hub, headers: &HeaderMap) -> Result<(), Response> {
    let live = hub.live();
    let admin = &live.config.admin;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
    let pair = given.as_deref().and_then(|g| {
        let colon = g.iter().position(|&b| b == b':')?;
        Some((&g[..colon], &g[colon + 1..]))
    });
    // `validate` refused `enabled` without a password.
    let password = admin.password.as_deref().unwrap_or("");
    if let Some((user, pass)) = pair {
        // Both compared, whichever differs.
        let user_ok = same_secret(user, admin.user.as_bytes());
        let pass_ok = same_secret(pass, password.as_bytes());
        if user_ok & pass_ok && !password.is_empty() {
            return Ok(());
        }
    }
    hub.metrics.admin_refusals.inc();
    tracing::debug!("admin request refused: wrong or missing credentials");
    let mut response = error(StatusCode::UNAUTHORIZED, "admin credentials required");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"herald admin\", charset=\"UTF-8\""),
    );
    Err(response)
}

/// Nodes with their connections, and channels with their subscribers, over every node.
async fn overview(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&hub, &headers) {
        return response;
    }
    let nodes = match hub.nodes().await {
        Ok(nodes) => nodes,
        Err(e) => return reply_error(&e),
    };
    match hub.channels(None).await {
        Ok(channels) => Json(json!({
            "nodes": nodes,
            "connections": nodes.iter().map(|n| n.connections).sum::<u64>(),
            "channels": channels,
        }))
        .into_response(),
        Err(e) => reply_error(&e),
    }
}

/// The credentials, then the JSON body under the API's bounds (400 naming `expected`).
async fn admin_body<T: DeserializeOwned>(
    hub: &Hub,
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> Result<T, Response> {
    authorize(hub, headers)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    if !json {
        return Err(error(StatusCode::BAD_REQUEST, expected));
    }
    let bytes = read_body(hub, headers, body).await?;
    serde_json::from_slice(&bytes).map_err(|_| error(StatusCode::BAD_REQUEST, expected))
}

async fn publish(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Body) -> Response {
    let body: PublishBody = match admin_body(&hub, &headers, body, PUBLISH_SHAPE).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let payload = Payload::Json(Bytes::copy_from_slice(body.data.get().as_bytes()));
    match hub.publish(&body.channel, payload, None).await {
        Ok(p) => {
            tracing::info!(channel = body.channel, offset = p.offset, "admin published");
            Json(json!({ "offset": p.offset, "epoch": p.epoch })).into_response()
        }
        Err(e) => reply_error(&e),
    }
}

async fn disconnect(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Body) -> Response {
    let body: DisconnectBody = match admin_body(&hub, &headers, body, DISCONNECT_SHAPE).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match hub.disconnect_user(&body.user, None, None).await {
        Ok(()) => {
            tracing::info!(user = body.user, "admin disconnected a user");
            Json(json!({})).into_response()
        }
        Err(e) => reply_error(&e),
    }
}

/// `GET /admin/api/tail?channel=…`: the channels' publications as an event stream, the
/// same session as `/sse` with an identity that may subscribe anywhere and publish nowhere.
async fn tail(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(tracker): Extension<TaskTracker>,
    Extension(permit): Extension<Permit>,
    request: Request<Body>,
) -> Response {
    let (parts, _body) = request.into_parts();
    if let Err(response) = authorize(&hub, &parts.headers) {
        return response;
    }
    let channels = match sse::channels(&hub, parts.uri.query()) {
        Ok(channels) => channels,
        Err(reason) => {
            return super::ws::Refusal::Hub(StatusCode::BAD_REQUEST, reason).respond(&hub, peer);
        }
    };
    let identity = Identity {
        user: String::new(),
        subscribe: Arc::from([WildMatch::new("*")]),
        publish: Arc::from([]),
        expires: None,
        subs: Vec::new(),
        anonymous: false,
        from_hook: false,
    };
    let opened = sse::Opened {
        peer,
        tracker,
        permit,
        identity,
    };
    sse::open(hub, opened, &parts.headers, channels).await
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_by_content_whatever_their_lengths() {
        assert!(same_secret(b"correct horse", b"correct horse"));
        assert!(!same_secret(b"correct horse", b"correct horsE"));
        assert!(!same_secret(b"correct", b"correct horse"));
        assert!(!same_secret(b"", b"x"));
    }
}
