//! An event-stream response body as a wire's output: events are buffered, and moved to the
//! body (a one-slot channel hyper drains) when the session polls its wire.

use bytes::{BufMut, Bytes, BytesMut};
use herald_hub_protocol::Disconnect;
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The body's bounds and clocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Past this many buffered bytes the wire is full.
    pub(crate) max_buffer: usize,
    /// A client that takes no bytes for this long is dropped (`None`: never).
    pub(crate) write_timeout: Option<Duration>,
    /// A comment goes out after this long without an event.
    pub(crate) heartbeat: Duration,
    /// How long the closing event may take to leave.
    pub(crate) close_wait: Duration,
}

/// The outgoing side of one `text/event-stream` response.
pub(crate) struct EventBody {
    body: mpsc::Sender<Bytes>,
    out: BytesMut,
    pub(crate) bounds: Bounds,
    /// When the buffered bytes last stopped moving.
    blocked_since: Option<Instant>,
    last_write: Instant,
    bytes: Counter,
}

impl EventBody {
    /// A body writing into `body`, counting its bytes in `bytes`.
    pub(crate) fn new(body: mpsc::Sender<Bytes>, bounds: Bounds, bytes: Counter) -> Self {
        Self {
            body,
            out: BytesMut::new(),
            bounds,
            blocked_since: None,
            last_write: Instant::now(),
            bytes,
        }
    }

    /// Buffers one event; `data` is split into `data:` lines at its line breaks (the
    /// browser joins them back with `\n`).
    pub(crate) fn event(&mut self, kind: Option<&str>, id: Option<&str>, data: &str) {
        if let Some(kind) = kind {
            self.field("event", kind);
        }
        if let Some(id) = id {
            self.field("id", id);
        }
        for line in data.split(['\n', '\r']).filter(|l| !l.is_empty()) {
            self.field("data", line);
        }
        self.out.put_u8(b'\n');
    }

    fn field(&mut self, name: &str, value: &str) {
        self.out.put_slice(name.as_bytes());
        self.out.put_slice(b": ");
        self.out.put_slice(value.as_bytes());
        self.out.put_u8(b'\n');
    }

    /// Whether the buffer is at its bound.
    pub(crate) fn is_full(&self) -> bool {
        self.out.len() >= self.bounds.max_buffer
    }

    /// Moves buffered bytes to the body, waiting for room; `Err` with the close code once
    /// the client is gone (1006) or took nothing for `write_timeout` (4004).
    pub(crate) async fn flush(&mut self) -> Result<(), u16> {
        while !self.out.is_empty() {
            let since = *self.blocked_since.get_or_insert_with(Instant::now);
            let deadline = self.bounds.write_timeout.map(|t| since + t);
            let permit = tokio::select! {
                permit = self.body.reserve() => permit.map_err(|_| 1006_u16)?,
                () = sleep_until(deadline) => return Err(Disconnect::WRITE_TIMEOUT.code),
            };
            let chunk = self.out.split().freeze();
            self.bytes.inc_by(chunk.len() as u64);
            permit.send(chunk);
            self.blocked_since = None;
            self.last_write = Instant::now();
        }
        Ok(())
    }

    /// Waits until the client is gone (`true`) or a heartbeat comment is due, which it then
    /// buffers (`false`). Call with nothing buffered.
    pub(crate) async fn idle(&mut self) -> bool {
        let heartbeat = self.last_write + self.bounds.heartbeat;
        tokio::select! {
            () = self.body.closed() => true,
            () = tokio::time::sleep_until(heartbeat) => {
                self.out.put_slice(b":\n\n");
                false
            }
        }
    }

    /// Buffers the closing `disconnect` event and gives it `close_wait` to leave.
    pub(crate) async fn close(&mut self, reason: Disconnect) {
        let data = serde_json::json!({"code": reason.code, "reason": reason.reason});
        self.event(Some("disconnect"), None, &data.to_string());
        let _ = tokio::time::timeout(self.bounds.close_wait, self.flush()).await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
