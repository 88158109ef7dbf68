//! One open connection: messages in, commands out, the liveness timer, until it ends.

use super::pending::Waiting;
use super::{Driver, Ended, Request, Socket, Stop};
use crate::event::{Disconnected, Event};
use crate::{Error, TokenError};
use herald::{CloseCode, Message};
use herald_hub_protocol::{
    Call, ChannelParams, Command, Connected, Disconnect, ErrorBody, ErrorCode, HistoryParams,
    HistoryResult, Push, RefreshParams, RefreshResult, Reply, StreamPosition, SubscribeResult,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::time::Duration;
use tokio::time::Instant;

/// The server's ping interval until its `connected` push says otherwise (the hub's default).
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// The longest ping interval believed: a server cannot switch liveness checks off.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(3600);

/// The state of the connection being served.
struct Conn {
    socket: Socket,
    /// The `connected` push came: commands go out now.
    connected: bool,
    ping_interval: Duration,
    /// When silence becomes suspicious.
    idle_at: Instant,
    /// The last error the socket reported.
    error: Option<herald::Error>,
}

/// What the serve loop does next.
enum Next {
    Continue,
    End(Box<Ended>),
}

#[derive(Deserialize)]
struct Probe {
    id: Option<u64>,
}

impl Driver {
    /// Serves an open connection until it ends.
    pub(super) async fn serve(&mut self, socket: Socket) -> Ended {
        let mut conn = Conn {
            socket,
            connected: false,
            ping_interval: DEFAULT_PING_INTERVAL,
            // A hub sends `connected` first: one that says nothing in time is not serving.
            idle_at: Instant::now() + self.config.command_timeout,
            error: None,
        };
        loop {
            let wake = [
                Some(conn.idle_at),
                self.pending.next_deadline(),
                self.channels.next_retry().filter(|_| conn.connected),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(conn.idle_at);
            let next = tokio::select! {
                item = conn.socket.recv() => self.on_item(&mut conn, item).await,
                request = self.requests.recv() => self.online(&mut conn, request).await,
                Some(token) = self.tokens.1.recv() => self.on_token(&mut conn, token).await,
                () = tokio::time::sleep_until(wake) => self.on_timer(&mut conn).await,
            };
            if let Next::End(ended) = next {
                return *ended;
            }
        }
    }

    fn alive(&self, conn: &mut Conn) {
        conn.idle_at = Instant::now() + conn.ping_interval + self.config.ping_margin;
    }

    async fn on_item(&mut self, conn: &mut Conn, item: Option<herald::Result<Message>>) -> Next {
        match item {
            Some(Ok(Message::Text(text))) => {
                self.alive(conn);
                let next = self.on_text(conn, text.as_str()).await;
                self.flush_events().await;
                next
            }
            Some(Ok(_)) => {
                self.alive(conn);
                Next::Continue
            }
            Some(Err(e)) => {
                conn.error = Some(e);
                Next::Continue
            }
            None => Next::End(Box::new(self.remote_end(conn))),
        }
    }

    /// The socket ended: with the server's close, or without one.
    fn remote_end(&self, conn: &mut Conn) -> Ended {
        let closed = conn.socket.closed().cloned();
        let code = closed.as_ref().map_or(1006, end_code);
        let reason = closed
            .as_ref()
            .map(|c| c.reason().to_owned())
            .filter(|r| !r.is_empty())
            .or_else(|| conn.error.as_ref().map(ToString::to_string))
            .unwrap_or_default();
        // RFC 6455 §7.4.1 1006: no close frame; a 4501 with a provider: fetch a fresh token.
        let reconnect = Disconnect::should_reconnect(code)
            || (code == Disconnect::UNAUTHORIZED.code && self.config.token.renews());
        Ended {
            disconnected: Disconnected {
                code,
                reason,
                will_reconnect: false,
                opened: true,
                closed,
                error: conn.error.take().map(Error::WebSocket),
            },
            reconnect,
            stop: None,
        }
    }

    /// The connection is dead or unusable: drop it without a closing handshake.
    fn abandon(&self, conn: &mut Conn, error: Error) -> Next {
        tracing::debug!(%error, "dropping the connection");
        Next::End(Box::new(Ended {
            disconnected: Disconnected {
                code: 1006,
                reason: error.to_string(),
                will_reconnect: false,
                opened: true,
                closed: conn.socket.closed().cloned(),
                error: Some(error),
            },
            reconnect: true,
            stop: None,
        }))
    }

    async fn online(&mut self, conn: &mut Conn, request: Option<Request>) -> Next {
        let request = match request {
            Some(Request::Close { done }) => return self.close(conn, Stop::Closed(done)).await,
            None => return self.close(conn, Stop::Dropped).await,
            Some(request) => request,
        };
        if !conn.connected {
            // Nothing goes out before the `connected` push; the request waits as offline.
            // (`offline` stops only for `Close` and a closed request channel, handled above.)
            let _ = self.offline(Some(request));
            return Next::Continue;
        }
        match request {
            Request::Command { call, reply } => {
                if !self.pending.has_room(self.config.max_pending) {
                    let _ = reply.send(Err(Error::TooManyPending));
                    return Next::Continue;
                }
                self.send(conn, call, Waiting::App(reply), None).await
            }
            Request::Subscribe {
                channel,
                options,
                reply,
            } => {
                self.note_subscription(&channel, options, reply);
                self.resubscribe(conn).await
            }
            Request::Unsubscribe { channel, reply } => {
                let Some(held) = self.channels.remove(&channel) else {
                    let _ = reply.send(Err(Error::NotSubscribed(channel)));
                    return Next::Continue;
                };
                if matches!(held.phase, crate::channels::Phase::Idle) {
                    let _ = reply.send(Ok(()));
                    return Next::Continue;
                }
                let call = Call::Unsubscribe(ChannelParams { channel });
                self.send(conn, call, Waiting::Unsubscribe(reply), None)
                    .await
            }
            Request::Close { .. } => Next::Continue,
        }
    }

    /// Closes with 1000 and stops.
    async fn close(&mut self, conn: &mut Conn, stop: Stop) -> Next {
        let closed = conn
            .socket
            .close(CloseCode::NORMAL, "")
            .await
            .ok()
            .or_else(|| conn.socket.closed().cloned());
        Next::End(Box::new(Ended {
            disconnected: Disconnected {
                code: 1000,
                reason: "closed by the client".into(),
                will_reconnect: false,
                opened: true,
                closed,
                error: None,
            },
            reconnect: false,
            stop: Some(stop),
        }))
    }

    /// Sends a command; `deadline` for the client's own, whose silence means a dead link.
    async fn send(
        &mut self,
        conn: &mut Conn,
        call: Call,
        waiting: Waiting,
        deadline: Option<Instant>,
    ) -> Next {
        let id = self.pending.add(waiting, deadline);
        let text = Command { id, call }.to_json();
        match conn.socket.send(Message::text(text)).await {
            Ok(()) => Next::Continue,
            Err(e) => self.abandon(conn, Error::WebSocket(e)),
        }
    }

    fn own_deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.config.command_timeout)
    }

    /// Sends the `subscribe` of every application channel due for one.
    async fn resubscribe(&mut self, conn: &mut Conn) -> Next {
        for params in self.channels.due(Instant::now()) {
            let waiting = Waiting::Subscribe(params.channel.clone());
            let deadline = self.own_deadline();
            if let Next::End(ended) = self
                .send(conn, Call::Subscribe(params), waiting, deadline)
                .await
            {
                return Next::End(ended);
            }
        }
        Next::Continue
    }

    async fn on_timer(&mut self, conn: &mut Conn) -> Next {
        let now = Instant::now();
        if self.pending.next_deadline().is_some_and(|at| at <= now) {
            return self.abandon(conn, Error::Dead);
        }
        if conn.connected && self.channels.next_retry().is_some_and(|at| at <= now) {
            return self.resubscribe(conn).await;
        }
        if conn.idle_at <= now && !conn.connected {
            return self.abandon(conn, Error::Dead);
        }
        if conn.idle_at <= now {
            // Ask once; the answer (or anything else) re-arms the idle timer.
            conn.idle_at = now + self.config.ping_timeout + conn.ping_interval;
            let deadline = Some(now + self.config.ping_timeout);
            return self.send(conn, Call::Ping, Waiting::Ping, deadline).await;
        }
        Next::Continue
    }

    async fn on_text(&mut self, conn: &mut Conn, text: &str) -> Next {
        let id = match serde_json::from_str::<Probe>(text) {
            Ok(probe) => probe.id,
            Err(e) => {
                tracing::debug!(error = %e, "message from the hub is not a JSON object");
                return Next::Continue;
            }
        };
        match id {
            Some(id) => self.on_reply(conn, id, text).await,
            None => match Push::parse(text) {
                Ok(push) => self.on_push(conn, push).await,
                Err(e) => {
                    tracing::debug!(error = %e, "unknown push from the hub");
                    Next::Continue
                }
            },
        }
    }

    async fn on_push(&mut self, conn: &mut Conn, push: Push) -> Next {
        match push {
            Push::Connected(connected) => return self.on_connected(conn, connected).await,
            Push::Pub(publication) => self.channels.on_publication(publication, &mut self.out),
            Push::Join(member) if self.channels.is_live(&member.channel) => {
                self.out.push(Event::Join(member));
            }
            Push::Leave(member) if self.channels.is_live(&member.channel) => {
                self.out.push(Event::Leave(member));
            }
            Push::Join(_) | Push::Leave(_) => {}
            Push::Subscribed(subscribed) => {
                let channel = subscribed.channel.clone();
                if let Some(since) = self
                    .channels
                    .on_server_subscribed(subscribed, &mut self.out)
                {
                    return self.catch_up(conn, channel, since).await;
                }
            }
            Push::Unsubscribed(unsubscribed) => {
                self.channels
                    .on_server_unsubscribed(unsubscribed, &mut self.out);
            }
            Push::Refresh(_) => self.refresh(),
        }
        Next::Continue
    }

    async fn on_connected(&mut self, conn: &mut Conn, connected: Connected) -> Next {
        if conn.connected {
            tracing::debug!("second connected push ignored");
            return Next::Continue;
        }
        conn.connected = true;
        self.attempt = 0;
        if connected.ping_interval > 0 {
            conn.ping_interval =
                Duration::from_secs(connected.ping_interval).min(MAX_PING_INTERVAL);
        }
        self.alive(conn);
        self.out.push(Event::Connected(connected));
        self.flush_events().await;
        if let Next::End(ended) = self.resubscribe(conn).await {
            return Next::End(ended);
        }
        while let Some(queued) = self.queue.pop_front() {
            if queued.reply.is_closed() {
                continue;
            }
            if let Next::End(ended) = self
                .send(conn, queued.call, Waiting::App(queued.reply), None)
                .await
            {
                return Next::End(ended);
            }
        }
        Next::Continue
    }

    /// Reads what a server-side subscription missed since `since`.
    async fn catch_up(&mut self, conn: &mut Conn, channel: String, since: StreamPosition) -> Next {
        let call = Call::History(HistoryParams {
            channel: channel.clone(),
            since: Some(since),
            limit: None,
            reverse: false,
        });
        let deadline = self.own_deadline();
        self.send(conn, call, Waiting::CatchUp(channel), deadline)
            .await
    }

    async fn on_reply(&mut self, conn: &mut Conn, id: u64, text: &str) -> Next {
        let Some(waiting) = self.pending.take(id) else {
            tracing::debug!(id, "reply to no command in flight");
            return Next::Continue;
        };
        let outcome = match serde_json::from_str::<Reply<Box<RawValue>>>(text) {
            Ok(Reply { error: Some(e), .. }) => Err(e),
            Ok(Reply { result, .. }) => Ok(result.unwrap_or_else(empty)),
            Err(e) => Err(ErrorBody::with_message(ErrorCode::INTERNAL, e.to_string())),
        };
        match waiting {
            Waiting::App(reply) => drop(reply.send(outcome.map_err(Error::Server))),
            Waiting::Unsubscribe(reply) => {
                drop(reply.send(outcome.map(drop).map_err(Error::Server)))
            }
            Waiting::Subscribe(channel) => self.on_subscribe_reply(&channel, outcome),
            Waiting::CatchUp(channel) => {
                let history = outcome.and_then(|raw| typed::<HistoryResult>(&raw));
                if let Some(since) = self.channels.on_catch_up(&channel, history, &mut self.out) {
                    return self.catch_up(conn, channel, since).await;
                }
            }
            Waiting::Refresh => match outcome.and_then(|raw| typed::<RefreshResult>(&raw)) {
                Ok(result) => self.out.push(Event::Refreshed {
                    expires: result.expires,
                }),
                Err(e) => self.out.push(Event::RefreshFailed(Error::Server(e))),
            },
            Waiting::Ping => {}
        }
        Next::Continue
    }

    fn on_subscribe_reply(&mut self, channel: &str, outcome: Result<Box<RawValue>, ErrorBody>) {
        match outcome.and_then(|raw| typed::<SubscribeResult>(&raw)) {
            Ok(result) => self
                .channels
                .on_subscribe_reply(channel, result, &mut self.out),
            Err(error) => {
                let backoff = self.config.backoff;
                let retry_at = |n| Instant::now() + backoff.delay(n);
                self.channels
                    .on_subscribe_error(channel, error, retry_at, &mut self.out);
            }
        }
    }

    /// The hub asked for a fresh token: fetch one off this task.
    fn refresh(&mut self) {
        let crate::Token::Provider(provider) = &self.config.token else {
            let error = TokenError::new("the hub asked for a fresh token and there is no provider");
            self.out.push(Event::RefreshFailed(Error::Token(error)));
            return;
        };
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let provider = provider.clone();
        let sender = self.tokens.0.clone();
        let generation = self.generation;
        let limit = self.config.connect_timeout;
        tokio::spawn(async move {
            let token = tokio::time::timeout(limit, provider.fetch())
                .await
                .unwrap_or_else(|_| Err(TokenError::new("the provider did not answer in time")));
            let _ = sender.send((generation, token)).await;
        });
    }

    async fn on_token(&mut self, conn: &mut Conn, (generation, token): super::FreshToken) -> Next {
        if generation != self.generation {
            return Next::Continue;
        }
        self.refreshing = false;
        match token {
            Ok(token) => {
                let call = Call::Refresh(RefreshParams { token });
                let deadline = self.own_deadline();
                self.send(conn, call, Waiting::Refresh, deadline).await
            }
            Err(e) => {
                self.emit(Event::RefreshFailed(Error::Token(e))).await;
                Next::Continue
            }
        }
    }
}

/// The code that ended a connection: the server's close, or ours when we failed it (1009 for
/// a message over the limit), else 1006.
fn end_code(closed: &herald::Closed) -> u16 {
    let ours = closed.sent.as_ref().filter(|_| closed.error.is_some());
    match (&closed.received, ours) {
        (Some(frame), _) | (None, Some(frame)) => frame.code.as_u16(),
        (None, None) => 1006,
    }
}

fn empty() -> Box<RawValue> {
    // "{}" is valid JSON; the fallback is never used.
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| Box::default())
}

fn typed<T: DeserializeOwned>(raw: &RawValue) -> Result<T, ErrorBody> {
    serde_json::from_str(raw.get())
        .map_err(|e| ErrorBody::with_message(ErrorCode::INTERNAL, format!("unexpected reply: {e}")))
}
