//! WebSocket echo server built on `fastwebsockets`, used as a benchmark baseline.
//!
//! Usage: `fastwebsockets-echo [ADDR]` (default `127.0.0.1:9002`). The number
//! of Tokio worker threads comes from the `WORKERS` environment variable
//! (default 1).
//!
//! The HTTP upgrade goes through hyper and `fastwebsockets::upgrade`; the
//! connection is then wrapped in a `FragmentCollector` so fragmented messages
//! arrive whole. Pings and close frames are answered by the library
//! (auto-pong, auto-close); every text or binary message is written back with
//! the same opcode.

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        tokio::spawn(serve_http(stream));
    }
}

async fn serve_http(stream: TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        eprintln!("set_nodelay failed: {e}");
        return;
    }
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(on_request))
        .with_upgrades();
    if let Err(e) = conn.await {
        eprintln!("http error: {e}");
    }
}

async fn on_request(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, upgraded) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        // fastwebsockets recommends opting out of cooperative budgeting: the
        // echo loop only yields when the socket is not ready.
        if let Err(e) = tokio::task::unconstrained(echo(upgraded)).await {
            eprintln!("websocket error: {e}");
        }
    });
    Ok(response)
}

async fn echo(upgraded: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = upgraded.await?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    ws.set_max_message_size(MAX_MESSAGE);
    let mut ws = FragmentCollector::new(ws);

    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}
