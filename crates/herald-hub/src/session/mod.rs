//! One session per connection: the connection's rules (permissions, limits, recovery, close
//! codes) over any [`Wire`].
//!
//! [`run`] drives a session: it reads the client's messages, pulls deliveries from the
//! connection's queue while the wire has room, and races every wait — a command's broker
//! call included — against the kill signal, the shutdown, the token's expiry and the idle
//! timer. Nothing in a session waits on the client: output is queued, and a full wire stops
//! production until it drains (or the wire gives up on a client that stopped reading).

pub(crate) mod deliver;
mod granted;
mod hooked;
mod plain;
mod protocol;
mod pusher;
mod refresh;
mod server;
pub(crate) mod subscriptions;
#[cfg(test)]
mod tests;
mod timer;
mod wire;

pub(crate) use pusher::PusherState;
pub(crate) use wire::{Gone, Wire, WsWire};

use crate::auth::Identity;
use crate::broadcast::Delivery;
use crate::hub::Hub;
use crate::limits::{Rate, RateLimiter};
use crate::node::{Signal, Subscriber, Wake};
use crate::users::{Handle, OPS_QUEUE, ServerOp};
use futures_util::future::{BoxFuture, Either};
use herald::Message;
use herald_hub_protocol::{ClientInfo, Disconnect};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a connection talks.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Plain mode: every message is published to the room; deliveries are raw payloads.
    Plain {
        /// The room's channel (shared: the session reads it for every message).
        room: Arc<str>,
    },
    /// Protocol mode (`herald.v1`).
    Protocol,
    /// The Pusher Channels protocol, for one app.
    Pusher(Arc<crate::pusher::App>),
}

impl Mode {
    /// Its label in the metrics and logs.
    fn name(&self) -> &'static str {
        match self {
            Self::Plain { .. } => "plain",
            Self::Protocol => "protocol",
            Self::Pusher(_) => "pusher",
        }
    }
}

/// Why a session stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Close with this code and reason.
    Close(Disconnect),
    /// The connection already ended (peer closed, transport failed): count it by this code.
    Gone(u16),
}

impl From<Gone> for End {
    fn from(gone: Gone) -> Self {
        Self::Gone(gone.0)
    }
}

/// What the handshake granted the session: who it is and how it talks.
pub(crate) struct Grant {
    pub(crate) identity: Identity,
    pub(crate) mode: Mode,
    pub(crate) transport: Transport,
}

/// The wire a session runs on, for the per-transport metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A WebSocket (`/ws`, plain-mode routes).
    WebSocket,
    /// Server-sent events (`GET /sse`).
    Sse,
    /// herald.v1 over an event stream and POSTs (`/stream`).
    Stream,
    /// herald.v1 over long polls and POSTs (`/poll`).
    Poll,
}

impl Transport {
    /// Its label in the metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Sse => "sse",
            Self::Stream => "stream",
            Self::Poll => "poll",
        }
    }
}

/// What woke a waiting session.
enum Woke {
    End(End),
    Notice,
    Message(Option<Result<Message, Gone>>),
    Deliveries,
    Drained,
    Op(ServerOp),
}

/// A connection's queue of server operations, with a sender that keeps it open; boxed (the
/// task holds 8 bytes, not 16), and none for a connection the server API cannot reach.
type Ops = Option<Box<(mpsc::Sender<ServerOp>, mpsc::Receiver<ServerOp>)>>;

/// The handling of one message: done already, or boxed.
pub(crate) type Handling<'a> =
    Either<std::future::Ready<Result<(), End>>, BoxFuture<'a, Result<(), End>>>;

/// Command cost units per 4 KiB of payload or reply.
const BYTES_PER_UNIT: usize = 4096;

