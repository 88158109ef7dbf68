//! WebSocket echo server built on `tokio-tungstenite`, used as a benchmark baseline.
//!
//! Usage: `tungstenite-echo [ADDR]` (default `127.0.0.1:9002`). The number of
//! Tokio worker threads comes from the `WORKERS` environment variable
//! (default 1).
//!
//! Every text or binary message is sent back unchanged with the same opcode.
//! Pings are answered and close frames are echoed by tungstenite itself.
//! Replies are queued with `feed` and flushed once no further message is
//! already decoded or readable, so pipelined requests share one write.

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const DEFAULT_ADDR: &str = "127.0.0.1:9002";
const MAX_MESSAGE: usize = 64 << 20;

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let workers = worker_count()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("building the Tokio runtime")?
        .block_on(serve(&addr))
}

fn worker_count() -> anyhow::Result<usize> {
    match std::env::var("WORKERS") {
        Ok(v) => {
            let n: usize = v
                .trim()
                .parse()
                .with_context(|| format!("WORKERS={v:?} is not a number"))?;
            anyhow::ensure!(n > 0, "WORKERS must be at least 1");
            Ok(n)
        }
        Err(_) => Ok(1),
    }
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = herald_bench_peers::listen(addr).await?;

    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(e) = echo(stream, config).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

async fn echo(stream: TcpStream, config: WebSocketConfig) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;

    while let Some(msg) = ws.next().await {
        let mut msg = msg?;
        loop {
            if msg.is_text() || msg.is_binary() {
                ws.feed(msg).await?;
            } else if msg.is_close() {
                // tungstenite has queued the close reply; flushing sends it.
                ws.flush().await?;
                return Ok(());
            }
            // Batch any message that is already available before flushing.
            match ws.next().now_or_never() {
                Some(Some(next)) => msg = next?,
                Some(None) => {
                    ws.flush().await?;
                    return Ok(());
                }
                None => break,
            }
        }
        ws.flush().await?;
    }
    Ok(())
}
