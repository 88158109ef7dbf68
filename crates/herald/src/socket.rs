//! The WebSocket type: a [`Stream`] of received messages and a [`Sink`] of messages to send.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::keepalive::{Due, Keepalive};
use crate::message::Message;
use crate::write_timer::WriteTimer;
use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use herald_proto::{CloseCode, Closed, Connection, Event, Role};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// The connection ended; what is queued is being written and the transport closed.
    Closing,
    /// The final item was returned.
    Finished,
}

/// A WebSocket connection over any transport `S`.
///
/// - Receive with [`recv`](Self::recv) or as a [`Stream`]; Pings are answered by themselves.
///   The last item is [`Message::Close`] (or an error), then the stream ends.
/// - Send with [`send`](Self::send) or as a [`Sink`]. Sends are batched: `feed` queues, the
///   next flush (or the next wait for input) writes everything queued in one vectored write.
///   While [`Config::max_write_buffer_size`] bytes are queued, sending waits (back-pressure).
/// - [`queue`](Self::queue) and [`queue_prepared`](Self::queue_prepared) queue without waiting
///   (for a task serving many connections); the caller bounds them with
///   [`buffered`](Self::buffered) and [`is_write_buffer_full`](Self::is_write_buffer_full).
/// - [`split`](Self::split) gives a reader and a writer for two tasks.
///
/// The stream must be polled for Pongs, keepalive and the closing handshake to progress.
///
/// While the write buffer is full the stream stops reading: it neither parses what arrived nor
/// reads from the transport, only writes and runs its timers, and resumes once the queue drains
/// below [`Config::max_write_buffer_size`]. A peer that sends (Pings, or requests whose answers
/// it never reads) without reading therefore meets TCP flow control instead of growing the
/// queue. When the transport accepts no queued byte for [`Config::write_timeout`], the
/// connection fails with [`Error::WriteTimeout`], from the stream and from sending alike.
pub struct WebSocket<S> {
    io: S,
    conn: Connection,
    phase: Phase,
    // The configuration's sizes and the close timeout, each socket's own copy: as `u32`s
    // (see `Config`): 28 bytes less per connection than four `usize`s and a `Duration`.
    read_buffer_size: u32,
    /// The current minimum read, between `MIN_READ` and `read_buffer_size`.
    read_size: u32,
    write_buffer_size: u32,
    max_write_buffer_size: u32,
    close_timeout_ms: u32,
    keepalive: Option<Keepalive>,
    /// The close deadline and how the connection ended: boxed, made when a Close is sent or
    /// the connection ends, as an idle connection has neither.
    ending: Option<Box<Ending>>,
    eof: bool,
    /// The tasks waiting for the queue to drain: made when one first waits, freed once the
    /// queue is empty.
    waiters: Option<Box<Waiters>>,
    write_timer: Option<WriteTimer>,
    /// The write timeout fired: the transport was abandoned.
    write_timed_out: bool,
}

/// The tasks (the reader and the writer of a split) waiting for the queue to drain below the
/// cap. The transport wakes only the last task that polled it for writing, so whoever drains
/// the queue wakes the other. Boxed: an idle connection waits for nothing.
#[derive(Default)]
struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// What exists only at the end of a connection.
#[derive(Default)]
struct Ending {
    /// Runs from the Close we sent (or the end) to the peer's answer.
    timer: Option<Pin<Box<Sleep>>>,
    closed: Option<Closed>,
}

/// Which half of a (possibly split) connection waits.
#[derive(Clone, Copy)]
enum Half {
    Reader,
    Writer,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.conn)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// The first direct read's size into the engine's buffer: enough for a burst of small frames.
const MIN_READ: usize = 512;
/// The stack buffer that reads go to while the engine's buffer is empty.
const SCRATCH: usize = 8 * 1024;

