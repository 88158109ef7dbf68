//! An echo server: every text and binary message comes back unchanged.
//!
//! `cargo run --release -p herald --example echo-server -- 127.0.0.1:9001`
//! (the `WORKERS` environment variable sets the tokio worker threads, default 1; `DEFLATE=1`
//! accepts permessage-deflate offers).
#![allow(clippy::print_stdout)]

use std::io::Write;
use tokio::net::TcpListener;

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
    // Shared: each connection task keeps a pointer, not a copy, for its whole life.
    let config = std::sync::Arc::new(config);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let config = config.clone();
        tokio::spawn(async move {
            // One binding: a separate `Result` local would stay in the task's future beside
            // `ws` for the connection's whole life (another 800 bytes).
            let Ok(mut ws) = herald::accept_with(tcp, &config, |_| Ok(Default::default())).await
            else {
                return;
            };
            // `feed` queues without flushing; the next `recv` writes every queued echo in one
            // vectored write before it waits for input.
            loop {
                // The message is moved into `feed`'s future inside the `match`, so the task
                // does not keep a second copy of it across the `.await`.
                let echo = match ws.recv().await {
                    Some(Ok(message)) if message.is_data() => ws.feed(message),
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                if echo.await.is_err() {
                    break;
                }
            }
        });
    }
}
