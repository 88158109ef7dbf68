//! Long-polling, the last resort where a proxy holds streamed responses back: the session of
//! `/stream` (the same `herald.v1` commands and pushes, the same session ids, commands POSTed
//! to `/poll/{session}` or `/stream/{session}` on any node), with a downstream made of
//! requests: `GET /poll/{session}?last=N` answers the messages after number `N` as one JSON
//! body, held until there is one or `heartbeat.interval` passed.
//!
//! Nothing acknowledged is lost: every message gets the next number (the first is 1), and a
//! poll's `last` acknowledges everything up to it; the rest stays queued, so an answer lost
//! in flight is sent again to the next poll. The queue holds at most
//! `max_write_buffer_size` bytes unacknowledged: at the bound the session stops taking
//! deliveries, and its delivery queue overflows with 4001 as on every transport. A session
//! with no poll held and none for `limits.poll_timeout` ends with 4004.
//!
//! A poll on another node is answered through the broker's control bus: a survey that the
//! holding node answers with what is queued at that moment, asked again every
//! [`REMOTE_RETRY`] while nothing is, until the poll's hold time passed.

use crate::control::{PollAsk, Question};
use crate::hub::Hub;
use crate::server::Permit;
use crate::session::{self, Gone, Grant, Mode, Transport, Wire};
use crate::transport::sse::with_cors;
use crate::transport::stream::{self, INBOX, MAX_SESSION, check_origin, origin, take_lines};
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use herald::Message;
use herald_hub_protocol::Disconnect;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// Most message bytes one answer carries (always at least one message).
const BATCH: usize = 256 << 10;
/// Most message bytes an answer through the control bus carries: escaped as JSON strings
/// they stay under the bus's bound (`broker::MAX_CONTROL_SIZE`).
const REMOTE_BATCH: usize = 128 << 10;
/// How often a poll held on another node asks the holding node again while nothing is queued.
pub(crate) const REMOTE_RETRY: Duration = Duration::from_millis(250);

/// A refused poll: its status and reason.
type Refused = (StatusCode, &'static str);

/// This node's long-polling sessions by id: their queued messages.
#[derive(Debug, Default)]
pub(crate) struct Polls {
    map: Mutex<HashMap<String, Arc<Outbox>>>,
}

impl Polls {
    fn get(&self, id: &str) -> Option<Arc<Outbox>> {
        lock(&self.map).get(id).cloned()
    }

    /// A poll that reached another node: acknowledges up to `last` and answers what is
    /// queued now.
    pub(crate) fn answer(&self, id: &str, last: u64) -> Polled {
        let Some(outbox) = self.get(id) else {
            return Polled::refused(PollOutcome::Unknown);
        };
        let mut queue = lock(&outbox.queue);
        if let Err(outcome) = queue.ack(last) {
            return Polled::refused(outcome);
        }
        queue.last_poll = Instant::now();
        let polled = queue.batch(REMOTE_BATCH);
        if polled.disconnect.is_some() {
            outbox.taken.notify_one();
        }
        polled
    }
}

/// What a poll got, as the holding node answers it (also through the control bus).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Polled {
    pub(crate) outcome: PollOutcome,
    /// The number of `messages[0]`.
    #[serde(default)]
    pub(crate) from: u64,
    /// `herald.v1` messages, each one JSON text.
    #[serde(default)]
    pub(crate) messages: Vec<String>,
    /// The session ended: its close code and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) disconnect: Option<(u16, String)>,
}

/// Whether a poll could be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PollOutcome {
    /// Answered.
    Ok,
    /// No such session on the node.
    Unknown,
    /// `last` is past the newest message sent.
    Ahead,
    /// `last` is before messages already acknowledged (a replayed poll).
    Behind,
}