/// A connection's state and rules.
pub(crate) struct Session {
    hub: Arc<Hub>,
    id: u64,
    info: ClientInfo,
    identity: Identity,
    mode: Mode,
    subscriber: Subscriber,
    subscriptions: subscriptions::Subscriptions,
    /// The subscriptions the server made.
    granted: granted::Granted,
    /// Publishes (`limits.publish_rate`).
    publish_rate: RateLimiter,
    /// Every other command, Pings and reply bytes (`limits.command_rate`).
    commands: RateLimiter,
    /// Whether the broker counts this connection for `limits.max_connections_per_user`.
    counted: bool,
    /// Whether the webhooks count this connection as one of its user's.
    online: bool,
    /// When the token ends the connection (4501); `None` when it does not.
    expiry: Option<Instant>,
    /// When the `refresh` push is due (protocol mode); `None` once sent, or when none is.
    notice: Option<Instant>,
    /// The Pusher protocol's state (Pusher mode only).
    pusher: Option<Box<PusherState>>,
}

/// Runs a connection to its end.
///
/// Not an `async fn`: one of those moves its arguments from the future's captures into
/// locals, and the future keeps room for both (the socket twice, some 700 bytes per
/// connection). The session is made before the block, which captures it and the wire and
/// uses them in place: captured, the grant would keep its room (152 bytes) after the session
/// took the identity out of it.
pub(crate) fn run<W: Wire>(
    hub: Arc<Hub>,
    mut wire: W,
    grant: Grant,
) -> impl Future<Output = ()> + Send {
    let signal = Arc::new(Signal::new(hub.config.limits.queue_size));
    let subscriber = Subscriber {
        signal: signal.clone(),
        presence_events: false,
    };
    let transport = grant.transport;
    let mut session = Session::new(hub, grant.identity, grant.mode, subscriber);
    async move {
        let mode = session.mode.name();
        let metrics = &session.hub.metrics;
        metrics.connections(mode).inc();
        metrics.transport_connections(transport.name()).inc();
        tracing::debug!(client = %session.info.client, user = %session.info.user, mode, "connected");
        // The server API reaches a connection through its user (and the Pusher protocol through
        // its state): an anonymous connection has no queue for server operations, which saves
        // its two allocations on every such connection.
        let reachable = !session.info.user.is_empty() || session.pusher.is_some();
        let mut ops: Ops = if reachable {
            let (ops, ops_rx) = mpsc::channel(OPS_QUEUE);
            let handle = Handle {
                client: session.info.client.clone(),
                ops,
                signal: signal.clone(),
            };
            if let Some(state) = session.pusher.as_deref_mut() {
                state.handle = Some(handle.clone());
            }
            if !session.info.user.is_empty() {
                let user = session.info.user.clone();
                session.hub.users.add(&user, session.id, handle.clone());
            }
            // A sender is held to the end: with none the queue would read as closed on every
            // turn.
            Some(Box::new((handle.ops, ops_rx)))
        } else {
            None
        };
        // Boxed: starting (admission, the first subscription) is the largest state after the
        // loop's, and happens once.
        let end = match Box::pin(session.start(&mut wire)).await {
            Ok(()) => session.drive(&mut wire, &mut ops, &signal).await,
            Err(end) => end,
        };
        // Fan-out stops queueing for this connection, and what it queued is freed.
        signal.close_queue();
        let code = match end {
            End::Close(reason) => {
                let reason = if matches!(session.mode, Mode::Pusher(_)) {
                    session.pusher_close(reason, &mut wire)
                } else {
                    reason
                };
                // Boxed, as is `finish` below: each runs once, at the end, and inline the larger
                // of them would be part of the task for the connection's whole life.
                Box::pin(wire.close(reason)).await;
                reason.code
            }
            End::Gone(code) => code,
        };
        Box::pin(session.finish()).await;
        drop(ops);
        // The gauges are looked up again rather than held: 16 bytes less for the whole life.
        let metrics = &session.hub.metrics;
        metrics.disconnected(code);
        metrics.transport_disconnected(transport.name(), code);
        metrics.connections(session.mode.name()).dec();
        metrics.transport_connections(transport.name()).dec();
        tracing::debug!(client = %session.info.client, code, transport = transport.name(), "disconnected");
    }
}

