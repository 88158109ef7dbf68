//! One task per WebSocket connection: reads commands (or plain messages), writes replies
//! and deliveries, and watches its kill signal, the shutdown, the idle timer and the token's
//! expiry.

mod plain;
mod protocol;

pub(crate) use protocol::{history, presence};

use crate::auth::Identity;
use crate::broadcast::Delivery;
use crate::hub::Hub;
use crate::limits::{IpSlot, RateLimiter};
use crate::node::{Signal, Subscriber};
use crate::recovery::LiveFilter;
use futures_util::StreamExt;
use herald::{CloseCode, Message, WebSocket};
use herald_hub_protocol::{ClientInfo, Disconnect};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a connection talks.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Plain mode: every message is published to the room; deliveries are raw payloads.
    Plain {
        /// The room's channel.
        room: String,
    },
    /// Protocol mode (`herald.v1`).
    Protocol,
}

/// Why the session loop stopped.
enum End {
    /// Close with this code and reason.
    Close(Disconnect),
    /// The connection already ended (peer closed, transport failed).
    Gone(u16),
}

/// What the session must hold on to while it runs.
pub(crate) struct Grant {
    pub(crate) identity: Identity,
    pub(crate) mode: Mode,
    pub(crate) _ip_slot: Option<IpSlot>,
}

pub(crate) struct Session<S> {
    hub: Arc<Hub>,
    ws: WebSocket<S>,
    id: u64,
    info: ClientInfo,
    identity: Identity,
    subscriber: Subscriber,
    subscriptions: HashMap<Arc<str>, LiveFilter>,
    rate: RateLimiter,
}

