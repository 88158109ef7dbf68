//! Server-sent events: `GET /sse?channel=a&channel=b` streams the channels' publications as
//! `text/event-stream`, to a plain `EventSource` with no SDK.
//!
//! The stream is a hub session like a WebSocket's (`session::run` over [`SseWire`]): Origin
//! (403) and credentials (401: cookie, token, the connect hook) are checked as for a WebSocket
//! upgrade, then the session subscribes each channel, recovering from the browser's
//! `Last-Event-ID` (see [`event_id`]), and the response starts only once every subscribe
//! succeeded, so a refused channel is a status (403, 400, ...) that an `EventSource` does not
//! retry, not a stream that ends and reconnects.

mod event_id;
mod wire;

use crate::http::ws::Refusal;
use crate::hub::Hub;
use crate::server::Permit;
use crate::session::{self, Grant, Mode, Transport};
use crate::transport::body::{Bounds, EventBody};
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use wire::SseWire;

/// `GET /sse`.
pub(crate) async fn stream(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(tracker): Extension<TaskTracker>,
    Extension(permit): Extension<Permit>,
    request: Request<Body>,
) -> Response {
    let (parts, _body) = request.into_parts();
    let headers = &parts.headers;
    let origin = crate::transport::stream::origin(headers);
    let identity = match crate::transport::admit(&hub, &parts, peer).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let channels = match channels(&hub, parts.uri.query()) {
        Ok(channels) => channels,
        Err(reason) => return Refusal::Hub(StatusCode::BAD_REQUEST, reason).respond(&hub, peer),
    };
    let opened = Opened {
        peer,
        tracker,
        permit,
        identity,
    };
    with_cors(open(hub, opened, headers, channels).await, origin)
}

/// An event stream admitted by its caller: who it is for and what it holds.
pub(crate) struct Opened {
    pub(crate) peer: SocketAddr,
    pub(crate) tracker: TaskTracker,
    pub(crate) permit: Permit,
    pub(crate) identity: crate::auth::Identity,
}

/// Runs the session of an admitted event stream on `channels` (resumed from the request's
/// `Last-Event-ID`) and answers once every subscribe succeeded, or with the first refusal.
pub(crate) async fn open(
    hub: Arc<Hub>,
    opened: Opened,
    headers: &HeaderMap,
    channels: Vec<String>,
) -> Response {
    let Opened {
        peer,
        tracker,
        permit,
        identity,
    } = opened;
    let last = headers.get("last-event-id").map(HeaderValue::as_bytes);
    let resume = event_id::parse(last, channels.len());
    let (body, body_rx) = event_body(&hub, Transport::Sse);
    let (ready_tx, ready_rx) = oneshot::channel();
    let wire = SseWire::new(body, channels.into_iter().zip(resume).collect(), ready_tx);
    let grant = Grant {
        identity,
        mode: Mode::Protocol,
        transport: Transport::Sse,
    };
    // Graceful shutdown waits for this session through the tracker token.
    let token = tracker.token();
    let session_hub = hub.clone();
    tokio::spawn(async move {
        session::run(session_hub, wire, grant).await;
        drop((token, permit));
    });
    match ready_rx.await {
        Ok(Ok(())) => events(body_rx),
        Ok(Err((status, reason))) => {
            hub.metrics.rejected(status.as_u16());
            tracing::debug!(%peer, status = status.as_u16(), reason, "event stream refused");
            (status, format!("{reason}\n")).into_response()
        }
        // The session ended before it could say: an internal failure.
        Err(_) => {
            Refusal::Hub(StatusCode::SERVICE_UNAVAILABLE, "session ended").respond(&hub, peer)
        }
    }
}

/// The request's channels, in order: at least one, at most `limits.max_subscriptions`.
pub(crate) fn channels(hub: &Hub, query: Option<&str>) -> Result<Vec<String>, &'static str> {
    let max = hub.live().config.limits.max_subscriptions;
    let mut channels = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "channel" {
            continue;
        }
        if channels.len() == max {
            hub.metrics.limit_hit("max_subscriptions");
            return Err("too many channels");
        }
        if channels.iter().any(|c| *c == value) {
            return Err("channel named twice");
        }
        channels.push(value.into_owned());
    }
    if channels.is_empty() {
        return Err("missing channel query parameter");
    }
    Ok(channels)
}

/// An event body for a session on `transport`, and the receiver its response streams from.
pub(crate) fn event_body(
    hub: &Hub,
    transport: Transport,
) -> (EventBody, mpsc::Receiver<bytes::Bytes>) {
    let (tx, rx) = mpsc::channel(1);
    let bounds = Bounds {
        max_buffer: hub.ws.max_write_buffer_size,
        write_timeout: Some(hub.config.limits.write_timeout).filter(|t| !t.is_zero()),
        heartbeat: hub.config.heartbeat.interval,
        close_wait: hub.ws.close_timeout,
    };
    let bytes = hub.metrics.transport_bytes(transport.name());
    (EventBody::new(tx, bounds, bytes), rx)
}

/// The 200 with the event stream.
pub(crate) fn events(mut body: mpsc::Receiver<bytes::Bytes>) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| {
        body.poll_recv(cx)
            .map(|chunk| chunk.map(Ok::<_, Infallible>))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx buffers proxied responses unless told not to; an event must not wait in a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// CORS for an allowed cross-origin `EventSource` (`withCredentials` included): the Origin
/// policy already admitted `origin`, so it is echoed.
pub(crate) fn with_cors(mut response: Response, origin: Option<&str>) -> Response {
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    response
}
