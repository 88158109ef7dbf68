//! One echo connection: keeps `in_flight` copies of a pre-built frame outstanding, writes them
//! in vectored batches, counts echoes from frame headers, and times each batch's round trip.

use super::frame::FrameSkipper;
use super::report::{histogram, micros};
use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The reused read buffer's size.
const READ_BUF: usize = 64 << 10;
/// The most frame copies handed to one vectored write.
const MAX_IOV: usize = 64;

/// What one connection measured. Lives outside the future that runs the exchange, so that
/// the figures survive when the caller stops it at a deadline.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Round trips completed inside the measured window, in microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Echoes completed inside the measured window.
    pub(crate) messages: u64,
    /// Copies written whole, over the whole run.
    pub(crate) sent: u64,
    /// Echoes received, over the whole run.
    pub(crate) echoed: u64,
    /// Why the connection stopped early, if it did.
    pub(crate) error: Option<anyhow::Error>,
}

/// The measured window: echoes completing in `[from, until)` count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) from: Instant,
    pub(crate) until: Instant,
}

/// A closed-loop echo exchange on one connection.
pub(crate) struct Exchange {
    frame: Bytes,
    window: Window,
    /// Copies this connection may write in total: the initial ones plus one per echo, until
    /// the window ends.
    allowed: u64,
    /// Bytes written in total.
    written: u64,
    /// Send instants of the copies in flight, oldest first, with how many started then.
    batches: VecDeque<(Instant, u64)>,
    skipper: FrameSkipper,
    /// Echoes across every connection, for the progress bar.
    progress: Arc<AtomicU64>,
    pub(crate) stats: Stats,
}

impl Exchange {
    pub(crate) fn new(
        frame: Bytes,
        in_flight: u64,
        window: Window,
        progress: Arc<AtomicU64>,
    ) -> Self {
        Self {
            frame,
            window,
            allowed: in_flight,
            written: 0,
            batches: VecDeque::new(),
            skipper: FrameSkipper::default(),
            progress,
            stats: Stats {
                latency: histogram(),
                messages: 0,
                sent: 0,
                echoed: 0,
                error: None,
            },
        }
    }

    /// Accepts masked frames from the server: it is a raw TCP echo (see
    /// [`FrameSkipper::accepting_masked`]).
    pub(crate) fn accept_masked(&mut self) {
        self.skipper = FrameSkipper::accepting_masked();
    }

    /// Runs until the window ended and every copy written came back (the drain). The caller
    /// bounds the drain by dropping this future.
    ///
    /// # Errors
    /// When the transport fails or the server closes or breaks the framing.
    pub(crate) async fn run(
        &mut self,
        stream: &mut TcpStream,
        leftover: &[u8],
    ) -> anyhow::Result<()> {
        let mut buf = vec![0u8; READ_BUF];
        self.received(leftover)?;
        let until = tokio::time::Instant::from_std(self.window.until);
        let mut stopping = false;
        let (mut reader, writer) = stream.split();
        loop {
            if self.pending() > 0 {
                self.try_write(writer.as_ref())?;
            }
            if stopping && self.pending() == 0 && self.stats.echoed == self.allowed {
                return Ok(());
            }
            let n = tokio::select! {
                biased;
                () = tokio::time::sleep_until(until), if !stopping => {
                    stopping = true;
                    // No new copies from now on: drain what is in flight.
                    self.allowed = self.started();
                    continue;
                }
                ready = writer.as_ref().writable(), if self.pending() > 0 => {
                    ready?;
                    continue;
                }
                n = reader.read(&mut buf) => n.context("reading")?,
            };
            if n == 0 {
                bail!("server closed the connection");
            }
            let before = self.stats.echoed;
            self.received(&buf[..n])?;
            if !stopping {
                self.allowed += self.stats.echoed - before;
            }
        }
    }

    pub(crate) fn window(&self) -> Window {
        self.window
    }

    /// Copies started (at least one byte written).
    fn started(&self) -> u64 {
        self.written.div_ceil(self.frame.len() as u64)
    }

    /// Bytes still to write.
    fn pending(&self) -> u64 {
        (self.allowed * self.frame.len() as u64).saturating_sub(self.written)
    }

    /// Counts the echoes in `data` and records each one's round trip.
    fn received(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let mut done = self.skipper.feed(data)?;
        if done == 0 {
            return Ok(());
        }
        self.stats.echoed += done;
        self.progress.fetch_add(done, Ordering::Relaxed);
        let now = Instant::now();
        let counted = now >= self.window.from && now < self.window.until;
        while done > 0 {
            let Some((sent, count)) = self.batches.front_mut() else {
                bail!("the server echoed more messages than were sent");
            };
            let take = done.min(*count);
            if counted {
                self.stats
                    .latency
                    .saturating_record_n(micros(now - *sent), take);
                self.stats.messages += take;
            }
            *count -= take;
            done -= take;
            if *count == 0 {
                self.batches.pop_front();
            }
        }
        Ok(())
    }

    /// Writes as many pending copies as the socket takes now, in one vectored write each.
    fn try_write(&mut self, stream: &TcpStream) -> anyhow::Result<()> {
        let len = self.frame.len() as u64;
        while self.pending() > 0 {
            let offset = usize::try_from(self.written % len).unwrap_or(0);
            // The partial copy plus whole ones: `pending + offset` is a multiple of `len`.
            let copies = usize::try_from((self.pending() + offset as u64) / len).unwrap_or(MAX_IOV);
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let count = copies.clamp(1, MAX_IOV);
            slices[0] = IoSlice::new(&self.frame[offset..]);
            for slice in &mut slices[1..count] {
                *slice = IoSlice::new(&self.frame);
            }
            let n = match stream.try_write_vectored(&slices[..count]) {
                Ok(n) => n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e).context("writing"),
            };
            let started = self.started();
            self.written += n;
            let new = self.started() - started;
            if new > 0 {
                self.batches.push_back((Instant::now(), new));
            }
            self.stats.sent = self.written / len;
        }
        Ok(())
    }
}
