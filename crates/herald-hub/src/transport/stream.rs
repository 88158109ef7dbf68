//! Bidirectional emulation for herald.js where no WebSocket gets through: the downstream
//! `GET /stream` is an event stream whose every `data` is one `herald.v1` message (replies,
//! pushes, publications, as a WebSocket would carry them), and commands go up by
//! `POST /stream/{session}`, one `herald.v1` command per line.
//!
//! A POST may reach any node: the session id names the node holding the stream, and a POST
//! on another node is delivered through the broker's control bus (a survey that the holding
//! node answers with "delivered"), so no sticky sessions are needed. Unknown sessions, and
//! sessions whose node no longer answers, are 404 with the reason.

use crate::broadcast::{Broadcast, PresenceEvent};
use crate::control::{Deliver, Question};
use crate::http::api::read_bounded;
use crate::http::ws::Refusal;
use crate::hub::Hub;
use crate::server::Permit;
use crate::session::{self, Gone, Grant, Mode, Transport, Wire};
use crate::transport::body::EventBody;
use crate::transport::sse::{event_body, events, with_cors};
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use herald::Message;
use herald_hub_protocol::Disconnect;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// POSTed bodies queued per session before the session reads them; more are 429.
pub(crate) const INBOX: usize = 8;
/// The longest session id accepted.
pub(crate) const MAX_SESSION: usize = 64;

/// This node's downstreams by session id: where a POST's commands go.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    map: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
}

/// What became of a POST's commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Posted {
    /// Queued for the session.
    Delivered,
    /// The session's inbox is full.
    Busy,
    /// No such session here.
    Unknown,
}

impl Streams {
    /// Hands `body` to session `id`'s inbox, when this node holds it.
    pub(crate) fn deliver(&self, id: &str, body: Bytes) -> Posted {
        let map = lock(&self.map);
        let Some(inbox) = map.get(id) else {
            return Posted::Unknown;
        };
        match inbox.try_send(body) {
            Ok(()) => Posted::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Posted::Busy,
            Err(mpsc::error::TrySendError::Closed(_)) => Posted::Unknown,
        }
    }

    pub(crate) fn add(&self, id: String, inbox: mpsc::Sender<Bytes>) {
        lock(&self.map).insert(id, inbox);
    }

    pub(crate) fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A session id: the node's id, a dot, 128 random bits.
pub(crate) fn session_id(node: &str) -> String {
    format!("{node}.{:032x}", rand::random::<u128>())
}

/// `GET /stream`: admits like a WebSocket upgrade, then streams the session.
pub(crate) async fn downstream(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(tracker): Extension<TaskTracker>,
    Extension(permit): Extension<Permit>,
    request: Request<Body>,
) -> Response {
    let (parts, _body) = request.into_parts();
    let headers = &parts.headers;
    let origin = origin(headers);
    let identity = match super::admit(&hub, &parts, peer).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let (mut body, body_rx) = event_body(&hub, Transport::Stream);
    let id = session_id(hub.node_id());
    let data = serde_json::json!({ "session": id });
    body.event(Some("session"), None, &data.to_string());
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    hub.streams.add(id.clone(), inbox_tx);
    let wire = StreamWire {
        body,
        inbox,
        lines: VecDeque::new(),
        id,
        hub: hub.clone(),
        ended: None,
    };
    let grant = Grant {
        identity,
        mode: Mode::Protocol,
        transport: Transport::Stream,
    };
    let token = tracker.token();
    let session_hub = hub.clone();
    tokio::spawn(async move {
        session::run(session_hub, wire, grant).await;
        drop((token, permit));
    });
    with_cors(events(body_rx), origin)
}

/// `POST /stream/{session}` (and `POST /poll/{session}`): the body's commands, for the
/// session wherever it is held.
pub(crate) async fn post(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(session): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let transport = if uri.path().starts_with("/poll/") {
        Transport::Poll
    } else {
        Transport::Stream
    };
    let origin = origin(&headers);
    if let Err(response) = check_origin(&hub, &headers, peer) {
        return response;
    }
    let limit = hub.config.limits.max_message_size;
    let body = match read_bounded(&hub, &headers, body, limit, "stream_post_size").await {
        Ok(body) => body,
        Err(response) => {
            let status = response.status();
            let reason = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "request body too large",
                StatusCode::REQUEST_TIMEOUT => "request body timed out",
                _ => "unreadable body",
            };
            hub.metrics
                .transport_refused(transport.name(), status.as_u16(), reason);
            return with_cors(response, origin);
        }
    };
    let outcome = hub.post_to_stream(&session, body).await;
    let response = match outcome {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err((status, reason)) => {
            hub.metrics.rejected(status.as_u16());
            hub.metrics
                .transport_refused(transport.name(), status.as_u16(), reason);
            tracing::debug!(%peer, status = status.as_u16(), reason, "stream post refused");
            (status, format!("{reason}\n")).into_response()
        }
    };
    with_cors(response, origin)
}

