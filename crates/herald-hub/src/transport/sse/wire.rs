//! The SSE wire: a session's replies and pushes as `text/event-stream` events.
//!
//! The client sends nothing after its `GET`, so the wire plays the client's part: it hands the
//! session one `subscribe` command per channel of the request (with `recover` when the
//! `Last-Event-ID` gave a position), and turns the replies into events. The session's rules
//! (permissions, limits, recovery) apply unchanged. Output goes into a buffer bounded by
//! `max_write_buffer_size`; polling `next` moves it to the response body, and a client that
//! takes nothing for `limits.write_timeout` is dropped (4004), like a WebSocket's.

use super::event_id::{self, Resume};
use crate::broadcast::{Broadcast, PresenceEvent};
use crate::session::{Gone, Wire};
use crate::transport::body::EventBody;
use axum::http::StatusCode;
use herald::Message;
use herald_hub_protocol::{Call, Command, Disconnect, ErrorCode, StreamPosition, SubscribeParams};
use serde_json::Value;
use tokio::sync::oneshot;

/// Why the stream could not start: the status and reason of the response sent instead.
pub(crate) type Refused = (StatusCode, String);

/// One channel of the request.
struct Channel {
    name: String,
    resume: Resume,
    /// The last position sent (by a `ready` or a publication); `None` until subscribed.
    position: Option<StreamPosition>,
}

/// A session's wire to one event stream.
pub(crate) struct SseWire {
    body: EventBody,
    channels: Vec<Channel>,
    /// The next channel to subscribe (its index); past the end once all were asked for.
    asking: usize,
    /// Subscribe replies still due.
    due: usize,
    /// Told once the stream starts or cannot: the response waits for it.
    ready: Option<oneshot::Sender<Result<(), Refused>>>,
    client: String,
    user: String,
    /// Set when the wire gave up: `next` then ends the session with this code.
    ended: Option<u16>,
}

impl SseWire {
    /// A wire for `channels` (names and resume points), writing into `body`.
    pub(crate) fn new(
        body: EventBody,
        channels: Vec<(String, Resume)>,
        ready: oneshot::Sender<Result<(), Refused>>,
    ) -> Self {
        let due = channels.len();
        Self {
            body,
            channels: channels
                .into_iter()
                .map(|(name, resume)| Channel {
                    name,
                    resume,
                    position: None,
                })
                .collect(),
            asking: 0,
            due,
            ready: Some(ready),
            client: String::new(),
            user: String::new(),
            ended: None,
        }
    }

    /// The `subscribe` command for channel `i`; its id is `i + 1`.
    fn subscribe(&self, i: usize) -> Message {
        let channel = &self.channels[i];
        let recover = match &channel.resume {
            Resume::From(position) => Some(position.clone()),
            Resume::Fresh | Resume::Lost => None,
        };
        let command = Command {
            id: i as u64 + 1,
            call: Call::Subscribe(SubscribeParams {
                channel: channel.name.clone(),
                recover,
                join_leave: false,
                // A reconnect that lost its place gets no history replayed as if new.
                latest: (channel.resume == Resume::Lost).then_some(0),
            }),
        };
        // serde_json fails only on maps with non-string keys; a command has none.
        Message::text(serde_json::to_string(&command).expect("a command serialises"))
    }

    fn id(&self) -> String {
        let positions: Vec<_> = self.channels.iter().map(|c| c.position.clone()).collect();
        event_id::format(&positions)
    }

    /// A subscribe reply: its publications as events, a `recovery` event when the client
    /// had a position and did not get everything after it, then where the channel stands.
    fn on_subscribed(&mut self, i: usize, result: &Value) {
        let name = self.channels[i].name.clone();
        let epoch = result["epoch"].as_str().unwrap_or_default().to_owned();
        let offset = result["offset"].as_u64().unwrap_or_default();
        let publications = result["publications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for mut publication in publications {
            let at = publication["offset"].as_u64().unwrap_or_default();
            self.channels[i].position = Some(StreamPosition {
                offset: at,
                epoch: epoch.clone(),
            });
            let id = self.id();
            if let Some(p) = publication.as_object_mut() {
                p.insert("push".into(), "pub".into());
                p.insert("channel".into(), name.clone().into());
                p.insert("epoch".into(), epoch.clone().into());
            }
            self.body.event(None, Some(&id), &publication.to_string());
        }
        self.channels[i].position = Some(StreamPosition {
            offset,
            epoch: epoch.clone(),
        });
        let asked = self.channels[i].resume != Resume::Fresh;
        if asked && result["recovered"] != Value::Bool(true) {
            let data = serde_json::json!({
                "channel": name, "recovered": false, "epoch": epoch, "offset": offset,
            });
            self.body.event(Some("recovery"), None, &data.to_string());
        }
    }

