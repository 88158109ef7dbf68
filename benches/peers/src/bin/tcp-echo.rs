//! The raw TCP echo ceiling: what the kernel charges to read bytes and write them back.
//!
//! Usage: `tcp-echo [ADDR]` (default `127.0.0.1:9005`), one thread. A connection's opening
//! handshake is answered (nothing checked); after that every read (up to 256 KiB) goes back
//! unchanged in one `write` (more only when the socket took part of it), with no WebSocket
//! logic at all: the client's frames return still masked, which `herald bench echo
//! --raw-echo` accepts. No server can do less per message, so it is the ceiling.

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use herald_bench_peers::floor::handshake;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const DEFAULT_ADDR: &str = "127.0.0.1:9005";

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the Tokio runtime")?
        .block_on(serve(&addr))
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = herald_bench_peers::listen(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = connection(stream).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

async fn connection(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let early = handshake(&mut stream).await?;
    stream.write_all(&early).await?;
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