pub(crate) fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

pub(crate) fn check_origin(
    hub: &Hub,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(), Response> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if hub.live().origins.allows(origin(headers), host) {
        return Ok(());
    }
    Err(Refusal::Hub(StatusCode::FORBIDDEN, "origin not allowed").respond(hub, peer))
}

impl Hub {
    /// Delivers a POST's commands to session `id`: here when this node holds it, else
    /// through a survey that the holding node answers.
    ///
    /// # Errors
    /// The status and reason for the client: 404 (unknown session, or its node does not
    /// answer), 429 (its inbox is full), 503 (the broker is unreachable).
    async fn post_to_stream(
        &self,
        id: &str,
        body: Bytes,
    ) -> Result<(), (StatusCode, &'static str)> {
        let unknown = (StatusCode::NOT_FOUND, "unknown session");
        let node = match id.split_once('.') {
            Some((node, _)) if id.len() <= MAX_SESSION && !node.is_empty() => node,
            _ => return Err(unknown),
        };
        let answer = if node == self.node_id() {
            self.streams.deliver(id, body)
        } else {
            let question = Question {
                deliver: Some(Deliver {
                    session: id.to_owned(),
                    commands: String::from_utf8_lossy(&body).into_owned(),
                }),
                ..Question::default()
            };
            let reports = self
                .survey(question)
                .await
                .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable"))?;
            match reports.iter().find(|r| r.node == node) {
                Some(report) => report.delivered.unwrap_or(Posted::Unknown),
                None => return Err((StatusCode::NOT_FOUND, "the session's node does not answer")),
            }
        };
        match answer {
            Posted::Delivered => Ok(()),
            Posted::Busy => {
                self.metrics.limit_hit("stream_inbox");
                Err((StatusCode::TOO_MANY_REQUESTS, "too many commands waiting"))
            }
            Posted::Unknown => Err(unknown),
        }
    }
}

/// A POST's lines, as commands; a body that is not UTF-8 ends the session (4500) as a
/// malformed command would.
pub(crate) fn take_lines(lines: &mut VecDeque<String>, body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else {
        lines.push_back(String::new());
        return;
    };
    let posted = text.split('\n').map(str::trim).filter(|l| !l.is_empty());
    lines.extend(posted.map(str::to_owned));
}

/// The downstream of one emulated connection.
struct StreamWire {
    body: EventBody,
    inbox: mpsc::Receiver<Bytes>,
    /// Commands POSTed and not yet read by the session.
    lines: VecDeque<String>,
    id: String,
    hub: Arc<Hub>,
    ended: Option<u16>,
}

impl Drop for StreamWire {
    fn drop(&mut self) {
        self.hub.streams.remove(&self.id);
    }
}

impl StreamWire {
    fn take(&mut self, body: &[u8]) {
        take_lines(&mut self.lines, body);
    }
}

impl Wire for StreamWire {
    async fn next(&mut self) -> Option<Result<Message, Gone>> {
        loop {
            if let Some(code) = self.ended {
                return Some(Err(Gone(code)));
            }
            if let Some(line) = self.lines.pop_front() {
                return Some(Ok(Message::text(line)));
            }
            if let Err(code) = self.body.flush().await {
                self.ended = Some(code);
                continue;
            }
            tokio::select! {
                gone = self.body.idle() => if gone {
                    return None;
                },
                posted = self.inbox.recv() => match posted {
                    Some(body) => self.take(&body),
                    None => return None,
                },
            }
        }
    }

    fn send_text(&mut self, text: String) -> Result<(), Gone> {
        self.body.event(None, None, &text);
        Ok(())
    }

    fn send_publication(&mut self, broadcast: &Broadcast, _plain: bool) -> Result<(), Gone> {
        self.body.event(None, None, broadcast.json());
        Ok(())
    }

    /// Only Pusher sessions send prepared messages, and they run over WebSockets alone
    /// (`/app/{key}`): reaching this is a broken session, ended as an internal error.
    fn send_prepared(&mut self, _message: &herald::PreparedMessage) -> Result<(), Gone> {
        Err(Gone(1011))
    }

    fn send_presence(&mut self, event: &PresenceEvent) -> Result<(), Gone> {
        // Presence pushes are built uncompressed: the payload is the JSON text.
        let text = String::from_utf8_lossy(event.message().payload());
        self.body.event(None, None, &text);
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.body.is_full()
    }

    async fn close(&mut self, reason: Disconnect) {
        self.body.close(reason).await;
    }

    fn closed_code(&self) -> u16 {
        self.ended.unwrap_or(1006)
    }
}
