//! The connection task: connects, serves the connection, reconnects with backoff, and takes
//! the application's requests in every phase.

mod connection;
mod pending;

use crate::channels::Channels;
use crate::event::{Disconnected, Event, Subscribed};
use crate::{ClientConfig, Error, Result, SubscribeOptions, TokenError};
use herald::proto::HandshakeError;
use herald::{CloseCode, Closed, MaybeTlsStream, WebSocket};
use herald_hub_protocol::{Call, SUBPROTOCOL};
use pending::Pending;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

type Socket = WebSocket<MaybeTlsStream>;

/// What a [`Client`](crate::Client) asks of the task.
#[derive(Debug)]
pub(crate) enum Request {
    Command {
        call: Call,
        reply: oneshot::Sender<Result<Box<RawValue>>>,
    },
    Subscribe {
        channel: String,
        options: SubscribeOptions,
        reply: oneshot::Sender<Result<Subscribed>>,
    },
    Unsubscribe {
        channel: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Close {
        done: oneshot::Sender<Option<Closed>>,
    },
}

/// Why the task stops.
#[derive(Debug)]
enum Stop {
    /// [`Client::close`](crate::Client::close): it hears how the close went.
    Closed(oneshot::Sender<Option<Closed>>),
    /// Every handle was dropped.
    Dropped,
}

/// How a connection (or an attempt) ended.
#[derive(Debug)]
struct Ended {
    disconnected: Disconnected,
    /// Whether the cause allows reconnecting (the configuration may still say no).
    reconnect: bool,
    stop: Option<Stop>,
}

/// A command waiting for a connection.
#[derive(Debug)]
struct Queued {
    call: Call,
    reply: oneshot::Sender<Result<Box<RawValue>>>,
}

/// A token from the provider after a `refresh` push, for connection `generation`.
type FreshToken = (u64, std::result::Result<String, TokenError>);

pub(crate) struct Driver {
    config: Arc<ClientConfig>,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<Event>,
    /// Set by `Client::close` before its request: stops waiting on a full event queue.
    closing: watch::Receiver<bool>,
    channels: Channels,
    pending: Pending,
    queue: VecDeque<Queued>,
    /// Reconnect attempts since the last `connected` push.
    attempt: u32,
    /// Events to deliver, reused between messages.
    out: Vec<Event>,
    tokens: (mpsc::Sender<FreshToken>, mpsc::Receiver<FreshToken>),
    /// Counts connections, so that a token fetched for an earlier one is not used.
    generation: u64,
    refreshing: bool,
}

impl Driver {
    pub(crate) fn new(
        config: ClientConfig,
        requests: mpsc::Receiver<Request>,
        events: mpsc::Sender<Event>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        let channels = Channels::new(config.max_subscriptions, config.max_buffered);
        Self {
            config: Arc::new(config),
            requests,
            events,
            closing,
            channels,
            pending: Pending::new(),
            queue: VecDeque::new(),
            attempt: 0,
            out: Vec::new(),
            tokens: mpsc::channel(1),
            generation: 0,
            refreshing: false,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let ended = match self.open().await {
                Ok(socket) => self.serve(socket).await,
                Err(Ok(stop)) => return self.stop(stop, None),
                Err(Err(error)) => self.failed_connect(error),
            };
            self.pending.lose_all();
            self.channels.reset();
            self.refreshing = false;
            self.generation += 1;
            let Ended {
                mut disconnected,
                reconnect,
                stop,
            } = ended;
            disconnected.will_reconnect = reconnect && self.config.reconnect && stop.is_none();
            let will_reconnect = disconnected.will_reconnect;
            if let Some(stop) = stop {
                let closed = disconnected.closed.clone();
                // The application may be awaiting `close` instead of reading events.
                let _ = self.events.try_send(Event::Disconnected(disconnected));
                return self.stop(stop, closed);
            }
            tracing::debug!(code = disconnected.code, reason = %disconnected.reason, will_reconnect, "disconnected");
            self.emit(Event::Disconnected(disconnected)).await;
            if !will_reconnect {
                return self.fail_queue();
            }
            let delay = self.config.backoff.delay(self.attempt);
            self.attempt = self.attempt.saturating_add(1);
            if let Some(stop) = self.wait(delay).await {
                return self.stop(stop, None);
            }
        }
    }

    /// Connects, taking requests meanwhile. `Err(Ok(stop))`: the application stopped it.
    async fn open(&mut self) -> std::result::Result<Socket, std::result::Result<Stop, Error>> {
        let connecting = connect(self.config.clone());
        tokio::pin!(connecting);
        loop {
            tokio::select! {
                result = &mut connecting => return result.map_err(Err),
                request = self.requests.recv() => {
                    if let Some(stop) = self.offline(request) {
                        return Err(Ok(stop));
                    }
                }
            }
        }
    }

