//! Fan-out writing a broadcast straight into an idle connection's socket.
//!
//! A delivery normally goes through the connection's queue: fan-out pushes it, wakes the
//! connection's task, and the task writes it. With light traffic that wake, poll and queue
//! cost as much as the write itself. So a WebSocket on a plain TCP socket without
//! compression shares its socket's write half with fan-out: while its task waits with
//! nothing queued and nothing unwritten, the task lends fan-out its subscriptions, and
//! fan-out applies the session's own delivery rule ([`choose`]) and writes the shared frame
//! with one `send`, under the connection's queue lock, without waking anyone.
//!
//! What stays as it was:
//! - **Order.** Fan-out writes only while the queue is empty, the task holds no unwritten
//!   byte and no earlier frame is half written; otherwise it queues, as before.
//! - **Whole frames.** Every write to the socket, the task's and fan-out's, is made under the
//!   same lock; a frame fan-out could not write whole is finished by the task before anything
//!   else is written ([`Direct::remainder`]).
//! - **Slow consumers.** A socket that takes nothing sends fan-out back to the queue, which
//!   still closes the connection with 4001 when it overflows.

use crate::broadcast::Delivery;
use crate::http::head::Prefixed;
use crate::node::Signal;
use crate::session::deliver::{Chosen, Rules, choose};
use crate::session::subscriptions::Subscriptions;
use bytes::{Buf, Bytes, BytesMut};
use herald::upgrade::UpgradedIo;
use hyper_util::rt::TokioIo;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The write side of a connection shared with fan-out, kept under its [`Signal`]'s lock.
#[derive(Debug)]
pub(crate) struct Direct {
    half: OwnedWriteHalf,
    client: Box<str>,
    plain: bool,
    echo: bool,
    /// The session's subscriptions, lent while its task waits with nothing to write.
    lent: Option<Subscriptions>,
    /// The task may hold bytes not written yet (set when it writes, cleared when its queue
    /// is empty): fan-out must not write between them.
    task_bytes: bool,
    /// The rest of a frame fan-out wrote only in part (or not at all, the socket being
    /// full): the next bytes on the wire, whoever writes next.
    remainder: Option<Bytes>,
}

/// What fan-out did with a delivery.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written whole, or nothing to send for it.
    Done,
    /// Taken, with part of its frame left in [`Direct::remainder`]: the task must be woken
    /// to write it.
    Remainder,
    /// Not taken: queue it for the task.
    Queue,
}

impl Direct {
    /// Applies the session's rule to `delivery` and writes its frame, if the socket is free.
    pub(crate) fn try_deliver(&mut self, delivery: &Delivery) -> Outcome {
        if self.task_bytes || self.remainder.is_some() {
            return Outcome::Queue;
        }
        let Some(subscriptions) = self.lent.as_mut() else {
            return Outcome::Queue;
        };
        let rules = Rules {
            client: &self.client,
            plain: self.plain,
            echo: self.echo,
        };
        let frame = match choose(delivery, subscriptions, &rules) {
            Ok(Chosen::Skip) => return Outcome::Done,
            Ok(Chosen::Publication(b)) if self.plain => b.plain().server_frame(),
            Ok(Chosen::Publication(b)) => b.protocol().server_frame(),
            Ok(Chosen::Presence(event)) => event.message().server_frame(),
            // A gap: the task closes the connection by the same rule (the filter did not move).
            Err(_) => return Outcome::Queue,
        };
        match self.half.try_write(frame) {
            Ok(n) if n == frame.len() => Outcome::Done,
            Ok(n) => {
                self.remainder = Some(frame.slice(n..));
                Outcome::Remainder
            }
            // Full (or failed: the task's next write meets the error and ends the session).
            Err(_) => {
                self.remainder = Some(frame.clone());
                Outcome::Remainder
            }
        }
    }

    /// The task lends its subscriptions while it waits; `flushed`: it holds no unwritten byte.
    pub(crate) fn lend(&mut self, subscriptions: &mut Subscriptions, flushed: bool) {
        self.lent = Some(std::mem::take(subscriptions));
        self.task_bytes |= !flushed;
    }

    /// The task takes its subscriptions back before it does anything else.
    pub(crate) fn reclaim(&mut self, subscriptions: &mut Subscriptions) {
        if let Some(lent) = self.lent.take() {
            *subscriptions = lent;
        }
    }

