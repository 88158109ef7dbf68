//! The backend API (`X-API-Key`), health and metrics.
//!
//! An API request is checked from its head first (the key), and only then is its body read,
//! bounded in size (`limits.max_message_size`, at least 64 KiB: 413) and in time
//! (`limits.request_timeout`: 408).

use crate::broker::{Health, Payload};
use crate::hub::{Hub, valid_channel};
use crate::service::Read;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use herald_hub_protocol::{ErrorBody, ErrorCode, StreamPosition};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Most channels one `POST /api/broadcast` may name.
const MAX_BROADCAST_CHANNELS: usize = 1000;

#[derive(Deserialize)]
pub(super) struct PublishBody {
    /// The channel, or
    channel: Option<String>,
    /// the user whose personal channel it is.
    user: Option<String>,
    data: Box<RawValue>,
}

#[derive(Deserialize)]
pub(super) struct BroadcastBody {
    channels: Vec<String>,
    data: Box<RawValue>,
}

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    since: Option<u64>,
    epoch: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    reverse: bool,
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) fn reply_error(e: &ErrorBody) -> Response {
    let status = match e.code {
        ErrorCode::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::LIMIT_EXCEEDED => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::OUTCOME_UNKNOWN => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::POSITION_UNAVAILABLE => StatusCode::CONFLICT,
        ErrorCode::BAD_REQUEST | ErrorCode::UNKNOWN_NAMESPACE => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "error": e.message, "code": e.code }))).into_response()
}

/// Checks the API key in constant time; `Err` is the response to send.
pub(super) fn authorize(hub: &Hub, headers: &HeaderMap) -> Result<(), Response> {
    let live = hub.live();
    let Some(expected) = live.config.api.key.as_deref() else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "api disabled: no api key configured",
        ));
    };
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("apikey "))
        })
        .unwrap_or("");
    if super::admin::same_secret(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(error(StatusCode::UNAUTHORIZED, "invalid api key"))
    }
}

const PUBLISH_SHAPE: &str =
    "expected {\"channel\": ..., \"data\": ...} or {\"user\": ..., \"data\": ...}";
const BROADCAST_SHAPE: &str = "expected {\"channels\": [...], \"data\": ...}";

/// The largest API request body, in bytes: `limits.max_message_size`, at least 64 KiB.
fn max_body_size(hub: &Hub) -> usize {
    hub.config.limits.max_message_size.max(1 << 16)
}

/// The API key check from the headers alone (401/403 before a byte of the body is read, so
/// a client without the key cannot hold the connection with a slow body), then the body
/// under its bounds, then the JSON (400 naming the `expected` shape).
pub(super) async fn authorized_body<T: DeserializeOwned>(
    hub: &Hub,
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> Result<T, Response> {
    authorize(hub, headers)?;
    if !is_json(headers) {
        return Err(error(StatusCode::BAD_REQUEST, expected));
    }
    let bytes = read_body(hub, headers, body).await?;
    serde_json::from_slice(&bytes).map_err(|_| error(StatusCode::BAD_REQUEST, expected))
}

/// `Content-Type: application/json` or `application/*+json`, parameters aside. A browser
/// cannot send it cross-site without a preflight.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// Reads the whole body within `limits.request_timeout` of the head's arrival and within
/// [`max_body_size`] bytes.
///
/// - A declared `Content-Length` over the limit is refused before anything is read, a
///   chunked body as soon as it passes the limit: 413.
/// - A body that has not arrived by the deadline: 408 with `Connection: close` (RFC 9110
///   §15.5.9), and hyper closes the connection since the body was not read to its end.
pub(crate) async fn read_body(
    hub: &Hub,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Response> {
    read_bounded(hub, headers, body, max_body_size(hub), "api_body_size").await
}

/// [`read_body`] with another bound, counted as `limit_name` when it refuses.
pub(crate) async fn read_bounded(
    hub: &Hub,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    limit_name: &str,
) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(hub, limit_name));
    }
    let timeout = hub.live().config.limits.request_timeout;
    match tokio::time::timeout(timeout, collect(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(BodyError::TooLarge)) => Err(too_large(hub, limit_name)),
        Ok(Err(BodyError::Broken)) => Err(error(StatusCode::BAD_REQUEST, "unreadable body")),
        Err(_) => {
            hub.metrics.rejected(408);
            hub.metrics.limit_hit("request_timeout");
            tracing::debug!(?timeout, "api request body timed out");
            let mut response = error(StatusCode::REQUEST_TIMEOUT, "request body timed out");
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Err(response)
        }
    }
}

