//! Pusher's HTTP API under `/apps/{id}`: trigger events (one, or a batch), read channels and
//! presence, terminate a user's connections. Every request is verified ([`signed`]) before
//! it does anything; every operation is one of the hub's service calls.
//!
//! [`signed`]: super::signed

use super::frame::Envelope;
use super::signed::{Refusal, verify};
use super::{App, Kind, valid_socket_id};
use crate::http::api::{read_body, reply_error};
use crate::hub::Hub;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
pub(crate) struct Event {
    name: String,
    data: Box<RawValue>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    socket_id: Option<String>,
    /// The channel attributes the reply carries: `subscription_count`, `user_count`.
    #[serde(default)]
    info: Option<String>,
}

#[derive(Deserialize)]
struct Batch {
    batch: Vec<Event>,
}

/// A refusal as Pusher answers it: the status and a short text, counted by reason.
fn refuse(hub: &Hub, Refusal(status, reason, message): Refusal) -> Response {
    hub.metrics.pusher_refusal(reason);
    (status, format!("{message}\n")).into_response()
}

fn bad(message: &'static str) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, "api_request", message)
}

/// The app, the verified query and the body, or the response that refuses them. The body is
/// read (bounded in size and time) only once the query's signature holds.
async fn open(
    hub: &Hub,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<App>, Vec<(String, String)>, bytes::Bytes), Response> {
    let Some(app) = hub.pusher.by_id(id).cloned() else {
        let refusal = Refusal(StatusCode::NOT_FOUND, "unknown_app", "unknown app");
        return Err(refuse(hub, refusal));
    };
    let signed = verify(hub, &app, method, uri).map_err(|r| refuse(hub, r))?;
    let body = read_body(hub, headers, body).await?;
    signed.check_body(&body).map_err(|r| refuse(hub, r))?;
    Ok((app, signed.params, body))
}

pub(crate) async fn events(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, _, body) = match open(&hub, &id, &method, &uri, &headers, body).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let Ok(event) = serde_json::from_slice::<Event>(&body) else {
        return refuse(
            &hub,
            bad("expected {\"name\", \"data\", \"channel\" or \"channels\"}"),
        );
    };
    let channels = match trigger(&hub, &app, &event).await {
        Ok(channels) => channels,
        Err(response) => return response,
    };
    let Some(info) = event.info.as_deref() else {
        return Json(json!({})).into_response();
    };
    let mut replies = Map::new();
    for channel in channels {
        match attributes(&hub, &app, channel, info).await {
            Ok(attributes) => replies.insert(channel.clone(), attributes),
            Err(response) => return response,
        };
    }
    Json(json!({ "channels": replies })).into_response()
}

pub(crate) async fn batch_events(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, _, body) = match open(&hub, &id, &method, &uri, &headers, body).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let Ok(Batch { batch }) = serde_json::from_slice::<Batch>(&body) else {
        return refuse(
            &hub,
            bad("expected {\"batch\": [{\"name\", \"channel\", \"data\"}]}"),
        );
    };
    if batch.len() > app.config.limits.max_batch_size {
        hub.metrics.pusher_limit(&app.config.id, "max_batch_size");
        return refuse(
            &hub,
            bad("too many events in the batch (limits.max_batch_size)"),
        );
    }
    if batch
        .iter()
        .any(|e| e.channel.is_none() || e.channels.is_some())
    {
        return refuse(&hub, bad("each batch event names one channel"));
    }
    for event in &batch {
        if let Err(response) = trigger(&hub, &app, event).await {
            return response;
        }
    }
    if batch.iter().all(|e| e.info.is_none()) {
        return Json(json!({})).into_response();
    }
    // One reply per event, in order: its channel's attributes, `{}` for an event without.
    let mut replies = Vec::with_capacity(batch.len());
    for event in &batch {
        let reply = match (event.channel.as_ref(), event.info.as_deref()) {
            (Some(channel), Some(info)) => match attributes(&hub, &app, channel, info).await {
                Ok(attributes) => attributes,
                Err(response) => return response,
            },
            _ => json!({}),
        };
        replies.push(reply);
    }
    Json(json!({ "batch": replies })).into_response()
}

/// The attributes `info` (comma-separated) asks for of app channel `channel`, as the events
/// reply gives them: `subscription_count` for any channel, `user_count` for a presence
/// channel (on others it is left out, as Pusher leaves it).
async fn attributes(hub: &Hub, app: &App, channel: &str, info: &str) -> Result<Value, Response> {
    let asked = |attribute: &str| info.split(',').any(|a| a.trim() == attribute);
    let hub_channel = app.hub_channel(channel);
    let mut attributes = Map::new();
    if asked("subscription_count") {
        let listed = hub
            .channels(Some(&hub_channel))
            .await
            .map_err(|e| reply_error(&e))?;
        let count = listed.channels.get(&hub_channel).copied().unwrap_or(0);
        attributes.insert("subscription_count".into(), count.into());
    }
    if asked("user_count") && Kind::of(channel) == Kind::Presence {
        let counts = hub
            .presence_counts(&hub_channel)
            .await
            .map_err(|e| reply_error(&e))?;
        attributes.insert("user_count".into(), counts.users.into());
    }
    Ok(Value::Object(attributes))
}