    fn poll_remainder(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = &mut self.remainder {
            let n = ready!(Pin::new(&mut self.half).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rest.advance(n);
            if rest.is_empty() {
                self.remainder = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A WebSocket's TCP socket, whose write half fan-out may share once the session attaches it.
#[derive(Debug)]
pub(crate) struct DirectTcp {
    read: OwnedReadHalf,
    write: Writes,
}

#[derive(Debug)]
enum Writes {
    /// Not shared (yet): the socket's own.
    Own(OwnedWriteHalf),
    /// In the connection's signal, shared with fan-out.
    Shared(Arc<Signal>),
    /// Moved out while attaching.
    Moving,
}

impl DirectTcp {
    fn new(tcp: TcpStream) -> Self {
        let (read, write) = tcp.into_split();
        Self {
            read,
            write: Writes::Own(write),
        }
    }

    /// Shares the write half with fan-out through `signal`.
    fn attach(&mut self, signal: &Arc<Signal>, rules: &Rules<'_>) {
        let Writes::Own(half) = std::mem::replace(&mut self.write, Writes::Moving) else {
            return;
        };
        signal.attach(Box::new(Direct {
            half,
            client: rules.client.into(),
            plain: rules.plain,
            echo: rules.echo,
            lent: None,
            task_bytes: false,
            remainder: None,
        }));
        self.write = Writes::Shared(signal.clone());
    }

    /// Runs `op` on the write half: directly while the task owns it, under the signal's
    /// lock once it is shared, after the remainder fan-out left and leaving `task_bytes` as
    /// the write leaves it (fan-out must not write while the task holds bytes).
    fn poll_half<R>(
        &mut self,
        cx: &mut Context<'_>,
        task_bytes: bool,
        op: impl FnOnce(Pin<&mut OwnedWriteHalf>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match &mut self.write {
            Writes::Own(half) => op(Pin::new(half), cx),
            Writes::Shared(signal) => signal
                .with_direct(|direct| {
                    ready!(direct.poll_remainder(cx))?;
                    direct.task_bytes = task_bytes;
                    op(Pin::new(&mut direct.half), cx)
                })
                .unwrap_or_else(gone),
            Writes::Moving => gone(),
        }
    }
}

fn gone<R>() -> Poll<io::Result<R>> {
    Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
}

impl Drop for DirectTcp {
    fn drop(&mut self) {
        if let Writes::Shared(signal) = &self.write {
            signal.detach();
        }
    }
}

impl AsyncRead for DirectTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for DirectTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_half(cx, true, |half, cx| half.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_half(cx, true, |half, cx| half.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// herald's socket flushes its transport each time its queue is empty: from here on
    /// fan-out may write again, once the remainder (if any) is out.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_half(cx, false, |half, cx| half.poll_flush(cx))
    }

    /// Nothing may follow the end of the stream.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_half(cx, true, |half, cx| half.poll_shutdown(cx))
    }
}

/// A hub WebSocket's transport: its TCP socket taken back from hyper, or (over TLS) hyper's
/// upgraded connection.
#[derive(Debug)]
pub(crate) enum Io {
    /// Plain TCP: fan-out may write to it.
    Tcp(DirectTcp),
    /// Anything else.
    Upgraded(UpgradedIo),
}

/// The transport for an upgraded connection, and the bytes already read past the handshake.
pub(crate) fn io(upgraded: hyper::upgrade::Upgraded) -> (Io, BytesMut) {
    match upgraded.downcast::<TokioIo<Prefixed<TcpStream>>>() {
        Ok(parts) => {
            let (prefix, tcp) = parts.io.into_inner().into_parts();
            let mut buffered = BytesMut::from(&prefix[..]);
            buffered.extend_from_slice(&parts.read_buf);
            (Io::Tcp(DirectTcp::new(tcp)), buffered)
        }
        Err(upgraded) => (Io::Upgraded(TokioIo::new(upgraded)), BytesMut::new()),
    }
}

/// A transport that fan-out may write to directly.
pub(crate) trait Share {
    /// Shares the write side through `signal`; returns whether it did.
    fn share(&mut self, _signal: &Arc<Signal>, _rules: &Rules<'_>) -> bool {
        false
    }
}

impl Share for Io {
    fn share(&mut self, signal: &Arc<Signal>, rules: &Rules<'_>) -> bool {
        match self {
            Self::Tcp(tcp) => {
                tcp.attach(signal, rules);
                true
            }
            Self::Upgraded(_) => false,
        }
    }
}

impl Share for UpgradedIo {}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Upgraded(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Upgraded(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Upgraded(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(s) => s.is_write_vectored(),
            Self::Upgraded(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Upgraded(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Upgraded(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