impl Session {
    pub(crate) fn new(
        hub: Arc<Hub>,
        identity: Identity,
        mode: Mode,
        subscriber: Subscriber,
    ) -> Self {
        let (id, client) = hub.next_client_id();
        let limits = hub.live().config.limits;
        let expiry = identity.expires.and_then(deadline_from_unix);
        let by_hook = identity.from_hook && hub.command_hooks.refreshes();
        let notice = match mode {
            Mode::Protocol => refresh::notice_at(expiry, hub.config.auth.refresh_notice),
            Mode::Plain { .. } if by_hook => {
                refresh::notice_at(expiry, hub.config.auth.refresh_notice)
            }
            Mode::Plain { .. } => None,
            Mode::Pusher(_) => None,
        };
        let pusher = match &mode {
            Mode::Pusher(app) => Some(Box::new(PusherState::new(app.clone(), &client))),
            _ => None,
        };
        Self {
            id,
            info: ClientInfo {
                client,
                user: identity.user.clone(),
            },
            identity,
            mode,
            subscriber,
            subscriptions: subscriptions::Subscriptions::default(),
            granted: granted::Granted::default(),
            publish_rate: RateLimiter::new(limits.publish_rate, limits.publish_burst),
            commands: RateLimiter::new(limits.command_rate, limits.command_burst),
            counted: false,
            online: false,
            expiry,
            notice,
            pusher,
            hub,
        }
    }

    async fn start(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        self.admit().await?;
        match self.mode.clone() {
            Mode::Plain { room } => self.start_plain(&room).await,
            Mode::Protocol => self.start_protocol(wire).await,
            Mode::Pusher(_) => self.start_pusher(wire).await,
        }
    }