    /// Waits out a backoff delay, taking requests meanwhile.
    async fn wait(&mut self, delay: Duration) -> Option<Stop> {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return None,
                request = self.requests.recv() => {
                    if let Some(stop) = self.offline(request) {
                        return Some(stop);
                    }
                }
            }
        }
    }

    /// A request while no connection is up: commands wait, subscriptions are noted.
    fn offline(&mut self, request: Option<Request>) -> Option<Stop> {
        let Some(request) = request else {
            return Some(Stop::Dropped);
        };
        match request {
            Request::Command { call, reply } => self.enqueue(call, reply),
            Request::Subscribe {
                channel,
                options,
                reply,
            } => self.note_subscription(&channel, options, reply),
            Request::Unsubscribe { channel, reply } => {
                let held = self.channels.remove(&channel).is_some();
                let _ = reply.send(if held {
                    Ok(())
                } else {
                    Err(Error::NotSubscribed(channel))
                });
            }
            Request::Close { done } => return Some(Stop::Closed(done)),
        }
        None
    }

    fn enqueue(&mut self, call: Call, reply: oneshot::Sender<Result<Box<RawValue>>>) {
        if self.queue.len() >= self.config.max_pending {
            self.queue.retain(|q| !q.reply.is_closed());
        }
        let in_flight = self.queue.len();
        if in_flight >= self.config.max_pending
            || !self
                .pending
                .has_room(self.config.max_pending.saturating_sub(in_flight))
        {
            let _ = reply.send(Err(Error::TooManyPending));
            return;
        }
        self.queue.push_back(Queued { call, reply });
    }

    fn note_subscription(
        &mut self,
        channel: &str,
        options: SubscribeOptions,
        reply: oneshot::Sender<Result<Subscribed>>,
    ) {
        match self.channels.admit(channel) {
            Ok(()) => self.channels.insert(channel, options, reply),
            Err(e) => drop(reply.send(Err(e))),
        }
    }

    /// The first connect failed, or a reconnect did.
    fn failed_connect(&self, error: Error) -> Ended {
        let reconnect = retries_connect(&error, self.config.token.renews());
        tracing::debug!(%error, reconnect, "connect failed");
        Ended {
            disconnected: Disconnected {
                code: 1006,
                reason: error.to_string(),
                will_reconnect: false,
                opened: false,
                closed: None,
                error: Some(error),
            },
            reconnect,
            stop: None,
        }
    }

    async fn emit(&mut self, event: Event) {
        deliver(&self.events, &mut self.closing, event).await;
    }

    /// Delivers the events the last message produced.
    async fn flush_events(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        for event in out.drain(..) {
            deliver(&self.events, &mut self.closing, event).await;
        }
        self.out = out;
    }

    fn fail_queue(&mut self) {
        for queued in self.queue.drain(..) {
            let _ = queued.reply.send(Err(Error::Closed));
        }
    }

    fn stop(mut self, stop: Stop, closed: Option<Closed>) {
        self.fail_queue();
        self.pending.lose_all();
        if let Stop::Closed(done) = stop {
            let _ = done.send(closed);
        }
    }
}

/// Queues an event, waiting while the queue is full, unless the application is closing the
/// client (it may be awaiting `close` instead of reading): then the event is dropped. A dropped
/// receiver means the application does not want events; the client works on.
async fn deliver(events: &mpsc::Sender<Event>, closing: &mut watch::Receiver<bool>, event: Event) {
    if *closing.borrow() {
        let _ = events.try_send(event);
        return;
    }
    tokio::select! {
        _ = events.send(event) => {}
        // Closing, or every handle dropped.
        _ = closing.wait_for(|closing| *closing) => {}
    }
}

/// Opens one connection: a token, the handshake, and `herald.v1` agreed.
async fn connect(config: Arc<ClientConfig>) -> Result<Socket> {
    let token = tokio::time::timeout(config.connect_timeout, config.token.get())
        .await
        .map_err(|_| TokenError::new("the provider did not answer in time"))??;
    let builder = config.builder(token.as_deref())?;
    let (mut socket, accepted) = builder.connect().await?;
    if accepted.subprotocol.as_deref() != Some(SUBPROTOCOL) {
        let _ = socket.close(CloseCode::NORMAL, "").await;
        return Err(Error::NotHerald);
    }
    Ok(socket)
}

/// Whether a failed connect is worth another attempt: not a refusal that would repeat
/// (bad request, forbidden, not found), not a 401 without a way to get a fresh token.
fn retries_connect(error: &Error, renews_token: bool) -> bool {
    match error {
        Error::NotHerald => false,
        Error::WebSocket(herald::Error::Handshake(HandshakeError::Rejected(response))) => {
            match response.status.as_u16() {
                401 => renews_token,
                408 | 429 | 500..=599 => true,
                _ => false,
            }
        }
        Error::WebSocket(herald::Error::Handshake(HandshakeError::InvalidUrl(_)))
        | Error::WebSocket(herald::Error::Misuse(_)) => false,
        _ => true,
    }
}
