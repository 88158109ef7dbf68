//! The accept loop (mini-redis' shape). At accept a connection takes a slot for its address
//! (`limits.max_connections_per_ip`, else 429) and one of a semaphore's
//! (`limits.max_connections`, else 503), before any of its bytes is read. Once its first
//! request head has arrived (`limits.handshake_timeout` from accept) it is served by hyper,
//! HTTP/1.1 with upgrades, under Herald's handshake limits. Shutdown stops accepting, closes
//! every WebSocket with 1001 and waits for them up to a deadline.

use crate::http::head::{Prefixed, read_first_head};
use crate::hub::Hub;
use crate::limits::IpSlot;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// Serves `hub` on `listener` until `shutdown` completes; then closes every WebSocket with
/// 1001 and returns once they are gone or `shutdown_timeout` passed.
///
/// # Errors
/// Only when the listener itself fails for good.
pub async fn run(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = crate::http::router(hub.clone());
    let tracker = TaskTracker::new();
    // `HubConfig::validate` (in `Hub::new`) refused 0.
    let limit = Arc::new(Semaphore::new(hub.config.limits.max_connections));
    let maintenance = tokio::spawn(maintain(hub.clone()));
    let webhooks = hub
        .webhooks
        .clone()
        .map(|webhooks| tokio::spawn(webhooks.run(hub.broker.clone(), hub.node_id().to_owned())));
    let stop = hub.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    loop {
        let accepted = tokio::select! {
            () = hub.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = match admit(&hub, &limit, peer) {
            Ok(permit) => permit,
            Err(refusal) => {
                tracker.spawn(refuse(stream, refusal, hub.config.limits.refusal_timeout));
                continue;
            }
        };
        let serve = Serve {
            hub: hub.clone(),
            router: router.clone(),
            peer,
            tracker: tracker.clone(),
            permit,
            streams: StreamSlots(limit.clone(), Activity::default()),
        };
        tracker.spawn(serve_connection(serve, stream));
    }
    drop(listener);
    tracker.close();
    let deadline = hub.config.shutdown_timeout;
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            ?deadline,
            "shutdown deadline passed with connections still open"
        );
    }
    maintenance.abort();
    if let (Some(webhooks), Some(task)) = (&hub.webhooks, webhooks) {
        // The connections' releases reach the broker; its grace delay then emits them.
        webhooks.flush(FLUSH_TIMEOUT).await;
        task.abort();
    }
    Ok(())
}

/// How long shutdown waits for the broker to learn the webhook changes of the connections
/// that closed.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Periodic upkeep: forgets idle in-memory histories. The period follows the shortest
/// history TTL in force, read again after every sweep, so a reload that shortens a TTL takes
/// effect by the sweep after next.
async fn maintain(hub: Arc<Hub>) {
    loop {
        let period = sweep_period(hub.live().namespaces.shortest_ttl());
        tokio::time::sleep(period).await;
        hub.broker.maintain();
    }
}

/// How often to sweep for a shortest TTL of `shortest`: twice per TTL, from 1 s to 1 min.
fn sweep_period(shortest: Duration) -> Duration {
    (shortest / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Why a connection was turned away at accept, before any byte of it was read.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// `limits.max_connections`: the server is full.
    Full,
    /// `limits.max_connections_per_ip`: this client address is at its limit.
    PerIp,
}

impl Refusal {
    fn response(self) -> &'static [u8] {
        match self {
            Self::Full => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections",
            Self::PerIp => b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 38\r\nConnection: close\r\n\r\ntoo many connections from this address",
        }
    }
}

/// Takes the connection's slots: one under `limits.max_connections_per_ip` for its address,
/// one under `limits.max_connections`. Each refusal is counted once, here.
fn admit(hub: &Hub, limit: &Arc<Semaphore>, peer: SocketAddr) -> Result<Permit, Refusal> {
    let Some(ip) = hub.per_ip.acquire(peer.ip()) else {
        hub.metrics.rejected(429);
        hub.metrics.limit_hit("per_ip");
        tracing::debug!(%peer, "refused: too many connections from this address");
        return Err(Refusal::PerIp);
    };
    let Ok(global) = limit.clone().try_acquire_owned() else {
        hub.metrics.rejected(503);
        hub.metrics.limit_hit("max_connections");
        tracing::debug!(%peer, "refused: too many connections");
        return Err(Refusal::Full);
    };
    Ok(Permit(Arc::new(Slots {
        _global: global,
        _ip: ip,
    })))
}

