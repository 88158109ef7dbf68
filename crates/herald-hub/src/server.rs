//! The accept loop (mini-redis' shape): a semaphore caps connections, each connection is
//! served by hyper (HTTP/1.1 with upgrades), shutdown stops accepting, closes every
//! WebSocket with 1001 and waits for them up to a deadline.

use crate::hub::Hub;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
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
    let limit = Arc::new(Semaphore::new(hub.config.limits.max_connections.max(1)));
    let maintenance = tokio::spawn(maintain(hub.clone()));
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
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            hub.metrics.rejected(503);
            tracker.spawn(refuse(stream));
            continue;
        };
        let hub = hub.clone();
        let router = router.clone();
        let task_tracker = tracker.clone();
        // The permit lives as long as the connection: with the HTTP task, then with the
        // WebSocket session after an upgrade.
        let permit = Permit(Arc::new(permit));
        tracker.spawn(serve_connection(
            hub,
            router,
            stream,
            peer,
            task_tracker,
            permit,
        ));
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
    Ok(())
}

/// Periodic upkeep: forgets idle in-memory histories.
async fn maintain(hub: Arc<Hub>) {
    let period =
        (hub.config.history.ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        hub.broker.maintain();
    }
}

async fn refuse(mut stream: TcpStream) {
    let response = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(response)).await;
}

async fn serve_connection(
    hub: Arc<Hub>,
    router: Router,
    stream: TcpStream,
    peer: SocketAddr,
    tracker: TaskTracker,
    permit: Permit,
) {
    match hub.tls.clone() {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let timeout = hub.config.limits.handshake_timeout;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_http(hub, router, stream, peer, tracker, permit).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
            }
        }
        None => serve_http(hub, router, stream, peer, tracker, permit).await,
    }
}

/// A slot under `limits.max_connections`, shared by a connection's HTTP task and its
/// WebSocket session.
#[derive(Clone, Debug)]
pub(crate) struct Permit(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

async fn serve_http<S>(
    hub: Arc<Hub>,
    router: Router,
    stream: S,
    peer: SocketAddr,
    tracker: TaskTracker,
    permit: Permit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        request.extensions_mut().insert(tracker.clone());
        request.extensions_mut().insert(permit.clone());
        let mut router = router.clone();
        async move { tower::Service::call(&mut router, request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(hub.config.limits.handshake_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        }
        () = hub.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
        }
    }
}
