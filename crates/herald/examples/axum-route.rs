//! An axum app that serves a Herald WebSocket echo on `/ws` beside an ordinary route.
//!
//! `cargo run -p herald --features axum --example axum-route -- 127.0.0.1:3000`
#![allow(clippy::print_stdout)]

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use herald::upgrade::WebSocketUpgrade;

async fn echo(upgrade: WebSocketUpgrade) -> Response {
    upgrade.protocols(["echo"]).on_upgrade(|mut ws| async move {
        while let Some(Ok(message)) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = Router::new()
        .route(
            "/",
            get(|| async { "Herald over axum: WebSocket echo at /ws\n" }),
        )
        .route("/ws", get(echo));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