    /// Runs the connection until it ends, pulling fan-out's deliveries from `signal` and
    /// the server API's operations from `ops`.
    async fn drive<W: Wire>(&mut self, wire: &mut W, ops: &mut Ops, signal: &Arc<Signal>) -> End {
        // The shutdown's and the deadlines' waiting futures are made once and polled in place:
        // a loop turn costs no registration with the shutdown token or the timer wheel. A kill
        // and deliveries wake the task through the signal's one waker (`Signal::wait`), which
        // holds no waiter of its own.
        let shutdown = self.hub.shutdown.clone();
        let cancelled = shutdown.cancelled();
        // The token's timers move when a `refresh` replaces it; unset ones are never polled,
        // and none is allocated before it is first set.
        let (mut expiry, mut notice, mut idle) = <[timer::Deadline; 3]>::default().into();
        let idle_timeout = self.hub.live().config.limits.idle_timeout;
        let mut idle_deadline = Instant::now() + idle_timeout;
        tokio::pin!(cancelled);
        // Fan-out may write to this connection's socket itself (not in Pusher mode, whose
        // deliveries have rules of their own).
        let direct = self.pusher.is_none() && {
            let rules = deliver::Rules {
                client: &self.info.client,
                plain: matches!(self.mode, Mode::Plain { .. }),
                echo: self.hub.config.plain.echo,
            };
            wire.share(signal, &rules)
        };
        // Deliveries pulled from the queue; those from `next` on are not on the wire yet.
        // Grown by the first deliveries and kept: an idle connection that never had one
        // holds no buffer.
        let mut batch = Vec::new();
        let mut next = 0;
        loop {
            if next < batch.len() && !wire.is_full() {
                if let Err(end) = self.deliver_batch(&batch, &mut next, wire) {
                    return end;
                }
                continue;
            }
            if next == batch.len() {
                batch.clear();
                next = 0;
            }
            let room = batch.is_empty() && !wire.is_full();
            let idle_on = self.subscriptions.is_empty() && !idle_timeout.is_zero();
            if idle_on {
                idle.set(idle_deadline);
            }
            let (expiry_on, notice_on) = (self.expiry.is_some(), self.notice.is_some());
            if let Some(at) = self.expiry {
                expiry.set(at);
            }
            if let Some(at) = self.notice {
                notice.set(at);
            }
            // With nothing of its own left to deliver, the task lends fan-out its
            // subscriptions while it waits, and takes them back first thing when it wakes.
            let lend = direct && batch.is_empty();
            if lend {
                signal.lend(&mut self.subscriptions, wire.is_flushed());
            }
            let woke = tokio::select! {
                biased;
                () = &mut cancelled => Woke::End(End::Close(Disconnect::SHUTDOWN)),
                () = &mut expiry, if expiry_on => Woke::End(End::Close(Disconnect::UNAUTHORIZED)),
                () = &mut notice, if notice_on => Woke::Notice,
                () = &mut idle, if idle_on => Woke::End(End::Close(Disconnect::IDLE)),
                // Polling the wire also writes out what was queued; a full wire that drained
                // lets the loop deliver the rest of the batch.
                message = wire.next_or_drained() => match message {
                    Some(Ok(None)) => Woke::Drained,
                    Some(Ok(Some(message))) => Woke::Message(Some(Ok(message))),
                    Some(Err(gone)) => Woke::Message(Some(Err(gone))),
                    None => Woke::Message(None),
                },
                // A kill, or deliveries when there is room for them.
                wake = signal.wait(&mut batch, 64, room) => match wake {
                    Wake::Killed(reason) => Woke::End(End::Close(reason)),
                    Wake::Deliveries => Woke::Deliveries,
                },
                Some(op) = next_op(ops), if !wire.is_full() => Woke::Op(op),
            };
            if lend {
                signal.reclaim(&mut self.subscriptions);
            }
            match woke {
                Woke::End(end) => return end,
                Woke::Notice => {
                    if let Err(end) = Box::pin(self.refresh_due(wire)).await {
                        return end;
                    }
                }
                Woke::Message(message) => {
                    let message = match message {
                        Some(Ok(message)) => message,
                        Some(Err(gone)) => return gone.into(),
                        None => return End::Gone(wire.closed_code()),
                    };
                    // Only data is activity: a client that sends Pings alone is idle.
                    if is_data(&message) && !idle_timeout.is_zero() {
                        idle_deadline = Instant::now() + idle_timeout;
                    }
                    let handled = tokio::select! {
                        biased;
                        reason = signal.killed() => Err(End::Close(reason)),
                        () = &mut cancelled => Err(End::Close(Disconnect::SHUTDOWN)),
                        () = &mut expiry, if expiry_on => Err(End::Close(Disconnect::UNAUTHORIZED)),
                        handled = self.on_message(message, wire) => handled,
                    };
                    if let Err(end) = handled {
                        return end;
                    }
                    // Deliveries queued meanwhile go before the next message: the select
                    // prefers input, and a client that sends fast (its own plain-mode
                    // messages land in its queue too, to be skipped) would otherwise fill its
                    // queue while it is read, and be closed with 4001 as a slow consumer.
                    if batch.is_empty() && !wire.is_full() {
                        signal.take(&mut batch, 64);
                    }
                }
                Woke::Deliveries | Woke::Drained => {}
                Woke::Op(op) => {
                    let handled = tokio::select! {
                        biased;
                        reason = signal.killed() => Err(End::Close(reason)),
                        () = &mut cancelled => Err(End::Close(Disconnect::SHUTDOWN)),
                        () = &mut expiry, if expiry_on => Err(End::Close(Disconnect::UNAUTHORIZED)),
                        // Boxed, as commands are: rare, and large inline.
                        handled = Box::pin(self.on_server_op(op, wire)) => handled,
                    };
                    if let Err(end) = handled {
                        return end;
                    }
                }
            }
        }
    }

