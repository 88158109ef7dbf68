//! An echo server: every text and binary message comes back unchanged.
//!
//! `cargo run --release -p herald --example echo-server -- 127.0.0.1:9001`
//! (the `WORKERS` environment variable sets the tokio worker threads, default 1; `DEFLATE=1`
//! accepts permessage-deflate offers).
#![allow(clippy::print_stdout)]

use futures_util::FutureExt;
use futures_util::future::Either;
use std::io::Write;
use tokio::net::{TcpListener, TcpStream};

/// jemalloc, as in the herald binary: tokio's task cells and I/O registrations ask for
/// 128-byte alignment, which the system allocator pays for with padding on every connection
/// (1.33 KiB per idle connection with it, 1.0 KiB with jemalloc; docs/performance.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(serve(&addr))
}

async fn serve(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let deflate = std::env::var("DEFLATE").is_ok_and(|v| v == "1");
    let config = herald::Config::default().deflate(deflate.then(herald::DeflateConfig::default));
    // Shared: the handshake borrows it; no connection keeps a copy.
    let config = std::sync::Arc::new(config);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let config = config.clone();
        // The handshake and the echo loop are two futures chained, not one `async` block: a
        // task's memory is its future's largest state, and a block that captured `tcp` and
        // `config` would keep room for both (32 bytes) beside the socket for the
        // connection's whole life.
        let handshake =
            async move { herald::accept_with(tcp, &config, |_| Ok(Default::default())).await };
        tokio::spawn(handshake.then(|accepted| match accepted {
            Ok(ws) => Either::Left(echo(ws)),
            Err(_) => Either::Right(std::future::ready(())),
        }));
    }
}

/// Echoes every data message until the connection ends.
///
/// A function returning an `async move` block rather than an `async fn`: an `async fn` keeps
/// its argument, the whole socket, twice (as captured and as the local it is moved into).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold the socket twice"
)]
fn echo(mut ws: herald::WebSocket<TcpStream>) -> impl Future<Output = ()> {
    async move {
        // `queue` adds the echo without writing; the next `recv` writes every queued echo in
        // one vectored write before it waits for input. Only a full queue (a peer that does
        // not read) waits, in `flush`. Unlike `feed`, no future holds the message, so the
        // task's largest state is the `flush` future, a pointer and a state.
        loop {
            // Only a `bool` outlives the `match`: a value kept in a local or a temporary
            // would stay in the task's future across the `flush`.
            let failed = match ws.recv().await {
                Some(Ok(message)) if message.is_data() => ws.queue(message).is_err(),
                Some(Ok(_)) => continue,
                _ => break,
            };
            if failed || (ws.is_write_buffer_full() && ws.flush().await.is_err()) {
                break;
            }
        }
    }
}
