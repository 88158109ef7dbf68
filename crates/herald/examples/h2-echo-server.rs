//! An echo server for WebSockets over HTTP/2 (RFC 8441) and HTTP/1.1 on one port: h2c with
//! prior knowledge, extended CONNECT, permessage-deflate on (`scripts/interop` runs Node's
//! built-in http2 client against it).
//!
//! `cargo run --release -p herald --features http2 --example h2-echo-server -- [ADDR]`
//! (default 127.0.0.1:0); prints `listening on ADDR`.
#![allow(clippy::print_stdout)]

use axum::Router;
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use herald::upgrade::WebSocketUpgrade;
use herald::{Config, DeflateConfig};
use std::io::Write;
use tokio::net::TcpListener;

async fn echo(upgrade: WebSocketUpgrade) -> Response {
    let config = Config::default()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .deflate(Some(DeflateConfig::default()));
    upgrade.config(config).on_upgrade(|mut ws| async move {
        while let Some(Ok(message)) = ws.recv().await {
            if message.is_data() && ws.feed(message).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let app = Router::new().fallback(on(MethodFilter::GET.or(MethodFilter::CONNECT), echo));
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(tcp);
            let _ = herald::h2::server()
                .serve_connection_with_upgrades(io, service)
                .await;
        });
    }
}