    /// Handles one message from the client. What needs no waiting (a Ping, a Pong, the
    /// counting) is done here; the rest is a boxed future: inline, the session's task would be
    /// as large as the largest command's state (subscribe with recovery, a Pusher presence
    /// join, a plain-mode publication through the broker) for the connection's whole life. One
    /// allocation per message received is the price of an idle connection 1 KiB smaller.
    pub(crate) fn on_message<'a, W: Wire>(
        &'a mut self,
        message: Message,
        wire: &'a mut W,
    ) -> Handling<'a> {
        let size = match &message {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            Message::Ping(_) => {
                // Answered by the WebSocket itself; a Ping costs like a command all the same.
                let done = match self.commands.spend(std::time::Instant::now(), 1.0) {
                    Rate::Abusive => Err(self.abuse("ping")),
                    _ => Ok(()),
                };
                return Either::Left(std::future::ready(done));
            }
            _ => return Either::Left(std::future::ready(Ok(()))),
        };
        self.hub.metrics.messages_in.inc();
        self.hub.metrics.bytes_in.inc_by(size as u64);
        Either::Right(match (self.mode.clone(), message) {
            (Mode::Plain { room }, message) => {
                Box::pin(async move { self.on_plain(&room, message).await })
            }
            (Mode::Protocol, Message::Text(text)) => {
                Box::pin(async move { self.on_command(&text, wire).await })
            }
            (Mode::Pusher(_), Message::Text(text)) => {
                Box::pin(async move { self.on_pusher(&text, wire).await })
            }
            (Mode::Protocol | Mode::Pusher(_), _) => {
                return Either::Left(std::future::ready(Err(End::Close(Disconnect::BAD_REQUEST))));
            }
        })
    }

    /// A connection that kept going past refusals: counted, then closed with 1008.
    fn abuse(&self, limit: &str) -> End {
        self.hub.metrics.limit_hit(limit);
        tracing::debug!(client = %self.info.client, limit, "closing an abusive connection");
        End::Close(Disconnect::POLICY)
    }

    /// Queues pulled deliveries from `next` on while the wire has room. (They were counted in
    /// the metrics at fan-out, once per broadcast.)
    fn deliver_batch(
        &mut self,
        batch: &[Delivery],
        next: &mut usize,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        while let Some(delivery) = batch.get(*next) {
            if wire.is_full() {
                break;
            }
            *next += 1;
            self.deliver(delivery, wire)?;
        }
        Ok(())
    }

    /// Queues one delivery, as [`deliver::choose`] rules.
    pub(crate) fn deliver(&mut self, delivery: &Delivery, wire: &mut impl Wire) -> Result<(), End> {
        if self.pusher.is_some() {
            return self.deliver_pusher(delivery, wire);
        }
        let plain = matches!(self.mode, Mode::Plain { .. });
        let rules = deliver::Rules {
            client: &self.info.client,
            plain,
            echo: self.hub.config.plain.echo,
        };
        match deliver::choose(delivery, &mut self.subscriptions, &rules)? {
            deliver::Chosen::Skip => {}
            deliver::Chosen::Publication(b) => wire.send_publication(b, plain)?,
            deliver::Chosen::Presence(event) => wire.send_presence(event)?,
        }
        Ok(())
    }

    /// Leaves every channel, and the user's registry and connection count.
    async fn finish(&mut self) {
        if !self.info.user.is_empty() {
            self.hub.users.remove(&self.info.user, self.id);
        }
        self.finish_pusher().await;
        self.sign_out();
        self.release().await;
        let channels: Vec<Arc<str>> = self.subscriptions.drain().map(|(c, _)| c).collect();
        for channel in channels {
            let info = self.channel_info(&channel);
            self.hub.unsubscribe(&channel, self.id, &info).await;
        }
    }
}

/// The next server operation; never, for a connection the server API cannot reach.
async fn next_op(ops: &mut Ops) -> Option<ServerOp> {
    match ops {
        Some(pair) => pair.1.recv().await,
        None => std::future::pending().await,
    }
}

fn is_data(message: &Message) -> bool {
    matches!(message, Message::Text(_) | Message::Binary(_))
}

/// When a token expiring at `exp` (Unix seconds) ends the connection; `None` (no deadline)
/// for one over 30 years away: `exp` is the token issuer's to choose, up to `u64::MAX`, and an
/// `Instant` that far overflows (as does the timer's rounding near the end of its range).
fn deadline_from_unix(exp: u64) -> Option<Instant> {
    const HORIZON: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = Duration::from_secs(exp.saturating_sub(now));
    (left <= HORIZON)
        .then(|| Instant::now().checked_add(left))
        .flatten()
}
