//! WebSocket broadcast server built on `tokio-tungstenite`, used as a fan-out baseline.
//!
//! Usage: `tungstenite-broadcast [ADDR]` (default `127.0.0.1:9003`); Tokio worker threads from
//! `WORKERS` (default 1). Every text or binary message a client sends goes to every other
//! client, through a `tokio::sync::broadcast` channel that each connection's writer reads;
//! a writer feeds every message already queued before it flushes, so a burst leaves in one
//! write. A connection that lags more than `QUEUE` messages behind is closed.

#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

const DEFAULT_ADDR: &str = "127.0.0.1:9003";
/// Messages a connection may lag behind before it is closed.
const QUEUE: usize = 4096;

/// A message and the connection it came from (which does not get it back).
type Relayed = (u64, Message);

fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let workers: usize = std::env::var("WORKERS").map_or(Ok(1), |v| v.trim().parse())?;
    anyhow::ensure!(workers > 0, "WORKERS must be at least 1");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("building the Tokio runtime")?
        .block_on(serve(&addr))
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = herald_bench_peers::listen(addr).await?;
    let (room, _) = broadcast::channel::<Relayed>(QUEUE);
    let ids = AtomicU64::new(0);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let room = room.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(stream, id, room).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

async fn relay(stream: TcpStream, id: u64, room: broadcast::Sender<Relayed>) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let ws = tokio_tungstenite::accept_async(stream).await?;
    let (mut sink, mut source) = ws.split();
    let mut inbox = room.subscribe();
    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(msg)) if msg.is_text() || msg.is_binary() => {
                    let _ = room.send((id, msg));
                }
                Some(Ok(msg)) if msg.is_close() => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            relayed = inbox.recv() => {
                let mut next = Some(relayed?);
                while let Some((from, msg)) = next.take() {
                    if from != id {
                        sink.feed(msg).await?;
                    }
                    next = match inbox.try_recv() {
                        Ok(more) => Some(more),
                        Err(broadcast::error::TryRecvError::Empty) => None,
                        Err(e) => return Err(e.into()),
                    };
                }
                sink.flush().await?;
            }
        }
    }
    let _ = sink.close().await;
    Ok(())
}