fn too_large(hub: &Hub, limit_name: &str) -> Response {
    hub.metrics.rejected(413);
    hub.metrics.limit_hit(limit_name);
    error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
}

enum BodyError {
    /// More than the limit.
    TooLarge,
    /// The client closed or sent a malformed chunk.
    Broken,
}

/// The body's bytes, stopping as soon as they pass `limit` (nothing over it is kept).
async fn collect(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut out = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

pub(super) async fn publish(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body: PublishBody = match authorized_body(&hub, &headers, body, PUBLISH_SHAPE).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let payload = Payload::Json(Bytes::copy_from_slice(body.data.get().as_bytes()));
    let published = match (&body.channel, &body.user) {
        (Some(channel), None) => hub.publish(channel, payload, None).await,
        (None, Some(user)) => hub.publish_to_user(user, payload).await,
        _ => return error(StatusCode::BAD_REQUEST, PUBLISH_SHAPE),
    };
    match published {
        Ok(p) => Json(json!({ "offset": p.offset, "epoch": p.epoch })).into_response(),
        Err(e) => reply_error(&e),
    }
}

pub(super) async fn broadcast(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body: BroadcastBody = match authorized_body(&hub, &headers, body, BROADCAST_SHAPE).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body.channels.len() > MAX_BROADCAST_CHANNELS {
        return error(StatusCode::BAD_REQUEST, "too many channels");
    }
    if !body.channels.iter().all(|c| valid_channel(c)) {
        return error(StatusCode::BAD_REQUEST, "invalid channel name");
    }
    let data = Bytes::copy_from_slice(body.data.get().as_bytes());
    let mut results = Vec::with_capacity(body.channels.len());
    for channel in &body.channels {
        let result = match hub
            .publish(channel, Payload::Json(data.clone()), None)
            .await
        {
            Ok(p) => json!({ "channel": channel, "offset": p.offset, "epoch": p.epoch }),
            Err(e) => json!({ "channel": channel, "error": e.message, "code": e.code }),
        };
        results.push(result);
    }
    Json(json!({ "results": results })).into_response()
}

pub(super) async fn history(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    if let Err(response) = authorize(&hub, &headers) {
        return response;
    }
    let since = match (query.since, query.epoch) {
        (Some(offset), Some(epoch)) => Some(StreamPosition { offset, epoch }),
        (None, None) => None,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give both since and epoch, or neither",
            );
        }
    };
    let read = Read {
        since: since.as_ref(),
        limit: query.limit,
        reverse: query.reverse,
    };
    match hub.history(&channel, read).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => reply_error(&e),
    }
}

pub(super) async fn presence(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Response {
    if let Err(response) = authorize(&hub, &headers) {
        return response;
    }
    match hub.presence(&channel).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => reply_error(&e),
    }
}

pub(super) async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    match hub.broker.health() {
        Health::Ok => Json(json!({ "status": "ok", "broker": "ok" })).into_response(),
        Health::Degraded => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "degraded", "broker": "unavailable" })),
        )
            .into_response(),
    }
}

pub(super) async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    hub.metrics
        .broker_up
        .set(i64::from(hub.broker.health() == Health::Ok));
    if let Some(retained) = hub.broker.retained() {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        hub.metrics.history_channels.set(gauge(retained.channels));
        hub.metrics.history_bytes.set(gauge(retained.bytes));
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        hub.metrics.render(),
    )
        .into_response()
}
