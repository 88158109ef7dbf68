//! What a session talks through: messages in, replies, publications and pushes out.
//!
//! A session does not know which wire it is on. The WebSocket is one implementation; the
//! session's unit tests use an in-memory one. Output never waits: a wire queues what it is
//! given and says when its buffer is full, and the session then stops producing (it pulls no
//! more deliveries and, on a WebSocket, reads no more input) until the buffer drains. So a
//! connection holds at most its write buffer plus one reply (`limits.max_reply_size`) or one
//! delivery.

use super::deliver::Rules;
use crate::broadcast::{Broadcast, PresenceEvent};
use crate::direct::Share;
use crate::node::Signal;
use futures_util::{Stream, StreamExt};
use herald::{CloseCode, Message, WebSocket};
use herald_hub_protocol::Disconnect;
use herald_proto::PreparedMessage;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncWrite};

/// The wire ended under the session: the close code to count it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gone(pub(crate) u16);

/// A connection's transport, as a session sees it.
pub(crate) trait Wire: Send {
    /// The next message from the client; `None` once the connection ended.
    fn next(&mut self) -> impl Future<Output = Option<Result<Message, Gone>>> + Send;
    /// As [`next`](Self::next), and when the outgoing buffer was full, also `Some(Ok(None))`
    /// once it drained below the cap: the session, which stopped producing, resumes.
    fn next_or_drained(
        &mut self,
    ) -> impl Future<Output = Option<Result<Option<Message>, Gone>>> + Send {
        async { self.next().await.map(|r| r.map(Some)) }
    }
    /// Queues a reply or push (JSON text in protocol mode).
    fn send_text(&mut self, text: String) -> Result<(), Gone>;
    /// Queues a publication: the bare payload in plain mode, a `pub` push otherwise.
    fn send_publication(&mut self, broadcast: &Broadcast, plain: bool) -> Result<(), Gone>;
    /// Queues a join or leave push.
    fn send_presence(&mut self, event: &PresenceEvent) -> Result<(), Gone>;
    /// Queues a message encoded once for many connections (a Pusher event).
    fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Gone>;
    /// Whether the outgoing buffer is full: produce nothing more until it drains.
    fn is_full(&self) -> bool;
    /// Closes with `reason`, waiting a bounded time for the client's answer.
    fn close(&mut self, reason: Disconnect) -> impl Future<Output = ()> + Send;
    /// The close code the connection ended with, when it ended by itself.
    fn closed_code(&self) -> u16;
    /// Lets fan-out write this connection's deliveries straight to its transport through
    /// `signal`, by `rules` (see `crate::direct`); returns whether the wire can.
    fn share(&mut self, _signal: &Arc<Signal>, _rules: &Rules<'_>) -> bool {
        false
    }
    /// Whether everything queued was written to the transport.
    fn is_flushed(&self) -> bool {
        true
    }
}

/// The WebSocket wire. The socket's close timeout bounds the closing handshake.
pub(crate) struct WsWire<S> {
    pub(crate) ws: WebSocket<S>,
}

impl<S> Wire for WsWire<S>
where
    S: AsyncRead + AsyncWrite + Share + Unpin + Send,
{
    async fn next(&mut self) -> Option<Result<Message, Gone>> {
        match self.ws.next().await? {
            Ok(message) => Some(Ok(message)),
            Err(e) => Some(Err(Gone(error_code(&e)))),
        }
    }

    async fn next_or_drained(&mut self) -> Option<Result<Option<Message>, Gone>> {
        let was_full = self.ws.is_write_buffer_full();
        std::future::poll_fn(|cx| {
            // Polling the socket writes out what is queued before it reads.
            if let Poll::Ready(next) = Pin::new(&mut self.ws).poll_next(cx) {
                return Poll::Ready(next.map(|r| r.map(Some).map_err(|e| Gone(error_code(&e)))));
            }
            if was_full && !self.ws.is_write_buffer_full() {
                return Poll::Ready(Some(Ok(None)));
            }
            Poll::Pending
        })
        .await
    }

    fn send_text(&mut self, text: String) -> Result<(), Gone> {
        self.ws
            .queue(Message::text(text))
            .map_err(|e| Gone(error_code(&e)))
    }

    fn send_publication(&mut self, broadcast: &Broadcast, plain: bool) -> Result<(), Gone> {
        let message = if plain {
            broadcast.plain()
        } else {
            broadcast.protocol()
        };
        self.ws
            .queue_prepared(message)
            .map_err(|e| Gone(error_code(&e)))
    }

    fn send_presence(&mut self, event: &PresenceEvent) -> Result<(), Gone> {
        self.ws
            .queue_prepared(event.message())
            .map_err(|e| Gone(error_code(&e)))
    }

    fn send_prepared(&mut self, message: &PreparedMessage) -> Result<(), Gone> {
        self.ws
            .queue_prepared(message)
            .map_err(|e| Gone(error_code(&e)))
    }

    fn is_full(&self) -> bool {
        self.ws.is_write_buffer_full()
    }

    async fn close(&mut self, reason: Disconnect) {
        let wait = self.ws.close_timeout();
        let closing = self.ws.close(CloseCode::from(reason.code), reason.reason);
        // The client has this long to answer our Close; one that never reads is dropped.
        let _ = tokio::time::timeout(wait, closing).await;
    }

    fn share(&mut self, signal: &Arc<Signal>, rules: &Rules<'_>) -> bool {
        // A compressed connection gets frames compressed for it, not the shared plain frame.
        self.ws.protocol().deflate().is_none() && self.ws.get_mut().share(signal, rules)
    }

    fn is_flushed(&self) -> bool {
        WebSocket::buffered(&self.ws) == 0
    }

    fn closed_code(&self) -> u16 {
        self.ws
            .closed()
            .and_then(|c| c.received.as_ref().or(c.sent.as_ref()))
            .map_or(1006, |f| u16::from(f.code))
    }
}

/// The close code a WebSocket failure is counted by.
fn error_code(e: &herald::Error) -> u16 {
    match e {
        herald::Error::Protocol(p) => u16::from(p.close_code()),
        herald::Error::KeepaliveTimeout => 1011,
        herald::Error::WriteTimeout => Disconnect::WRITE_TIMEOUT.code,
        _ => 1006,
    }
}
