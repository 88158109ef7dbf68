//! The server API for users and the cluster (`X-API-Key`, like the rest of `/api/*`):
//! subscribe and unsubscribe a user's connections, disconnect a user, list channels, count a
//! channel's presence, describe the nodes. Each handler checks the key, reads its bounded
//! body, and calls the service API (`server_api.rs`), which reaches every node.

use super::api::{authorize, authorized_body, error, reply_error};
use crate::hub::Hub;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

const MEMBERSHIP_SHAPE: &str = "expected {\"user\": ..., \"channel\": ...}";
const DISCONNECT_SHAPE: &str =
    "expected {\"user\": ..., \"code\"?: 4000-4999, \"reason\"?: ..., \"except\"?: client}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MembershipBody {
    user: String,
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DisconnectBody {
    user: String,
    code: Option<u16>,
    reason: Option<String>,
    except: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ChannelsQuery {
    pattern: Option<String>,
}

fn done(outcome: Result<(), herald_hub_protocol::ErrorBody>) -> Response {
    match outcome {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => reply_error(&e),
    }
}

pub(super) async fn subscribe(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match authorized_body::<MembershipBody>(&hub, &headers, body, MEMBERSHIP_SHAPE).await {
        Ok(b) => done(hub.subscribe_user(&b.user, &b.channel).await),
        Err(response) => response,
    }
}

pub(super) async fn unsubscribe(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match authorized_body::<MembershipBody>(&hub, &headers, body, MEMBERSHIP_SHAPE).await {
        Ok(b) => done(hub.unsubscribe_user(&b.user, &b.channel).await),
        Err(response) => response,
    }
}

pub(super) async fn disconnect(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let b = match authorized_body::<DisconnectBody>(&hub, &headers, body, DISCONNECT_SHAPE).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let close = match (b.code, b.reason) {
        (None, None) => None,
        (Some(code), reason) => Some((code, reason.unwrap_or_default())),
        (None, Some(_)) => return error(StatusCode::BAD_REQUEST, "a reason needs a code"),
    };
    done(hub.disconnect_user(&b.user, close, b.except).await)
}

pub(super) async fn channels(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ChannelsQuery>,
) -> Response {
    if let Err(response) = authorize(&hub, &headers) {
        return response;
    }
    match hub.channels(query.pattern.as_deref()).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => reply_error(&e),
    }
}

pub(super) async fn presence_counts(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Response {
    if let Err(response) = authorize(&hub, &headers) {
        return response;
    }
    match hub.presence_counts(&channel).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => reply_error(&e),
    }
}

pub(super) async fn info(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&hub, &headers) {
        return response;
    }
    match hub.nodes().await {
        Ok(nodes) => Json(json!({ "nodes": nodes })).into_response(),
        Err(e) => reply_error(&e),
    }
}
