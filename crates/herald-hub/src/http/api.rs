//! The backend API (`X-API-Key`), health and metrics.

use crate::broker::{BrokerError, Health, Payload};
use crate::hub::{Hub, valid_channel};
use crate::session::{history as read_history, presence as read_presence};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use herald_hub_protocol::{ErrorBody, ErrorCode, StreamPosition};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Most channels one `POST /api/broadcast` may name.
const MAX_BROADCAST_CHANNELS: usize = 1000;

#[derive(Deserialize)]
pub(super) struct PublishBody {
    channel: String,
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
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn reply_error(e: &ErrorBody) -> Response {
    let status = match e.code {
        ErrorCode::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::LIMIT_EXCEEDED => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::OUTCOME_UNKNOWN => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::POSITION_UNAVAILABLE => StatusCode::CONFLICT,
        ErrorCode::BAD_REQUEST => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "error": e.message, "code": e.code }))).into_response()
}

/// Checks the API key in constant time; `Err` is the response to send.
fn authorize(hub: &Hub, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = hub.config.api.key.as_deref() else {
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
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(error(StatusCode::UNAUTHORIZED, "invalid api key"))
    }
}

const PUBLISH_SHAPE: &str = "expected {\"channel\": ..., \"data\": ...}";
const BROADCAST_SHAPE: &str = "expected {\"channels\": [...], \"data\": ...}";

/// The API key check, then the JSON body (400 naming the `expected` shape).
fn authorized_body<T>(
    hub: &Hub,
    headers: &HeaderMap,
    body: Result<Json<T>, JsonRejection>,
    expected: &str,
) -> Result<T, Response> {
    authorize(hub, headers)?;
    body.map(|Json(body)| body)
        .map_err(|_| error(StatusCode::BAD_REQUEST, expected))
}

fn publish_failure(e: &BrokerError) -> Response {
    match e {
        BrokerError::Unavailable(_) => error(StatusCode::SERVICE_UNAVAILABLE, "broker unavailable"),
        BrokerError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "broker failure"),
        BrokerError::Limit(_) => error(StatusCode::INSUFFICIENT_STORAGE, "history limit reached"),
        BrokerError::OutcomeUnknown(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "outcome unknown: the broker did not answer in time, the publication may or may not \
             have been stored; read history before retrying",
        ),
    }
}

pub(super) async fn publish(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Result<Json<PublishBody>, JsonRejection>,
) -> Response {
    let body = match authorized_body(&hub, &headers, body, PUBLISH_SHAPE) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if !valid_channel(&body.channel) {
        return error(StatusCode::BAD_REQUEST, "invalid channel name");
    }
    let payload = Payload::Json(Bytes::copy_from_slice(body.data.get().as_bytes()));
    match hub.publish(&body.channel, payload, None).await {
        Ok(p) => Json(json!({ "offset": p.offset, "epoch": p.epoch })).into_response(),
        Err(e) => publish_failure(&e),
    }
}

pub(super) async fn broadcast(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Result<Json<BroadcastBody>, JsonRejection>,
) -> Response {
    let body = match authorized_body(&hub, &headers, body, BROADCAST_SHAPE) {
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
            Err(e) => json!({ "channel": channel, "error": e.to_string() }),
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
    match read_history(&hub, &channel, since.as_ref(), query.limit).await {
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
    match read_presence(&hub, &channel).await {
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
