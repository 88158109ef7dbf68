//! RS256/ES256 tokens, heartbeats that reap silent connections, the message size limit and
//! the handshake timeout.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald::Message;
use herald_hub::auth::Claims;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn key(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

fn signed(algorithm: Algorithm, private: &str) -> String {
    let pem = std::fs::read(key(private)).unwrap();
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let claims = Claims {
        sub: "kim".into(),
        exp,
        channels: vec!["chat:*".into()],
        subscribe: vec![],
        publish: vec![],
        subs: vec![],
    };
    jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap()
}

#[tokio::test]
async fn rs256_and_es256_tokens_are_verified_with_their_public_keys() {
    let mut cfg = config();
    cfg.auth.rs256_public_key = Some(key("rs256-public.pem"));
    cfg.auth.es256_public_key = Some(key("es256-public.pem"));
    let mut server = Server::start(cfg).await;
    for (algorithm, private) in [
        (Algorithm::RS256, "rs256-private.pem"),
        (Algorithm::ES256, "es256-private.pem"),
    ] {
        let token = signed(algorithm, private);
        let url = format!("{}?token={token}", server.url("/ws"));
        let mut client = Client::connect_url(&url).await;
        client.subscribe("chat:1").await;
        let reply = client
            .call("subscribe", serde_json::json!({"channel": "admin"}))
            .await;
        assert_eq!(reply["error"]["code"], 103);
    }
    // An HS256 token is not accepted when only public keys are configured.
    let forged = herald_hub::auth::issue_hs256(
        "guess",
        &Claims {
            sub: "x".into(),
            exp: u64::MAX / 2,
            channels: vec!["*".into()],
            subscribe: vec![],
            publish: vec![],
            subs: vec![],
        },
    )
    .unwrap();
    let url = format!("{}?token={forged}", server.url("/ws"));
    assert!(herald::connect(&url).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_connection_that_does_not_answer_pings_is_closed() {
    let mut cfg = config();
    cfg.heartbeat.interval = Duration::from_millis(100);
    cfg.heartbeat.timeout = Duration::from_millis(200);
    let mut server = Server::start(cfg).await;
    // Never polled after the handshake, so it never answers the server's Ping: a half-open
    // connection as far as the server can tell.
    let _silent = plain(&server, "/chat?groupId=1").await;
    wait_for(|| {
        server
            .hub
            .metrics()
            .render()
            .contains("herald_disconnects_total{code=\"1011\"} 1")
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_with_1009() {
    let mut cfg = config();
    cfg.limits.max_message_size = 1024;
    let mut server = Server::start(cfg).await;
    let mut client = plain(&server, "/chat?groupId=1").await;
    client.send(Message::text("x".repeat(2048))).await.unwrap();
    assert_eq!(closed_with(&mut client).await, 1009);
    server.stop().await;
}

#[tokio::test]
async fn a_request_head_that_never_completes_is_dropped_after_the_handshake_timeout() {
    let mut cfg = config();
    cfg.limits.handshake_timeout = Duration::from_millis(300);
    let mut server = Server::start(cfg).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /chat?groupId=1 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the server closed the connection");
    server.stop().await;
}