    /// Every channel is subscribed: the `ready` event carries the id that a reconnect
    /// resumes from, so even a stream that never saw a publication recovers.
    fn on_ready(&mut self) {
        let channels: serde_json::Map<String, Value> = self
            .channels
            .iter()
            .filter_map(|c| {
                let p = c.position.as_ref()?;
                Some((
                    c.name.clone(),
                    serde_json::json!({"epoch": p.epoch, "offset": p.offset}),
                ))
            })
            .collect();
        let data =
            serde_json::json!({"client": self.client, "user": self.user, "channels": channels});
        let id = self.id();
        self.body.event(Some("ready"), Some(&id), &data.to_string());
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
    }

    /// A subscribe the session refused: the response says why instead of a stream.
    fn refuse(&mut self, error: &Value) {
        let code = error["code"].as_u64().unwrap_or_default();
        let status = refusal_status(code);
        let message = error["message"].as_str().unwrap_or("subscribe refused");
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err((status, message.to_owned())));
        }
        self.ended = Some(Disconnect::POLICY.code);
    }
}

/// The HTTP status for a subscribe refused with `code`.
fn refusal_status(code: u64) -> StatusCode {
    match u16::try_from(code).map(ErrorCode) {
        Ok(ErrorCode::PERMISSION_DENIED) => StatusCode::FORBIDDEN,
        Ok(ErrorCode::RATE_LIMITED) => StatusCode::TOO_MANY_REQUESTS,
        Ok(ErrorCode::UNAVAILABLE) => StatusCode::SERVICE_UNAVAILABLE,
        Ok(ErrorCode::INTERNAL) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl Wire for SseWire {
    async fn next(&mut self) -> Option<Result<Message, Gone>> {
        loop {
            if let Some(code) = self.ended {
                return Some(Err(Gone(code)));
            }
            if self.asking < self.channels.len() {
                self.asking += 1;
                return Some(Ok(self.subscribe(self.asking - 1)));
            }
            if let Err(code) = self.body.flush().await {
                self.ended = Some(code);
                continue;
            }
            if self.body.idle().await {
                return None;
            }
        }
    }

    fn send_text(&mut self, text: String) -> Result<(), Gone> {
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            return Ok(());
        };
        if let Some(push) = value["push"].as_str() {
            if push == "connected" {
                self.client = value["client"].as_str().unwrap_or_default().to_owned();
                self.user = value["user"].as_str().unwrap_or_default().to_owned();
            } else {
                self.body.event(Some(push), None, &text);
            }
            return Ok(());
        }
        let Some(i) = value["id"]
            .as_u64()
            .and_then(|id| usize::try_from(id).ok())
            .and_then(|id| id.checked_sub(1))
            .filter(|&i| i < self.channels.len())
        else {
            return Ok(());
        };
        if !value["error"].is_null() {
            self.refuse(&value["error"]);
            return Ok(());
        }
        self.on_subscribed(i, &value["result"]);
        self.due = self.due.saturating_sub(1);
        if self.due == 0 {
            self.on_ready();
        }
        Ok(())
    }

    fn send_publication(&mut self, broadcast: &Broadcast, _plain: bool) -> Result<(), Gone> {
        let position = StreamPosition {
            offset: broadcast.publication.offset,
            epoch: broadcast.epoch.to_string(),
        };
        if let Some(c) = self
            .channels
            .iter_mut()
            .find(|c| *c.name == *broadcast.channel)
        {
            c.position = Some(position);
        }
        let id = self.id();
        self.body.event(None, Some(&id), broadcast.json());
        Ok(())
    }

    /// Only Pusher sessions send prepared messages, and they run over WebSockets alone
    /// (`/app/{key}`): reaching this is a broken session, ended as an internal error.
    fn send_prepared(&mut self, _message: &herald::PreparedMessage) -> Result<(), Gone> {
        Err(Gone(1011))
    }

    fn send_presence(&mut self, _event: &PresenceEvent) -> Result<(), Gone> {
        // The wire subscribes without join and leave pushes.
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.body.is_full()
    }

    async fn close(&mut self, reason: Disconnect) {
        if let Some(ready) = self.ready.take() {
            let status = match reason {
                Disconnect::CONNECTION_LIMIT => StatusCode::TOO_MANY_REQUESTS,
                Disconnect::UNAUTHORIZED => StatusCode::UNAUTHORIZED,
                Disconnect::POLICY => StatusCode::FORBIDDEN,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let _ = ready.send(Err((status, reason.reason.to_owned())));
            return;
        }
        self.body.close(reason).await;
    }

    fn closed_code(&self) -> u16 {
        self.ended.unwrap_or(1006)
    }
}
