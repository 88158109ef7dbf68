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

mod one_response {
    //! RFC 6455 §4.2.2 item 5 and RFC 7692 §5.1: the 101 comes from the engine, so a raw
    //! transport and an axum route answer the same request with the same headers.
    use super::*;
    use herald::handshake::Accept;
    use tokio::net::{TcpListener, TcpStream};

    fn server_config(deflate: bool) -> herald::Config {
        herald::Config::default().deflate(deflate.then(herald::DeflateConfig::default))
    }

    /// A raw server that accepts `echo` and holds the connection.
    async fn raw(deflate: bool) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let accept = Accept {
                        subprotocol: Some("echo".into()),
                        ..Accept::default()
                    };
                    let config = server_config(deflate);
                    let ws = herald::accept_with(tcp, &config, |_| Ok(accept));
                    if let Ok(mut ws) = ws.await {
                        while ws.recv().await.is_some() {}
                    }
                });
            }
        });
        addr
    }

    /// The same server as an axum route.
    async fn routed(deflate: bool) -> std::net::SocketAddr {
        let route = move |upgrade: WebSocketUpgrade| async move {
            upgrade
                .protocols(["echo"])
                .config(server_config(deflate))
                .on_upgrade(|mut ws| async move { while ws.recv().await.is_some() {} })
        };
        let app = Router::new().route("/ws", get(route));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// The status line and headers (names lowercased) the server answers `offer` with.
    async fn response_head(addr: std::net::SocketAddr, offer: &str) -> Vec<(String, String)> {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat, echo\r\n{offer}\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "closed mid-head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let mut lines = head.trim_end().split("\r\n");
        let mut out = vec![("status".to_owned(), lines.next().unwrap().to_owned())];
        for line in lines {
            let (name, value) = line.split_once(": ").unwrap();
            out.push((name.to_ascii_lowercase(), value.to_owned()));
        }
        out
    }

    #[tokio::test]
    async fn raw_and_axum_answer_with_the_same_101_with_and_without_a_deflate_offer() {
        for deflate in [true, false] {
            let (raw, routed) = (raw(deflate).await, routed(deflate).await);
            for offer in [
                "",
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
                "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
                "Sec-WebSocket-Extensions: x-unknown\r\n",
            ] {
                let expected = response_head(raw, offer).await;
                let mut through_hyper = response_head(routed, offer).await;
                // hyper stamps every response with the time; nothing else is its own.
                through_hyper.retain(|(name, _)| name != "date");
                assert_eq!(
                    through_hyper, expected,
                    "deflate {deflate}, offer {offer:?}"
                );
                let extension = expected
                    .iter()
                    .find(|(n, _)| n == "sec-websocket-extensions");
                assert_eq!(
                    extension.is_some(),
                    deflate && offer.contains("permessage-deflate"),
                    "{expected:?}"
                );
            }
        }
    }
}