/// Writes a short refusal and closes. The write has a deadline (`limits.refusal_timeout`),
/// so a client that does not read cannot keep the refused socket (and this task) alive.
async fn refuse(mut stream: TcpStream, refusal: Refusal, deadline: Duration) {
    let write = async {
        stream.write_all(refusal.response()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(deadline, write).await;
}

async fn serve_connection(serve: Serve, stream: TcpStream) {
    // `limits.handshake_timeout` runs from accept to the first complete head, TLS included.
    let deadline = Instant::now() + serve.hub.config.limits.handshake_timeout;
    match serve.hub.tls.clone() {
        // rustls' state is large: in a box, so that the task of a plain connection is small.
        Some(tls) => Box::pin(serve.tls(tls, stream, deadline)).await,
        None => serve.first_head(stream, deadline).await,
    }
}

/// A connection's slots under `limits.max_connections` and `limits.max_connections_per_ip`,
/// shared by its HTTP task and, after an upgrade, its WebSocket session: they are released
/// when the last of the two ends.
#[derive(Clone, Debug)]
pub(crate) struct Permit(#[allow(dead_code)] Arc<Slots>);

#[derive(Debug)]
struct Slots {
    _global: OwnedSemaphorePermit,
    _ip: IpSlot,
}

/// The `limits.max_connections` semaphore, for the WebSockets of an HTTP/2 connection: each
/// takes a slot of its own at its extended CONNECT, as each HTTP/1.1 WebSocket has its
/// connection's. Each also keeps its connection from counting as idle.
#[derive(Clone, Debug)]
pub(crate) struct StreamSlots(Arc<Semaphore>, Activity);

/// A WebSocket's slot on an HTTP/2 connection.
#[derive(Debug)]
pub(crate) struct StreamSlot(
    #[allow(dead_code)] OwnedSemaphorePermit,
    #[allow(dead_code)] Busy,
);

impl StreamSlots {
    /// A slot, or `None` when the server is full.
    pub(crate) fn acquire(&self) -> Option<StreamSlot> {
        let permit = self.0.clone().try_acquire_owned().ok()?;
        Some(StreamSlot(permit, self.1.busy()))
    }
}

/// What an HTTP/2 connection has under way: requests (until their response body ended) and
/// WebSockets. A connection with none for `limits.http2_idle_timeout` is closed.
#[derive(Clone, Debug, Default)]
struct Activity(Arc<ActivityState>);

#[derive(Debug, Default)]
struct ActivityState {
    open: std::sync::atomic::AtomicUsize,
    changed: tokio::sync::Notify,
}

/// One thing under way on a connection, for as long as it lives.
#[derive(Debug)]
pub(crate) struct Busy(Activity);

impl Activity {
    fn busy(&self) -> Busy {
        self.0
            .open
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.changed.notify_waiters();
        Busy(self.clone())
    }

    /// Returns once nothing was under way for `timeout`.
    async fn idle(&self, timeout: std::time::Duration) {
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.0.open.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                tokio::select! {
                    () = tokio::time::sleep(timeout) => return,
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.0.0.changed.notify_waiters();
    }
}

/// A response body that keeps its connection busy until it ends.
struct Guarded {
    body: axum::body::Body,
    _busy: Busy,
}

impl hyper::body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// What serving a connection needs besides the stream.
struct Serve {
    hub: Arc<Hub>,
    router: Router,
    peer: SocketAddr,
    tracker: TaskTracker,
    permit: Permit,
    streams: StreamSlots,
}

impl Serve {
    async fn tls(self, tls: Arc<herald::tls::ServerConfig>, stream: TcpStream, deadline: Instant) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.first_head(stream, deadline).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "tls handshake failed"),
            Err(_) => {
                self.hub.metrics.limit_hit("handshake_timeout");
                tracing::debug!(peer = %self.peer, "tls handshake timed out");
            }
        }
    }

    /// Holds only the bytes that arrived until the first head is complete (see
    /// `http::head`), then hands them with the stream to hyper, whose state is allocated
    /// only then, in a box of its own, so that the waiting task stays small.
    async fn first_head<S>(self, mut stream: S, deadline: Instant)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let max = self.hub.ws.handshake_limits.max_head_size;
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, read_first_head(&mut stream, max)) => read,
            () = self.hub.shutdown.cancelled() => return,
        };
        let peer = self.peer;
        match read {
            Ok(Ok(Some(head))) => {
                let http2 = self.hub.config.http2 && head.starts_with(HTTP2_PREFACE);
                Box::pin(self.http(Prefixed::new(head, stream), http2)).await;
            }
            Ok(Ok(None)) => tracing::debug!(%peer, "closed before a request head"),
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "reading the request head failed"),
            Err(_) => {
                self.hub.metrics.limit_hit("handshake_timeout");
                tracing::debug!(%peer, "request head timed out");
            }
        }
    }

    /// Serves HTTP/1.1 (with upgrades), or HTTP/2 (with extended CONNECT) when `http2`, on
    /// `stream` until it closes or the hub shuts down.
    async fn http<S>(self, stream: S, http2: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            hub,
            router,
            peer,
            tracker,
            permit,
            streams,
        } = self;
        let activity = streams.1.clone();
        let watched = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let busy = activity.busy();
            let extensions = request.extensions_mut();
            extensions.insert(axum::extract::ConnectInfo(peer));
            extensions.insert(tracker.clone());
            extensions.insert(permit.clone());
            extensions.insert(streams.clone());
            let mut router = router.clone();
            async move {
                let response = tower::Service::call(&mut router, request).await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| axum::body::Body::new(Guarded { body, _busy: busy })),
                )
            }
        });
        let io = TokioIo::new(stream);
        if http2 {
            let idle = hub.config.limits.http2_idle_timeout;
            let connection = http2_builder(&hub).serve_connection(io, service);
            let metrics = hub.metrics.clone();
            let idle = async move {
                watched.idle(idle).await;
                metrics.limit_hit("http2_idle_timeout");
                tracing::debug!(%peer, ?idle, "idle http/2 connection closed");
            };
            drive(&hub, peer, connection, |c| c.graceful_shutdown(), idle).await;
        } else {
            let connection = http1(&hub).serve_connection(io, service).with_upgrades();
            let never = std::future::pending();
            drive(&hub, peer, connection, |c| c.graceful_shutdown(), never).await;
        }
    }
}