/// A configured size as a socket holds it: sizes over 4 GiB count as 4 GiB.
fn size(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// A configured timeout as a socket holds it: whole milliseconds (tokio's timers count
/// milliseconds), rounded up so that it never fires early, at most `u32::MAX` (49 days).
pub(crate) fn millis(timeout: std::time::Duration) -> u32 {
    u32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(u32::MAX)
}

/// The RFC 6455 §5.3 masking source for clients: the thread-local, OS-seeded CSPRNG.
pub(crate) fn os_entropy() -> Box<dyn herald_proto::Entropy> {
    Box::new(|dst: &mut [u8]| rand::fill(dst))
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a transport on which the opening handshake already happened (e.g. an HTTP
    /// upgrade done elsewhere). `buffered` holds bytes already read past the handshake.
    pub fn from_upgraded(io: S, role: Role, config: &Config, buffered: BytesMut) -> Self {
        Self::with_extensions(io, role, config, buffered, None)
    }

    /// As [`from_upgraded`](Self::from_upgraded), with the permessage-deflate parameters the
    /// handshake agreed on (they take `config.deflate`'s level and threshold, or the defaults'
    /// when `config.deflate` is `None`).
    pub fn with_extensions(
        io: S,
        role: Role,
        config: &Config,
        buffered: BytesMut,
        deflate: Option<herald_proto::DeflateParams>,
    ) -> Self {
        let mut conn = match role {
            Role::Server => Connection::server(config.protocol.clone()),
            Role::Client => Connection::client(config.protocol.clone(), os_entropy()),
        };
        if let Some(params) = deflate {
            let settings = config.deflate.clone().unwrap_or_default();
            conn = conn.with_deflate(params, &settings);
        }
        if !buffered.is_empty() {
            *conn.read_buffer() = buffered;
        }
        Self {
            io,
            conn,
            phase: Phase::Open,
            read_buffer_size: size(config.read_buffer_size.max(MIN_READ)),
            read_size: size(MIN_READ),
            write_buffer_size: size(config.write_buffer_size),
            max_write_buffer_size: size(config.max_write_buffer_size.max(1)),
            close_timeout_ms: millis(config.close_timeout),
            keepalive: config
                .keepalive_interval
                .map(|interval| Keepalive::new(interval, config.keepalive_timeout)),
            ending: None,
            eof: false,
            waiters: None,
            write_timer: config.write_timeout.map(WriteTimer::new),
            write_timed_out: false,
        }
    }

    /// The next message, or `None` after the last one.
    ///
    /// A plain function returning the stream's own future rather than an `async fn`, here and
    /// in [`send`](Self::send) and [`feed`](Self::feed): an `async fn` would keep its
    /// arguments beside the inner future, and a connection's task holds the largest of these
    /// futures for its whole life.
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<Message>>> + '_ {
        futures_util::StreamExt::next(self)
    }

    /// Sends a message and flushes it.
    ///
    /// # Errors
    /// [`Error::Misuse`] after a Close was sent; [`Error::Io`] when the transport failed;
    /// [`Error::WriteTimeout`] when the peer stopped reading for [`Config::write_timeout`].
    pub fn send(&mut self, message: Message) -> impl Future<Output = Result<()>> + '_ {
        futures_util::SinkExt::send(self, message)
    }

    /// Queues a message without flushing: it leaves with the next flush, or when the
    /// connection next waits for input. Waits while the write buffer is full.
    ///
    /// # Errors
    /// As for [`send`](Self::send).
    pub fn feed(&mut self, message: Message) -> impl Future<Output = Result<()>> + '_ {
        futures_util::SinkExt::feed(self, message)
    }

    /// Sends a Text or Binary message as fragments of at most `fragment_size` bytes
    /// (RFC 6455 §5.4), then flushes. A text message may be cut inside a code point: the peer
    /// validates the whole.
    ///
    /// # Errors
    /// [`Error::Misuse`] for a control message or after a Close was sent; [`Error::Io`].
    pub async fn send_fragmented(&mut self, message: Message, fragment_size: usize) -> Result<()> {
        let (opcode, payload) = match message {
            Message::Text(text) => (herald_proto::Opcode::Text, text.into_bytes()),
            Message::Binary(data) => (herald_proto::Opcode::Binary, data),
            _ => return Err(herald_proto::MisuseError::InvalidFragment.into()),
        };
        let step = fragment_size.max(1);
        let mut offset = 0;
        let mut opcode = opcode;
        loop {
            std::future::poll_fn(|cx| Pin::new(&mut *self).poll_ready(cx)).await?;
            let end = (offset + step).min(payload.len());
            let fin = end == payload.len();
            self.conn
                .send_frame(opcode, fin, payload.slice(offset..end))?;
            if fin {
                return self.flush().await;
            }
            opcode = herald_proto::Opcode::Continuation;
            offset = end;
        }
    }

    /// Queues a message prepared once for many connections (a broadcast): with
    /// permessage-deflate and `server_no_context_takeover`, the compressed payload is shared,
    /// not compressed again. Waits while the write buffer is full; does not flush.
    ///
    /// # Errors
    /// As for [`send`](Self::send).
    pub async fn feed_prepared(&mut self, prepared: &herald_proto::PreparedMessage) -> Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_ready(cx)).await?;
        Ok(self.conn.send_prepared(prepared)?)
    }

    /// Queues a message without waiting and without writing: it leaves with the next flush,
    /// or when the connection next waits for input.
    ///
    /// This never applies back-pressure, so the caller bounds what it queues, e.g. by
    /// dropping or disconnecting a slow peer once [`is_write_buffer_full`](Self::is_write_buffer_full)
    /// says so. [`feed`](Self::feed) is the variant that waits.
    ///
    /// # Errors
    /// As for [`feed`](Self::feed): [`Error::Misuse`] after a Close was sent (or for an invalid
    /// Close code or an oversized control payload); [`Error::WriteTimeout`] once the write
    /// timeout abandoned the connection.
    pub fn queue(&mut self, message: Message) -> Result<()> {
        self.enqueue(message)
    }

    /// Queues a prepared message (see [`feed_prepared`](Self::feed_prepared)) without waiting
    /// and without writing. As with [`queue`](Self::queue), the caller bounds what it queues.
    ///
    /// # Errors
    /// As for [`feed_prepared`](Self::feed_prepared): [`Error::Misuse`] after a Close was sent;
    /// [`Error::WriteTimeout`] once the write timeout abandoned the connection.
    pub fn queue_prepared(&mut self, prepared: &herald_proto::PreparedMessage) -> Result<()> {
        if self.write_timed_out {
            return Err(Error::WriteTimeout);
        }
        Ok(self.conn.send_prepared(prepared)?)
    }

    /// The number of bytes queued and not yet written to the transport.
    pub fn buffered(&self) -> usize {
        self.conn.transmit_len()
    }

    /// Whether at least [`Config::max_write_buffer_size`] bytes are queued: `feed` would wait,
    /// and a caller of [`queue`](Self::queue) should stop queuing.
    pub fn is_write_buffer_full(&self) -> bool {
        self.buffered() >= self.max_write_buffer_size as usize
    }

    /// Writes out everything queued.
    ///
    /// # Errors
    /// [`Error::Io`] when the transport failed; [`Error::WriteTimeout`] when the peer stopped
    /// reading for [`Config::write_timeout`].
    pub async fn flush(&mut self) -> Result<()> {
        futures_util::SinkExt::flush(self).await
    }

    /// Closes with `code` and `reason`, then reads until the peer answers (dropping data that
    /// arrives meanwhile) or the close timeout passes. Returns how the connection ended.
    ///
    /// # Errors
    /// [`Error::Misuse`] for a code that may not be sent or a reason over 123 bytes.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Closed> {
        if self.conn.can_send() {
            self.conn.close(code, reason)?;
        }
        while self.recv().await.is_some() {}
        Ok(self.closed().cloned().unwrap_or_else(|| Closed {
            initiator: herald_proto::Initiator::Local,
            sent: None,
            received: None,
            error: None,
        }))
    }

    /// How the connection ended, once it has: who closed, the code, the reason, whether cleanly.
    pub fn closed(&self) -> Option<&Closed> {
        self.ending
            .as_ref()
            .and_then(|ending| ending.closed.as_ref())
    }

    /// How long a closing handshake may take ([`Config::close_timeout`], to the millisecond).
    pub fn close_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.close_timeout_ms.into())
    }

    /// The protocol state machine (read-only).
    pub fn protocol(&self) -> &Connection {
        &self.conn
    }

    /// The transport, e.g. to read its peer address or TLS session.
    ///
    /// Reading from or writing to it directly (through interior mutability) breaks the
    /// framing, as with [`get_mut`](Self::get_mut).
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport, mutably, e.g. to set a socket option.
    ///
    /// Reading from or writing to it directly breaks the framing: bytes written go to the peer
    /// between (or inside) frames and it fails the connection with 1002; bytes read are lost to
    /// the engine, which then misparses what follows.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The transport, giving up the connection: what is queued and not yet written, and what
    /// was read and not yet parsed, is dropped, and no Close is sent. Close first (and let
    /// [`recv`](Self::recv) return `None`) to end the connection cleanly.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Splits into a reader and a writer that two tasks can use at once.
    pub fn split(self) -> (crate::split::Reader<S>, crate::split::Writer<S>) {
        crate::split::split(self)
    }

    fn enqueue(&mut self, message: Message) -> Result<()> {
        if self.write_timed_out {
            return Err(Error::WriteTimeout);
        }
        let conn = &mut self.conn;
        match message {
            Message::Text(text) => conn.send_text(text)?,
            Message::Binary(data) => conn.send_binary(data)?,
            Message::Ping(payload) => conn.ping(payload)?,
            Message::Pong(payload) => conn.pong(payload)?,
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((CloseCode::NORMAL, Default::default()), |f| {
                    (f.code, f.reason)
                });
                conn.close(code, &reason)?;
            }
        }
        Ok(())
    }

    // ---- writing ----------------------------------------------------------------------------

    /// Writes what is queued; when that brings the queue below the cap, wakes the tasks that
    /// waited for it. Fails with [`Error::WriteTimeout`] when the transport took no byte for
    /// the write timeout, and from then on.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.write_timed_out {
            return Poll::Ready(Err(Error::WriteTimeout));
        }
        let before = self.conn.transmit_len();
        let poll = self.poll_write_queued(cx);
        let after = self.conn.transmit_len();
        if after < before {
            if let Some(timer) = &mut self.write_timer {
                timer.progress();
            }
            if after < self.max_write_buffer_size as usize {
                self.wake_waiters(Some(cx.waker()));
            }
        }
        let Some(timer) = &mut self.write_timer else {
            return poll.map_err(Error::Io);
        };
        match poll {
            Poll::Ready(result) => {
                timer.idle();
                Poll::Ready(result.map_err(Error::Io))
            }
            Poll::Pending if after > 0 && timer.poll_blocked(cx).is_ready() => {
                self.abandon();
                Poll::Ready(Err(Error::WriteTimeout))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The peer stopped reading: give up on it without a closing handshake (it would not read
    /// the Close), drop what is queued, and tell the other half of a split.
    fn abandon(&mut self) {
        self.write_timed_out = true;
        self.conn.abandon();
        self.wake_waiters(None);
    }

    /// The queue drained below the cap (or was dropped): wakes the tasks that waited for it,
    /// except the one `running` (it sees the queue itself, and waits again if it must). The
    /// box stays while bytes are queued, so that a busy connection whose flushes keep waiting
    /// does not make it again for each; it goes when the queue is empty.
    fn wake_waiters(&mut self, running: Option<&Waker>) {
        let Some(waiters) = &mut self.waiters else {
            return;
        };
        for waker in [waiters.reader.take(), waiters.writer.take()]
            .into_iter()
            .flatten()
        {
            if running.is_none_or(|running| !waker.will_wake(running)) {
                waker.wake();
            }
        }
        if self.conn.transmit_len() == 0 {
            self.waiters = None;
        }
    }

    fn wait_for_drain(&mut self, half: Half, cx: &Context<'_>) {
        let waiters = self.waiters.get_or_insert_with(Box::default);
        let slot = match half {
            Half::Reader => &mut waiters.reader,
            Half::Writer => &mut waiters.writer,
        };
        match slot {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
    }

    /// Writes the transmit queue until it is empty, then flushes the transport.
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Self { io, conn, .. } = self;
        while conn.transmit_len() > 0 {
            let mut slices = [IoSlice::new(&[]); 32];
            let n = conn.transmit_chunks(&mut slices);
            // One chunk (a small frame, a shared broadcast frame) goes by a plain write: on a
            // TCP socket that is `send`, which skips the file-position lock and iovec copy
            // that `writev` costs per call.
            let written = if n == 1 {
                ready!(Pin::new(&mut *io).poll_write(cx, &slices[0]))?
            } else {
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n]))?
            };
            if written == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            conn.transmit_advance(written);
        }
        Pin::new(io).poll_flush(cx)
    }

    // ---- reading ----------------------------------------------------------------------------

    /// Reads into the engine's buffer. The read size adapts: it starts small, doubles after
    /// each read that fills the room it had, up to `read_buffer_size`, and a frame in progress
    /// asks for its whole rest at once.
    ///
    /// While nothing is buffered (an idle connection, or one that parsed all it read), the
    /// read goes to a scratch buffer on the worker's stack and only what arrived is copied
    /// into the engine's, which is released beforehand: a connection waiting for input holds
    /// no read buffer at all.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let hint = self.conn.read_hint();
        if hint <= SCRATCH && self.conn.read_buffer().is_empty() {
            return self.poll_read_scratch(cx);
        }
        let want = hint.max(self.read_size as usize);
        let buf = self.conn.read_buffer();
        buf.reserve(want);
        let room = buf.capacity() - buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            buf
        ))?;
        if n == room {
            self.read_size = self.read_size.saturating_mul(2).min(self.read_buffer_size);
        }
        Poll::Ready(Ok(n))
    }

    /// A read into stack memory while the engine's buffer is empty (see
    /// [`poll_read_more`](Self::poll_read_more)).
    fn poll_read_scratch(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let buf = self.conn.read_buffer();
        if buf.capacity() > 0 {
            // Messages already handed out keep their bytes alive; this handle lets go.
            *buf = BytesMut::new();
        }
        let mut scratch = [const { std::mem::MaybeUninit::<u8>::uninit() }; SCRATCH];
        let mut read = tokio::io::ReadBuf::uninit(&mut scratch);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let filled = read.filled();
        self.conn.read_buffer().extend_from_slice(filled);
        if filled.len() == SCRATCH {
            self.read_size = self.read_size.saturating_mul(2).min(self.read_buffer_size);
        }
        Poll::Ready(Ok(filled.len()))
    }

    fn on_event(&mut self, event: Event) -> Option<Message> {
        match event {
            Event::Message(message) => Some(message.into()),
            Event::Ping(payload) => Some(Message::Ping(payload)),
            Event::Pong(payload) => Some(Message::Pong(payload)),
            Event::Closed(closed) => {
                self.ending.get_or_insert_with(Box::default).closed = Some(closed);
                self.phase = Phase::Closing;
                None
            }
        }
    }

    /// The close deadline, started on first poll: from the Close we sent (or the end).
    fn poll_close_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let timeout = self.close_timeout();
        let ending = self.ending.get_or_insert_with(Box::default);
        let timer = ending
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        timer.as_mut().poll(cx)
    }

    /// Timers while open: the close deadline once a Close was sent, and keepalive.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.conn.can_send() && self.poll_close_timer(cx).is_ready() {
            // The peer never answered our Close: give up on it (1006), and on what it never
            // read, so that what arrived is parsed to the end even with a full queue.
            self.conn.receive_eof();
            self.conn.transmit_advance(self.conn.transmit_len());
            return Poll::Ready(Ok(()));
        }
        if let Some(keepalive) = &mut self.keepalive {
            match keepalive.poll(cx) {
                Poll::Ready(Due::Ping) => {
                    // Ignored when closing: the close timer takes over then.
                    let _ = self.conn.ping(Bytes::from_static(b"herald-keepalive"));
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Due::TimedOut) => {
                    let _ = self
                        .conn
                        .close(CloseCode::INTERNAL_ERROR, "keepalive timeout");
                    self.conn.receive_eof();
                    return Poll::Ready(Err(Error::KeepaliveTimeout));
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        if self.write_timed_out {
            // The writer half found it; the reader reports it too, once.
            return self.write_failed(Error::WriteTimeout);
        }
        loop {
            // A full queue stops parsing (so Pings are not answered) and reading: the peer's
            // sends back up into TCP flow control instead of into our memory.
            if !self.is_write_buffer_full()
                && let Some(event) = self.conn.poll_event()
            {
                match self.on_event(event) {
                    Some(message) => return Poll::Ready(Some(Ok(message))),
                    None => return Poll::Ready(None),
                }
            }
            // Whatever is queued (replies, batched sends) leaves before we wait for input.
            let before = self.conn.transmit_len();
            match self.poll_write(cx) {
                Poll::Ready(Err(Error::Io(e))) => return self.transport_failed(e),
                Poll::Ready(Err(e)) => return self.write_failed(e),
                _ => {}
            }
            match self.poll_timers(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => {
                    self.drain_closed_event();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Pending => {}
            }
            if self.is_write_buffer_full() {
                if self.conn.transmit_len() < before {
                    // The peer's TCP window opened, so it reads: it is alive, though its
                    // answers wait unread behind our queue.
                    if let Some(keepalive) = &mut self.keepalive {
                        keepalive.heard();
                    }
                }
                self.wait_for_drain(Half::Reader, cx);
                return Poll::Pending;
            }
            match ready!(self.poll_read_more(cx)) {
                Ok(0) => {
                    self.eof = true;
                    self.conn.receive_eof();
                }
                Ok(_) => {
                    if let Some(keepalive) = &mut self.keepalive {
                        keepalive.heard();
                    }
                }
                Err(e) => return self.transport_failed(e),
            }
        }
    }

    fn drain_closed_event(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.on_event(event);
        }
        self.phase = Phase::Finished;
    }

    fn write_failed(&mut self, e: Error) -> Poll<Option<Result<Message>>> {
        self.drain_closed_event();
        Poll::Ready(Some(Err(e)))
    }

    fn transport_failed(&mut self, e: std::io::Error) -> Poll<Option<Result<Message>>> {
        self.conn.receive_eof();
        self.drain_closed_event();
        Poll::Ready(Some(Err(Error::Io(e))))
    }

    /// After the connection ended: write what is queued (the Close), then close the transport
    /// (server, or after a failure) or wait for the server to close it (client, RFC 6455 §7.1.1).
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message>>> {
        let timed_out = self.poll_close_timer(cx).is_ready();
        if !timed_out {
            match self.poll_write(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e @ Error::WriteTimeout)) => {
                    self.phase = Phase::Finished;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(_) => {}
            }
            if self.conn.should_close_transport() {
                ready!(Pin::new(&mut self.io).poll_shutdown(cx)).ok();
            } else {
                while !self.eof {
                    match ready!(self.poll_discard(cx)) {
                        Ok(0) | Err(_) => self.eof = true,
                        Ok(_) => {}
                    }
                }
            }
        }
        self.phase = Phase::Finished;
        let closed = self.closed();
        Poll::Ready(Some(match closed.and_then(|c| c.error.clone()) {
            Some(error) => Err(Error::Protocol(error)),
            None => Ok(Message::Close(closed.and_then(|c| c.received.clone()))),
        }))
    }

    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let mut scratch = [0u8; 512];
        let mut buf = tokio::io::ReadBuf::new(&mut scratch);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.phase {
                Phase::Open => match ready!(this.poll_open(cx)) {
                    Some(item) => return Poll::Ready(Some(item)),
                    None => continue,
                },
                Phase::Closing => return this.poll_closing(cx),
                Phase::Finished => return Poll::Ready(None),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = &mut *self;
        if this.write_timed_out || this.conn.transmit_len() >= this.write_buffer_size as usize {
            match this.poll_write(cx) {
                Poll::Ready(result) => result?,
                Poll::Pending if this.is_write_buffer_full() => {
                    this.wait_for_drain(Half::Writer, cx);
                    return Poll::Pending;
                }
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<()> {
        self.enqueue(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = &mut *self;
        let poll = this.poll_write(cx);
        if poll.is_pending() {
            this.wait_for_drain(Half::Writer, cx);
        }
        poll
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.conn.can_send() {
            self.conn.close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    /// An idle connection's task holds a `WebSocket` for the connection's whole life, so its
    /// size is memory per connection: what exists only at the end (how it closed) or during a
    /// fragmented message is boxed, not inline.
    #[test]
    fn an_idle_websocket_holds_no_closing_or_fragment_state_inline() {
        let socket = std::mem::size_of::<super::WebSocket<tokio::net::TcpStream>>();
        let engine = std::mem::size_of::<herald_proto::Connection>();
        // Measured 792 and 456 bytes before the boxing, 496 and 264 after; 432 with the
        // keepalive timer shared and the waiting tasks and closing state boxed (440 in a
        // debug build); 360 and 240 with the sizes and timeouts held as `u32`s and the
        // pending Pong boxed.
        assert!(socket <= 368, "WebSocket<TcpStream>: {socket} bytes");
        assert!(engine <= 240, "Connection: {engine} bytes");
    }

    /// A socket holds its timeouts in whole milliseconds: rounded up, so that none fires
    /// early, and capped rather than wrapped.
    #[test]
    fn timeouts_are_held_in_milliseconds_rounded_up_and_capped() {
        use std::time::Duration;
        assert_eq!(super::millis(Duration::ZERO), 0);
        assert_eq!(super::millis(Duration::from_micros(1)), 1);
        assert_eq!(super::millis(Duration::from_millis(5)), 5);
        assert_eq!(super::millis(Duration::from_micros(5_001)), 6);
        assert_eq!(super::millis(Duration::MAX), u32::MAX);
        assert_eq!(super::size(usize::MAX), u32::MAX);
        assert_eq!(super::size(4096), 4096);
    }

    /// A task waiting in `recv` or `feed` holds that future across the `.await`: it holds a
    /// pointer to the socket and the message once, not a second copy beside an inner future.
    #[tokio::test]
    async fn recv_send_and_feed_hold_the_message_once() {
        let (a, _b) = tokio::io::duplex(64);
        let config = crate::Config::default();
        let mut ws =
            super::WebSocket::from_upgraded(a, super::Role::Server, &config, Default::default());
        let message = std::mem::size_of::<crate::Message>();
        let pointer = std::mem::size_of::<usize>();
        let recv = std::mem::size_of_val(&ws.recv());
        assert!(recv <= 2 * pointer, "recv: {recv} bytes");
        let feed = std::mem::size_of_val(&ws.feed(crate::Message::binary(&b"x"[..])));
        assert!(feed <= message + pointer, "feed: {feed} bytes");
        let send = std::mem::size_of_val(&ws.send(crate::Message::binary(&b"x"[..])));
        assert!(send <= message + pointer, "send: {send} bytes");
    }
}
