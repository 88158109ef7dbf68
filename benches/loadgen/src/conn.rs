//! One benchmark connection: handshake, then a closed-loop echo exchange.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Instant;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::frame::FrameSkipper;

/// Size of the reused read buffer.
const READ_BUF: usize = 64 * 1024;
/// Most frame copies handed to one vectored write.
const MAX_IOV: usize = 64;
/// Largest accepted handshake response.
const MAX_RESPONSE: usize = 16 * 1024;

/// Target of the benchmark, taken from the `--url` option.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `host:port` to connect to and to send as `Host`.
    pub(crate) authority: String,
    /// Request path, starting with `/`.
    pub(crate) path: String,
}

/// Connects and performs the client opening handshake.
///
/// Returns the stream and any bytes the server sent after its response.
pub(crate) async fn connect(target: &Target, seed: u64) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(&target.authority)
        .await
        .with_context(|| format!("connecting to {}", target.authority))?;
    stream.set_nodelay(true).context("set_nodelay")?;

    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path,
        target.authority,
        websocket_key(seed),
    );
    stream
        .write_all(request.as_bytes())
        .await
        .context("sending the upgrade request")?;

    let mut response = Vec::with_capacity(1024);
    let end = loop {
        if let Some(pos) = find_header_end(&response) {
            break pos;
        }
        if response.len() > MAX_RESPONSE {
            bail!("handshake response larger than {MAX_RESPONSE} bytes");
        }
        let n = stream
            .read_buf(&mut response)
            .await
            .context("reading the upgrade response")?;
        if n == 0 {
            bail!("server closed the connection during the handshake");
        }
    };
    let status_line = response.split(|&b| b == b'\n').next().unwrap_or_default();
    if !status_line.windows(5).any(|w| w == b" 101 ") {
        bail!(
            "upgrade refused: {}",
            String::from_utf8_lossy(status_line).trim_end()
        );
    }
    let leftover = response.split_off(end);
    Ok((stream, leftover))
}

/// Position just past the `\r\n\r\n` ending the response head.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A `Sec-WebSocket-Key`: 16 pseudo-random bytes, base64 encoded.
fn websocket_key(seed: u64) -> String {
    let mut state = seed;
    let mut raw = [0u8; 16];
    for chunk in raw.chunks_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    base64(&raw)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What one connection measured.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Round-trip latency of counted messages, in microseconds.
    pub(crate) hist: Histogram<u64>,
    /// Messages completed inside the measurement window.
    pub(crate) msgs: u64,
    /// Why the connection stopped early, if it did.
    pub(crate) error: Option<anyhow::Error>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            // Three significant digits up to one hour.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            msgs: 0,
            error: None,
        }
    }
}

/// Closed-loop echo exchange on an established connection.
///
/// The state lives outside the future that drives it, so the caller can stop
/// the exchange at the deadline by dropping that future and still read the
/// statistics.
pub(crate) struct Exchange {
    frame: Bytes,
    inflight: usize,
    /// Messages counted only when they complete at or after this instant.
    measure_from: Instant,
    /// Send instants of the messages still in flight, oldest first.
    sent: VecDeque<Instant>,
    /// Whole frame copies still to be written, including a partial one.
    copies_pending: usize,
    /// Bytes of the first pending copy already written.
    written: usize,
    parser: FrameSkipper,
    /// What this connection measured.
    pub(crate) stats: Stats,
}

impl Exchange {
    pub(crate) fn new(frame: Bytes, inflight: usize, measure_from: Instant) -> Self {
        Self {
            frame,
            inflight,
            measure_from,
            sent: VecDeque::with_capacity(inflight),
            copies_pending: 0,
            written: 0,
            parser: FrameSkipper::default(),
            stats: Stats::new(),
        }
    }

    /// Runs until an error occurs; the caller stops it at the deadline by
    /// dropping the future.
    pub(crate) async fn run(
        &mut self,
        mut stream: TcpStream,
        leftover: &[u8],
    ) -> anyhow::Result<()> {
        let mut buf = vec![0u8; READ_BUF];
        let now = Instant::now();
        for _ in 0..self.inflight {
            self.sent.push_back(now);
        }
        self.copies_pending = self.inflight;
        if !leftover.is_empty() {
            self.received(leftover)?;
        }

        // `AsyncRead::read` clears the readiness flag after a short read, which
        // saves one EAGAIN read per wakeup compared with `try_read`.
        let (mut rd, wr) = stream.split();
        loop {
            if self.copies_pending > 0 {
                self.try_write(wr.as_ref())?;
            }
            let n = if self.copies_pending > 0 {
                tokio::select! {
                    n = rd.read(&mut buf) => n,
                    ready = wr.as_ref().writable() => {
                        ready?;
                        continue;
                    }
                }
            } else {
                rd.read(&mut buf).await
            }
            .context("reading")?;
            if n == 0 {
                bail!("server closed the connection");
            }
            self.received(&buf[..n])?;
        }
    }

    /// Accounts for received bytes and queues one new message per echo.
    fn received(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let done = self.parser.feed(data)?;
        if done == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let counted = now >= self.measure_from;
        for _ in 0..done {
            let Some(sent) = self.sent.pop_front() else {
                bail!("server echoed more messages than were sent");
            };
            if counted {
                let us = u64::try_from(now.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                self.stats.hist.saturating_record(us.max(1));
                self.stats.msgs += 1;
            }
            self.sent.push_back(now);
        }
        self.copies_pending += done;
        Ok(())
    }

    /// Writes as many pending frame copies as the socket accepts.
    fn try_write(&mut self, stream: &TcpStream) -> anyhow::Result<()> {
        let frame_len = self.frame.len();
        while self.copies_pending > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let count = self.copies_pending.min(MAX_IOV);
            slices[0] = IoSlice::new(&self.frame[self.written..]);
            for slice in &mut slices[1..count] {
                *slice = IoSlice::new(&self.frame);
            }
            let n = match stream.try_write_vectored(&slices[..count]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e).context("writing"),
            };
            let total = self.written + n;
            self.copies_pending -= total / frame_len;
            self.written = total % frame_len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(websocket_key(7).len(), 24);
    }

    #[test]
    fn header_end() {
        assert_eq!(find_header_end(b"HTTP/1.1 101 x\r\n\r\nab"), Some(18));
        assert_eq!(find_header_end(b"HTTP/1.1 101 x\r\n"), None);
    }
}
