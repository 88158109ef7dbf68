//! A Herald WebSocket on an axum 0.8 route.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "axum")]

mod common;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use herald::Message;
use herald::upgrade::WebSocketUpgrade;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn echo(upgrade: WebSocketUpgrade) -> Response {
    let room = upgrade.request().query().unwrap_or_default().to_owned();
    upgrade
        .protocols(["echo"])
        .on_upgrade(move |mut ws| async move {
            let _ = ws.send(Message::text(room)).await;
            while let Some(Ok(message)) = ws.recv().await {
                if message.is_data() && ws.send(message).await.is_err() {
                    break;
                }
            }
        })
}

async fn compressed_echo(upgrade: WebSocketUpgrade) -> Response {
    let config = herald::Config::default().deflate(Some(herald::DeflateConfig::default()));
    upgrade.config(config).on_upgrade(|mut ws| async move {
        while let Some(Ok(message)) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}

async fn app() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { "plain route" }))
        .route("/ws", get(echo))
        .route("/deflate", get(compressed_echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn axum_route_upgrades_and_echoes() {
    let addr = app().await;
    let (mut ws, accepted) = herald::ClientBuilder::new(&format!("ws://{addr}/ws?groupId=7"))
        .unwrap()
        .subprotocol("echo")
        .connect()
        .await
        .unwrap();
    assert_eq!(accepted.subprotocol.as_deref(), Some("echo"));
    assert_eq!(common::next_data(&mut ws).await, Message::text("groupId=7"));
    ws.send(Message::text("through axum")).await.unwrap();
    assert_eq!(
        common::next_data(&mut ws).await,
        Message::text("through axum")
    );
    assert!(
        ws.close(herald::CloseCode::NORMAL, "")
            .await
            .unwrap()
            .is_clean()
    );
}

#[tokio::test]
async fn axum_route_refuses_a_plain_get_with_426() {
    let addr = app().await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
}

#[tokio::test]
async fn axum_route_negotiates_permessage_deflate() {
    let addr = app().await;
    let config = herald::Config::default().deflate(Some(herald::DeflateConfig::default()));
    let (mut ws, accepted) = herald::ClientBuilder::new(&format!("ws://{addr}/deflate"))
        .unwrap()
        .config(config)
        .connect()
        .await
        .unwrap();
    assert_eq!(accepted.extensions[0].name, "permessage-deflate");
    let text = Message::text("compress me ".repeat(500));
    ws.send(text.clone()).await.unwrap();
    assert_eq!(common::next_data(&mut ws).await, text);
}