impl Polled {
    fn refused(outcome: PollOutcome) -> Self {
        Self {
            outcome,
            from: 0,
            messages: Vec::new(),
            disconnect: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.disconnect.is_none()
    }

    /// The status and reason of a poll that was not answered.
    fn refusal(&self) -> Option<Refused> {
        match self.outcome {
            PollOutcome::Ok => None,
            PollOutcome::Unknown => Some((StatusCode::NOT_FOUND, "unknown session")),
            PollOutcome::Ahead => Some((StatusCode::BAD_REQUEST, "last is past what was sent")),
            PollOutcome::Behind => Some((StatusCode::CONFLICT, "last was acknowledged already")),
        }
    }

    /// The answer's body: `{"from":F,"messages":[...]}`, with `"disconnect"` once the session
    /// ended. The messages are embedded as the JSON they are.
    fn body(&self) -> String {
        let size: usize = self.messages.iter().map(|m| m.len() + 1).sum();
        let mut body = String::with_capacity(size + 64);
        body.push_str(r#"{"from":"#);
        body.push_str(&self.from.to_string());
        body.push_str(r#","messages":["#);
        for (n, message) in self.messages.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(message);
        }
        body.push(']');
        if let Some((code, reason)) = &self.disconnect {
            let data = serde_json::json!({"code": code, "reason": reason});
            body.push_str(r#","disconnect":"#);
            body.push_str(&data.to_string());
        }
        body.push('}');
        body
    }

    /// Whether what came through the bus is what a node sends: JSON messages.
    fn is_well_formed(&self) -> bool {
        self.messages
            .iter()
            .all(|m| serde_json::from_str::<serde::de::IgnoredAny>(m).is_ok())
    }
}

/// One session's unacknowledged messages, shared by its wire and the polls.
#[derive(Debug)]
struct Outbox {
    queue: Mutex<Queue>,
    /// Woken when a message is queued, the session ends or a newer poll arrives.
    changed: Notify,
    /// Woken when a poll took the closing disconnect.
    taken: Notify,
}

#[derive(Debug)]
struct Queue {
    /// The number of `messages[0]`.
    first: u64,
    messages: VecDeque<String>,
    bytes: usize,
    disconnect: Option<Disconnect>,
    /// Polls received: a held poll that is no longer the newest is answered at once.
    polls: u64,
    /// Whether a poll is held here (the session does not expire meanwhile).
    held: bool,
    /// When the last poll ended.
    last_poll: Instant,
}

impl Queue {
    /// Drops the messages up to `last`.
    fn ack(&mut self, last: u64) -> Result<(), PollOutcome> {
        let end = self.first + self.messages.len() as u64;
        if last >= end {
            return Err(PollOutcome::Ahead);
        }
        if last + 1 < self.first {
            return Err(PollOutcome::Behind);
        }
        while self.first <= last {
            if let Some(message) = self.messages.pop_front() {
                self.bytes -= message.len();
            }
            self.first += 1;
        }
        Ok(())
    }

    /// The queued messages (at least one, then up to `max` bytes), not yet acknowledged.
    fn batch(&self, max: usize) -> Polled {
        let mut size = 0;
        let messages = self
            .messages
            .iter()
            .take_while(|m| {
                let take = size == 0 || size + m.len() <= max;
                size += m.len();
                take
            })
            .cloned()
            .collect::<Vec<_>>();
        let disconnect = self
            .disconnect
            .filter(|_| messages.len() == self.messages.len())
            .map(|d| (d.code, d.reason.to_owned()));
        Polled {
            outcome: PollOutcome::Ok,
            from: self.first,
            messages,
            disconnect,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `GET /poll`: admits like a WebSocket upgrade, starts the session and answers its id.
pub(crate) async fn open(
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
    let id = stream::session_id(hub.node_id());
    let outbox = Arc::new(Outbox {
        queue: Mutex::new(Queue {
            first: 1,
            messages: VecDeque::new(),
            bytes: 0,
            disconnect: None,
            polls: 0,
            held: false,
            last_poll: Instant::now(),
        }),
        changed: Notify::new(),
        taken: Notify::new(),
    });
    let (inbox_tx, inbox) = mpsc::channel(INBOX);
    hub.streams.add(id.clone(), inbox_tx);
    lock(&hub.polls.map).insert(id.clone(), outbox.clone());
    let wire = PollWire {
        outbox,
        inbox,
        lines: VecDeque::new(),
        id: id.clone(),
        hub: hub.clone(),
        ended: None,
    };
    let grant = Grant {
        identity,
        mode: Mode::Protocol,
        transport: Transport::Poll,
    };
    let token = tracker.token();
    let session_hub = hub.clone();
    tokio::spawn(async move {
        session::run(session_hub, wire, grant).await;
        drop((token, permit));
    });
    let body = serde_json::json!({ "session": id }).to_string();
    with_cors(json(body), origin)
}

/// `GET /poll/{session}?last=N`: the messages after `N`, from wherever the session is held.
pub(crate) async fn poll(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(session): Path<String>,
    request: Request<Body>,
) -> Response {
    let headers = request.headers();
    let origin = origin(headers);
    if let Err(response) = check_origin(&hub, headers, peer) {
        return response;
    }
    let answer = match last(request.uri().query()) {
        Some(last) => hub.poll(&session, last).await,
        None => Err((StatusCode::BAD_REQUEST, "missing or malformed last")),
    };
    let response = match answer {
        Ok(polled) => {
            let body = polled.body();
            hub.metrics
                .transport_bytes(Transport::Poll.name())
                .inc_by(body.len() as u64);
            json(body)
        }
        Err((status, reason)) => {
            hub.metrics.rejected(status.as_u16());
            hub.metrics
                .transport_refused(Transport::Poll.name(), status.as_u16(), reason);
            tracing::debug!(%peer, status = status.as_u16(), reason, "poll refused");
            (status, format!("{reason}\n")).into_response()
        }
    };
    with_cors(response, origin)
}

/// The `last` query parameter.
fn last(query: Option<&str>) -> Option<u64> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "last")
        .and_then(|(_, value)| value.parse().ok())
}

fn json(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl Hub {
    /// Answers a poll for session `id`: held here when this node holds the session, else
    /// asked of the holding node through surveys.
    ///
    /// # Errors
    /// The status and reason for the client: 404 (unknown session, or its node does not
    /// answer), 400 or 409 (a `last` the session cannot have sent), 409 (a newer poll came),
    /// 503 (the broker is unreachable).
    async fn poll(&self, id: &str, last: u64) -> Result<Polled, Refused> {
        let node = match id.split_once('.') {
            Some((node, _)) if id.len() <= MAX_SESSION && !node.is_empty() => node,
            _ => return Err((StatusCode::NOT_FOUND, "unknown session")),
        };
        let hold = self.config.heartbeat.interval;
        let polled = if node == self.node_id() {
            let outbox = self
                .polls
                .get(id)
                .ok_or((StatusCode::NOT_FOUND, "unknown session"))?;
            hold_poll(&outbox, last, hold).await?
        } else {
            self.poll_remote(id, node, last, hold).await?
        };
        match polled.refusal() {
            Some(refused) => Err(refused),
            None => Ok(polled),
        }
    }

    async fn poll_remote(
        &self,
        id: &str,
        node: &str,
        last: u64,
        hold: Duration,
    ) -> Result<Polled, Refused> {
        let deadline = Instant::now() + hold;
        loop {
            let question = Question {
                poll: Some(PollAsk {
                    session: id.to_owned(),
                    last,
                }),
                ..Question::default()
            };
            let reports = self
                .survey(question)
                .await
                .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable"))?;
            let Some(report) = reports.iter().find(|r| r.node == node) else {
                return Err((StatusCode::NOT_FOUND, "the session's node does not answer"));
            };
            let polled = report
                .polled
                .clone()
                .unwrap_or(Polled::refused(PollOutcome::Unknown));
            if !polled.is_well_formed() {
                self.metrics.control_message("malformed");
                return Err((
                    StatusCode::BAD_GATEWAY,
                    "malformed answer from the session's node",
                ));
            }
            if polled.outcome != PollOutcome::Ok || !polled.is_empty() {
                return Ok(polled);
            }
            if Instant::now() + REMOTE_RETRY >= deadline {
                return Ok(polled);
            }
            tokio::time::sleep(REMOTE_RETRY).await;
        }
    }
}

/// Holds a poll on the session's node until a message is queued, the session ends, a newer
/// poll arrives (409) or `hold` passed (an empty answer).
async fn hold_poll(outbox: &Outbox, last: u64, hold: Duration) -> Result<Polled, Refused> {
    let me = {
        let mut queue = lock(&outbox.queue);
        if let Err(outcome) = queue.ack(last) {
            return Ok(Polled::refused(outcome));
        }
        queue.polls += 1;
        queue.held = true;
        queue.polls
    };
    // An older poll still held is answered now.
    outbox.changed.notify_waiters();
    let _held = Held { outbox, me };
    let deadline = Instant::now() + hold;
    loop {
        let changed = outbox.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        {
            let queue = lock(&outbox.queue);
            if queue.polls != me {
                return Err((StatusCode::CONFLICT, "a newer poll came"));
            }
            let polled = queue.batch(BATCH);
            if !polled.is_empty() || Instant::now() >= deadline {
                if polled.disconnect.is_some() {
                    outbox.taken.notify_one();
                }
                return Ok(polled);
            }
        }
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// A held poll: when it ends (answered, or its client gone), the session's expiry clock
/// starts again.
struct Held<'a> {
    outbox: &'a Outbox,
    me: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut queue = lock(&self.outbox.queue);
        if queue.polls == self.me {
            queue.held = false;
            queue.last_poll = Instant::now();
        }
    }
}

/// The session side of a long-polling connection.
struct PollWire {
    outbox: Arc<Outbox>,
    inbox: mpsc::Receiver<Bytes>,
    /// Commands POSTed and not yet read by the session.
    lines: VecDeque<String>,
    id: String,
    hub: Arc<Hub>,
    ended: Option<u16>,
}

impl Drop for PollWire {
    fn drop(&mut self) {
        self.hub.streams.remove(&self.id);
        lock(&self.hub.polls.map).remove(&self.id);
    }
}

impl PollWire {
    fn push(&mut self, text: String) {
        let mut queue = lock(&self.outbox.queue);
        queue.bytes += text.len();
        queue.messages.push_back(text);
        drop(queue);
        self.outbox.changed.notify_waiters();
    }

    /// When the session expires, if no poll comes first.
    fn expiry(&self) -> Instant {
        let timeout = self.hub.config.limits.poll_timeout;
        let queue = lock(&self.outbox.queue);
        if queue.held {
            Instant::now() + timeout
        } else {
            queue.last_poll + timeout
        }
    }
}

impl Wire for PollWire {
    async fn next(&mut self) -> Option<Result<Message, Gone>> {
        loop {
            if let Some(code) = self.ended {
                return Some(Err(Gone(code)));
            }
            if let Some(line) = self.lines.pop_front() {
                return Some(Ok(Message::text(line)));
            }
            let expiry = self.expiry();
            tokio::select! {
                posted = self.inbox.recv() => match posted {
                    Some(body) => take_lines(&mut self.lines, &body),
                    None => return None,
                },
                () = tokio::time::sleep_until(expiry) => if self.expiry() <= Instant::now() {
                    self.ended = Some(Disconnect::WRITE_TIMEOUT.code);
                },
            }
        }
    }

    fn send_text(&mut self, text: String) -> Result<(), Gone> {
        self.push(text);
        Ok(())
    }

    fn send_publication(
        &mut self,
        broadcast: &crate::broadcast::Broadcast,
        _plain: bool,
    ) -> Result<(), Gone> {
        self.push(broadcast.json().to_owned());
        Ok(())
    }

    /// Only Pusher sessions send prepared messages, and they run over WebSockets alone.
    fn send_prepared(&mut self, _message: &herald::PreparedMessage) -> Result<(), Gone> {
        Err(Gone(1011))
    }

    fn send_presence(&mut self, event: &crate::broadcast::PresenceEvent) -> Result<(), Gone> {
        // Presence pushes are built uncompressed: the payload is the JSON text.
        self.push(String::from_utf8_lossy(event.message().payload()).into_owned());
        Ok(())
    }

    fn is_full(&self) -> bool {
        lock(&self.outbox.queue).bytes >= self.hub.ws.max_write_buffer_size
    }

    async fn close(&mut self, reason: Disconnect) {
        lock(&self.outbox.queue).disconnect = Some(reason);
        self.outbox.changed.notify_waiters();
        let wait = self.hub.ws.close_timeout;
        let _ = tokio::time::timeout(wait, self.outbox.taken.notified()).await;
    }

    fn closed_code(&self) -> u16 {
        self.ended.unwrap_or(1006)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(messages: &[&str]) -> Queue {
        Queue {
            first: 1,
            bytes: messages.iter().map(|m| m.len()).sum(),
            messages: messages.iter().map(|m| (*m).to_owned()).collect(),
            disconnect: None,
            polls: 0,
            held: false,
            last_poll: Instant::now(),
        }
    }

    #[test]
    fn a_poll_acknowledges_up_to_last_and_an_unacknowledged_answer_is_sent_again() {
        let mut q = queue(&["1", "2", "3"]);
        q.ack(0).unwrap();
        let first = q.batch(BATCH);
        assert_eq!((first.from, first.messages.len()), (1, 3));
        // The answer was lost: the same `last` gets the same messages.
        q.ack(0).unwrap();
        assert_eq!(q.batch(BATCH), first);
        q.ack(2).unwrap();
        let rest = q.batch(BATCH);
        assert_eq!((rest.from, rest.messages), (3, vec!["3".to_owned()]));
        assert_eq!(q.bytes, 1);
        assert_eq!(q.ack(4), Err(PollOutcome::Ahead));
        assert_eq!(q.ack(1), Err(PollOutcome::Behind));
        q.ack(3).unwrap();
        assert!(q.batch(BATCH).is_empty());
        assert_eq!(q.ack(3), Ok(()), "nothing new: the same last again");
    }

    #[test]
    fn a_batch_is_bounded_but_takes_at_least_one_message() {
        let q = queue(&["aaaa", "bb", "cc"]);
        assert_eq!(q.batch(2).messages, vec!["aaaa".to_owned()]);
        assert_eq!(q.batch(6).messages.len(), 2);
        let mut q = queue(&["x"]);
        q.disconnect = Some(Disconnect::SLOW);
        let last = q.batch(BATCH);
        assert_eq!(last.disconnect, Some((4001, "slow consumer".to_owned())));
        assert_eq!(
            last.body(),
            r#"{"from":1,"messages":[x],"disconnect":{"code":4001,"reason":"slow consumer"}}"#
        );
    }
}