/// Runs a connection to its end.
pub(crate) async fn run<S>(hub: Arc<Hub>, ws: WebSocket<S>, grant: Grant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (id, client) = hub.next_client_id();
    let (queue, mut rx) = mpsc::channel(hub.config.limits.queue_size.max(1));
    let signal = Arc::new(Signal::default());
    let mode_name = match grant.mode {
        Mode::Plain { .. } => "plain",
        Mode::Protocol => "protocol",
    };
    let gauge = hub.metrics.connections(mode_name);
    gauge.inc();
    let limits = hub.config.limits;
    let mut session = Session {
        ws,
        id,
        info: ClientInfo {
            client,
            user: grant.identity.user.clone(),
        },
        identity: grant.identity,
        subscriber: Subscriber {
            queue,
            signal: signal.clone(),
            presence_events: matches!(grant.mode, Mode::Protocol) && hub.config.presence.join_leave,
        },
        subscriptions: HashMap::new(),
        rate: RateLimiter::new(limits.publish_rate, limits.publish_burst),
        hub,
    };
    tracing::debug!(client = %session.info.client, user = %session.info.user, mode = mode_name, "connected");
    let end = match session.start(&grant.mode).await {
        Ok(()) => session.serve(&grant.mode, &mut rx, &signal).await,
        Err(end) => end,
    };
    let code = match end {
        End::Close(reason) => {
            let code = CloseCode::from(reason.code);
            let closing = session.ws.close(code, reason.reason);
            // The peer has this long to answer our Close; a peer that never reads is dropped.
            let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
            reason.code
        }
        End::Gone(code) => code,
    };
    session.finish().await;
    session.hub.metrics.disconnected(code);
    gauge.dec();
    tracing::debug!(client = %session.info.client, code, "disconnected");
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn start(&mut self, mode: &Mode) -> Result<(), End> {
        match mode {
            Mode::Plain { room } => self.start_plain(room).await,
            Mode::Protocol => self.start_protocol().await,
        }
    }

    async fn serve(
        &mut self,
        mode: &Mode,
        rx: &mut mpsc::Receiver<Delivery>,
        signal: &Signal,
    ) -> End {
        // Every waiting future is made once and polled in place: a loop turn costs no
        // registration with the shutdown token, the kill signal or the timer wheel.
        let shutdown = self.hub.shutdown.clone();
        let cancelled = shutdown.cancelled();
        let killed = signal.killed();
        let expiry = sleep_until_opt(self.identity.expires.and_then(deadline_from_unix));
        let idle_timeout = self.hub.config.limits.idle_timeout;
        let mut idle_deadline = Instant::now() + idle_timeout;
        let idle = tokio::time::sleep_until(idle_deadline);
        tokio::pin!(cancelled, killed, expiry, idle);
        let mut batch = Vec::with_capacity(64);
        loop {
            let idle_on = self.subscriptions.is_empty() && !idle_timeout.is_zero();
            if idle_on && idle.deadline() != idle_deadline {
                idle.as_mut().reset(idle_deadline);
            }
            tokio::select! {
                biased;
                reason = &mut killed => return End::Close(reason),
                () = &mut cancelled => return End::Close(Disconnect::SHUTDOWN),
                () = &mut expiry => return End::Close(Disconnect::UNAUTHORIZED),
                () = &mut idle, if idle_on => return End::Close(Disconnect::IDLE),
                // Polling the socket first also writes out what the last batch queued.
                message = self.ws.next() => {
                    if !idle_timeout.is_zero() {
                        idle_deadline = Instant::now() + idle_timeout;
                    }
                    let result = match message {
                        Some(Ok(message)) => self.on_message(mode, message).await,
                        Some(Err(e)) => Err(End::Gone(error_code(&e))),
                        None => Err(End::Gone(self.closed_code())),
                    };
                    if let Err(end) = result {
                        return end;
                    }
                }
                n = rx.recv_many(&mut batch, 64) => {
                    if n == 0 {
                        return End::Close(Disconnect::INTERNAL);
                    }
                    let delivered = tokio::select! {
                        result = self.deliver(mode, &mut batch) => result,
                        reason = &mut killed => Err(End::Close(reason)),
                    };
                    batch.clear();
                    if let Err(end) = delivered {
                        return end;
                    }
                }
            }
        }
    }

    async fn on_message(&mut self, mode: &Mode, message: Message) -> Result<(), End> {
        let size = match &message {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => return Ok(()),
        };
        self.hub.metrics.messages_in.inc();
        self.hub.metrics.bytes_in.inc_by(size as u64);
        match mode {
            Mode::Plain { room } => self.on_plain(room, message).await,
            Mode::Protocol => match message {
                Message::Text(text) => self.on_command(&text).await,
                _ => Err(End::Close(Disconnect::BAD_REQUEST)),
            },
        }
    }

    /// Queues a batch of deliveries; they leave in one write when the loop next polls the
    /// socket. (They were counted in the metrics at fan-out, once per broadcast.)
    async fn deliver(&mut self, mode: &Mode, batch: &mut Vec<Delivery>) -> Result<(), End> {
        let plain = matches!(mode, Mode::Plain { .. });
        let echo = self.hub.config.plain.echo;
        for delivery in batch.drain(..) {
            match delivery {
                Delivery::Publication(b) => {
                    let Some(filter) = self.subscriptions.get_mut(&b.channel) else {
                        continue;
                    };
                    match filter.accept(&b.epoch, b.publication.offset) {
                        crate::recovery::Live::Deliver => {}
                        crate::recovery::Live::Duplicate => continue,
                        crate::recovery::Live::Gap => {
                            return Err(End::Close(Disconnect::INSUFFICIENT_STATE));
                        }
                    }
                    let message = if plain {
                        let own = b
                            .publication
                            .publisher
                            .as_ref()
                            .is_some_and(|p| p.client == self.info.client);
                        if own && !echo {
                            continue;
                        }
                        b.plain()
                    } else {
                        b.protocol()
                    };
                    self.feed(message).await?;
                }
                Delivery::Presence(event) => {
                    if event.client != self.info.client
                        && self.subscriptions.contains_key(&event.channel)
                    {
                        self.feed(event.message()).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn feed(&mut self, message: &herald_proto::PreparedMessage) -> Result<(), End> {
        self.ws
            .feed_prepared(message)
            .await
            .map_err(|e| End::Gone(error_code(&e)))
    }

    /// Queues a reply or push (text).
    async fn send_text(&mut self, text: String) -> Result<(), End> {
        self.hub.metrics.messages_out.inc();
        self.hub.metrics.bytes_out.inc_by(text.len() as u64);
        self.ws
            .feed(Message::text(text))
            .await
            .map_err(|e| End::Gone(error_code(&e)))
    }

    fn closed_code(&self) -> u16 {
        self.ws
            .closed()
            .and_then(|c| c.received.as_ref().or(c.sent.as_ref()))
            .map_or(1006, |f| u16::from(f.code))
    }

    /// Leaves every channel.
    async fn finish(&mut self) {
        let channels: Vec<Arc<str>> = self.subscriptions.drain().map(|(c, _)| c).collect();
        for channel in channels {
            self.leave(&channel).await;
        }
    }

    async fn leave(&mut self, channel: &str) {
        self.hub
            .node
            .remove(self.hub.broker.as_ref(), channel, self.id)
            .await;
        if self.hub.config.presence.enabled
            && let Err(e) = self
                .hub
                .broker
                .presence_remove(channel, self.info.clone())
                .await
        {
            tracing::warn!(channel, error = %e, "presence remove failed");
        }
    }
}

fn error_code(e: &herald::Error) -> u16 {
    match e {
        herald::Error::Protocol(p) => u16::from(p.close_code()),
        herald::Error::KeepaliveTimeout => 1011,
        _ => 1006,
    }
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

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