/// Runs a hyper connection until it ends, or until shutdown or `idle` (an HTTP/2 connection
/// with nothing under way for `limits.http2_idle_timeout`), which close it gracefully (on
/// HTTP/2 a GOAWAY with NO_ERROR), letting the request in progress finish within
/// `shutdown_http_timeout`.
async fn drive<C>(
    hub: &Hub,
    peer: SocketAddr,
    connection: C,
    graceful: fn(std::pin::Pin<&mut C>),
    idle: impl Future<Output = ()>,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = hub.shutdown.cancelled() => {
            graceful(connection.as_mut());
            let deadline = hub.config.shutdown_http_timeout;
            let _ = tokio::time::timeout(deadline, connection).await;
            return;
        }
        () = idle => {
            graceful(connection.as_mut());
            let deadline = hub.config.shutdown_http_timeout;
            match tokio::time::timeout(deadline, connection).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        count_connection_error(hub, &e);
        tracing::debug!(%peer, error = %e, "http connection ended");
    }
}

/// The first bytes of every HTTP/2 connection, h2c and h2 alike (RFC 9113 §3.4), up to its
/// empty line, which ends the first head `read_first_head` waits for.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\n";

/// hyper's HTTP/2 server under Herald's limits, advertising
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3):
///
/// - `max_concurrent_streams`: `limits.max_streams_per_connection`;
/// - `max_header_list_size`: the handshake head limit, as for HTTP/1.1 heads (a larger
///   header list is answered 431 on its stream);
/// - `max_pending_accept_reset_streams` and `max_local_error_reset_streams`:
///   `limits.http2_max_pending_resets`; a client that resets (or makes the server reset) more
///   streams than that before they are served gets GOAWAY ENHANCE_YOUR_CALM (rapid reset,
///   CVE-2023-44487);
/// - HTTP/2 PINGs after `heartbeat.interval` of silence, the connection dropped when one is
///   not answered within `heartbeat.timeout`: a vanished peer frees its slots;
/// - flow-control windows of 64 KiB per stream (HTTP/2's default) and 1 MiB per connection,
///   and 64 KiB of queued writes per stream: what a connection buffers stays bounded however
///   many streams it opens.
fn http2_builder(hub: &Hub) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let limits = &hub.config.limits;
    let streams = u32::try_from(limits.max_streams_per_connection).unwrap_or(u32::MAX);
    let head = u32::try_from(hub.ws.handshake_limits.max_head_size).unwrap_or(u32::MAX);
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .keep_alive_interval(hub.config.heartbeat.interval)
        .keep_alive_timeout(hub.config.heartbeat.timeout)
        .max_concurrent_streams(streams)
        .max_pending_accept_reset_streams(limits.http2_max_pending_resets)
        .max_local_error_reset_streams(limits.http2_max_pending_resets)
        .max_header_list_size(head)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buf_size(STREAM_WINDOW as usize);
    builder
}