/// Publishes `event` to each of its channels, in order, within the app's limits; the first
/// refusal stops it. Returns the channels.
async fn trigger<'a>(hub: &Hub, app: &App, event: &'a Event) -> Result<Vec<&'a String>, Response> {
    let limits = &app.config.limits;
    let over = |limit| {
        hub.metrics.pusher_limit(&app.config.id, limit);
    };
    let channels: Vec<&String> = event
        .channel
        .iter()
        .chain(event.channels.iter().flatten())
        .collect();
    if channels.is_empty() {
        return Err(refuse(hub, bad("no channel")));
    }
    if channels.len() > limits.max_event_channels {
        over("max_event_channels");
        return Err(refuse(
            hub,
            bad("too many channels (limits.max_event_channels)"),
        ));
    }
    if event.name.is_empty() {
        return Err(refuse(hub, bad("no event name")));
    }
    if event.name.len() > limits.max_event_name_length {
        over("max_event_name_length");
        return Err(refuse(
            hub,
            bad("event name too long (limits.max_event_name_length)"),
        ));
    }
    if event.data.get().len() > limits.max_event_size {
        over("max_event_size");
        let refusal = Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "api_request",
            "event data too large (limits.max_event_size)",
        );
        return Err(refuse(hub, refusal));
    }
    if event
        .socket_id
        .as_deref()
        .is_some_and(|s| !valid_socket_id(s))
    {
        return Err(refuse(hub, bad("invalid socket_id")));
    }
    if !channels.iter().all(|c| publishable(app, c)) {
        return Err(refuse(hub, bad("invalid channel name")));
    }
    let envelope = Envelope {
        event: event.name.as_str().into(),
        data: &event.data,
        socket_id: event.socket_id.as_deref().map(Into::into),
        user_id: None,
    };
    let payload = envelope.to_payload();
    for channel in &channels {
        let published = hub
            .publish(&app.hub_channel(channel), payload.clone(), None)
            .await;
        published.map_err(|e| reply_error(&e))?;
    }
    Ok(channels)
}

/// A channel the API may trigger on: one of the app's channel names, or a user's own channel
/// (`#server-to-user-ID`, what `sendToUser` sends to).
fn publishable(app: &App, channel: &str) -> bool {
    match channel.strip_prefix("#server-to-user-") {
        Some(user) => !user.is_empty() && crate::names::valid_channel(&app.hub_channel(channel)),
        None => app.valid_channel(channel),
    }
}

pub(crate) async fn channels(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, params, _) = match open(&hub, &id, &method, &uri, &headers, body).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let prefix = param(&params, "filter_by_prefix").unwrap_or("");
    if !prefix.is_empty() && !app.valid_channel(prefix) {
        return refuse(&hub, bad("invalid filter_by_prefix"));
    }
    let user_count = info_has(&params, "user_count");
    if user_count && !prefix.starts_with("presence-") {
        return refuse(&hub, bad("user_count needs filter_by_prefix=presence-"));
    }
    let pattern = format!("{}*", app.hub_channel(prefix));
    let listed = match hub.channels(Some(&pattern)).await {
        Ok(listed) => listed,
        Err(e) => return reply_error(&e),
    };
    let mut channels = Map::new();
    for name in listed.channels.keys() {
        // A user's own channel and the watchlists' presence (`#…`) are not Pusher channels.
        let Some(channel) = app.pusher_channel(name).filter(|c| !c.starts_with('#')) else {
            continue;
        };
        let mut attributes = Map::new();
        if user_count {
            match hub.presence_counts(name).await {
                Ok(counts) => attributes.insert("user_count".into(), counts.users.into()),
                Err(e) => return reply_error(&e),
            };
        }
        channels.insert(channel.to_owned(), Value::Object(attributes));
    }
    Json(json!({ "channels": channels })).into_response()
}

pub(crate) async fn channel(
    State(hub): State<Arc<Hub>>,
    Path((id, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, params, _) = match open(&hub, &id, &method, &uri, &headers, body).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    if !app.valid_channel(&name) {
        return refuse(&hub, bad("invalid channel name"));
    }
    let channel = app.hub_channel(&name);
    let listed = match hub.channels(Some(&channel)).await {
        Ok(listed) => listed,
        Err(e) => return reply_error(&e),
    };
    let count = listed.channels.get(&channel).copied().unwrap_or(0);
    let mut body = json!({ "occupied": count > 0 });
    if info_has(&params, "subscription_count") {
        body["subscription_count"] = count.into();
    }
    if info_has(&params, "user_count") {
        if Kind::of(&name) != Kind::Presence {
            return refuse(&hub, bad("user_count is only for presence channels"));
        }
        match hub.presence_counts(&channel).await {
            Ok(counts) => body["user_count"] = counts.users.into(),
            Err(e) => return reply_error(&e),
        }
    }
    Json(body).into_response()
}

pub(crate) async fn users(
    State(hub): State<Arc<Hub>>,
    Path((id, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, _, _) = match open(&hub, &id, &method, &uri, &headers, body).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    if !app.valid_channel(&name) || Kind::of(&name) != Kind::Presence {
        return refuse(&hub, bad("users are listed for presence channels only"));
    }
    let presence = match hub.presence(&app.hub_channel(&name)).await {
        Ok(presence) => presence,
        Err(e) => return reply_error(&e),
    };
    let mut ids: Vec<String> = presence
        .clients
        .iter()
        .map(|c| super::frame::member(&c.user, &c.client).0)
        .collect();
    ids.sort();
    ids.dedup();
    let users: Vec<Value> = ids.into_iter().map(|id| json!({ "id": id })).collect();
    Json(json!({ "users": users })).into_response()
}

pub(crate) async fn terminate_connections(
    State(hub): State<Arc<Hub>>,
    Path((id, user)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, _, _) = match open(&hub, &id, &method, &uri, &headers, body).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    // The hub's TERMINATED close, which a Pusher connection receives as 4009.
    match hub.disconnect_user(&app.hub_user(&user), None, None).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => reply_error(&e),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether the `info` parameter (comma-separated attributes) asks for `attribute`.
fn info_has(params: &[(String, String)], attribute: &str) -> bool {
    param(params, "info").is_some_and(|info| info.split(',').any(|a| a == attribute))
}
