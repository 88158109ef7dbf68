//! A connection split into a reading and a writing half, for two tasks.

use crate::error::Result;
use crate::message::Message;
use crate::socket::WebSocket;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use herald_proto::{CloseCode, CloseFrame};
use tokio::io::{AsyncRead, AsyncWrite};

/// The receiving half. Polling it also answers Pings and runs keepalive.
#[derive(Debug)]
pub struct Reader<S> {
    inner: SplitStream<WebSocket<S>>,
}

/// The sending half.
#[derive(Debug)]
pub struct Writer<S> {
    inner: SplitSink<WebSocket<S>, Message>,
}

pub(crate) fn split<S: AsyncRead + AsyncWrite + Unpin>(ws: WebSocket<S>) -> (Reader<S>, Writer<S>) {
    let (sink, stream) = StreamExt::split(ws);
    (Reader { inner: stream }, Writer { inner: sink })
}

impl<S: AsyncRead + AsyncWrite + Unpin> Reader<S> {
    /// The next message, or `None` after the last one.
    /// (The stream's own future, not an `async fn` around it, as for [`WebSocket::recv`].)
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<Message>>> + '_ {
        self.inner.next()
    }

    /// Puts the halves back together.
    ///
    /// # Errors
    /// Returns both halves when they come from different connections.
    pub fn reunite(
        self,
        writer: Writer<S>,
    ) -> std::result::Result<WebSocket<S>, (Self, Writer<S>)> {
        self.inner
            .reunite(writer.inner)
            .map_err(|e| (Reader { inner: e.1 }, Writer { inner: e.0 }))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    /// Sends a message and flushes it.
    ///
    /// # Errors
    /// As for [`WebSocket::send`].
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<()>> + '_ {
        self.inner.send(message)
    }

    /// Queues a message without flushing (see [`WebSocket::feed`]).
    ///
    /// # Errors
    /// As for [`WebSocket::send`].
    pub fn feed(&mut self, message: Message) -> impl Future<Output = Result<()>> + '_ {
        self.inner.feed(message)
    }

    /// Writes out everything queued.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when the transport failed.
    pub async fn flush(&mut self) -> Result<()> {
        self.inner.flush().await
    }

    /// Sends a Close; the reader sees the peer's answer and then its end.
    ///
    /// # Errors
    /// As for [`WebSocket::send`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.send(Message::Close(Some(CloseFrame::new(code, reason))))
            .await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for Reader<S> {
    type Item = Result<Message>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}