/// HTTP/2's default stream window (RFC 9113 §6.9.2), rounded to 64 KiB.
const STREAM_WINDOW: u32 = 64 << 10;
const CONNECTION_WINDOW: u32 = 1 << 20;

/// hyper's HTTP/1.1 server with Herald's handshake limits (`HandshakeLimits`: 16 KiB head,
/// 64 headers by default) instead of hyper's (about 400 KiB, 100 headers).
///
/// - `max_header_size`: a head (request line and headers) over the limit is answered 431 by
///   hyper, which then closes the connection. A chunked body's trailers share the limit.
/// - `max_headers`: more header lines is answered 431 as well (httparse's `TooManyHeaders`).
/// - `max_buf_size`: the read buffer stays at the head limit (hyper's floor is 8 KiB) for bodies
///   too, so a connection never buffers more than that, whatever a client sends.
/// - `header_read_timeout`: `limits.handshake_timeout` for the heads after the first on a
///   kept-alive connection, idle time included; hyper closes the connection without an
///   answer when it passes. (The first head is read before hyper, under the deadline from
///   accept: `Serve::first_head`.)
fn http1(hub: &Hub) -> hyper::server::conn::http1::Builder {
    let limits = &hub.ws.handshake_limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(hub.config.limits.handshake_timeout)
        .max_header_size(limits.max_head_size)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_head_size.max(MIN_HYPER_BUF_SIZE));
    builder
}

/// The smallest `max_buf_size` hyper accepts (it panics below it).
const MIN_HYPER_BUF_SIZE: usize = 8192;

/// Counts the bounds hyper enforced on its own: it answered 431 to an oversize head, or
/// closed a connection whose head did not arrive in time.
fn count_connection_error(hub: &Hub, e: &hyper::Error) {
    let h2 = std::error::Error::source(e).and_then(|s| s.downcast_ref::<h2::Error>());
    if let Some(reason) = h2.and_then(h2::Error::reason) {
        // An HTTP/2 connection error: ours (a GOAWAY we sent) or the peer's.
        hub.metrics
            .http2_error(&format!("{reason:?}").to_ascii_lowercase());
    }
    if e.is_parse_too_large() {
        hub.metrics.rejected(431);
        hub.metrics.limit_hit("head_size");
    } else if e.is_timeout() {
        hub.metrics.limit_hit("handshake_timeout");
    }
}
