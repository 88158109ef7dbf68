//! Refusals before the upgrade: 401, 403, 405, 426, 429, 503, each counted in the metrics.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald_hub::auth::{Claims, issue_hs256};
use serde_json::json;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(secret: &str, channels: &[&str], exp: u64) -> String {
    let claims = Claims {
        sub: "ann".into(),
        exp,
        channels: channels.iter().map(|c| c.to_string()).collect(),
        subscribe: vec![],
        publish: vec![],
        subs: vec![],
    };
    issue_hs256(secret, &claims).unwrap()
}

#[tokio::test]
async fn foreign_origin_gets_403_and_allowed_ones_upgrade() {
    let mut cfg = config();
    cfg.origins.allowed = vec!["https://*.example.com".into()];
    cfg.origins.allow_missing = false;
    let mut server = Server::start(cfg).await;
    let (status, text) = server
        .get(
            "/chat?groupId=1",
            &format!("{UPGRADE}Origin: https://evil.test\r\n"),
        )
        .await;
    assert_eq!(status, 403, "{text}");
    let (status, _) = server.get("/chat?groupId=1", UPGRADE).await;
    assert_eq!(
        status, 403,
        "no Origin is refused when allow_missing is off"
    );
    let (status, _) = server
        .get(
            "/chat?groupId=1",
            &format!("{UPGRADE}Origin: https://chat.example.com\r\n"),
        )
        .await;
    assert_eq!(status, 101);
    let (status, _) = server
        .get(
            "/chat?groupId=1",
            &format!("{UPGRADE}Origin: http://{}\r\n", server.addr),
        )
        .await;
    assert_eq!(status, 101, "the server's own pages are allowed");
    assert!(
        server
            .hub
            .metrics()
            .render()
            .contains("herald_handshake_rejections_total{status=\"403\"} 2")
    );
    server.stop().await;
}

#[tokio::test]
async fn missing_invalid_or_expired_tokens_get_401_before_the_upgrade() {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some("s3cret".into());
    let mut server = Server::start(cfg).await;
    let (status, text) = server.get("/ws", UPGRADE).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("WWW-Authenticate") || text.contains("www-authenticate"));
    let forged = token("other", &["*"], now() + 60);
    let (status, _) = server
        .get(
            "/chat?groupId=1",
            &format!("{UPGRADE}Authorization: Bearer {forged}\r\n"),
        )
        .await;
    assert_eq!(status, 401);
    let expired = token("s3cret", &["*"], now() - 5);
    let (status, text) = server
        .get(&format!("/chat?groupId=1&token={expired}"), UPGRADE)
        .await;
    assert_eq!(status, 401);
    assert!(text.contains("token expired"));
    let good = token("s3cret", &["chat:*"], now() + 60);
    let (status, _) = server
        .get(
            "/chat?groupId=1",
            &format!("{UPGRADE}Cookie: herald_token={good}\r\n"),
        )
        .await;
    assert_eq!(status, 101);
    server.stop().await;
}

#[tokio::test]
async fn channel_permissions_come_from_the_token_claims() {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some("s3cret".into());
    let mut server = Server::start(cfg).await;
    let good = token("s3cret", &["chat:*"], now() + 60);
    let mut a = Client::connect_url(&format!("{}?token={good}", server.url("/ws"))).await;
    a.subscribe("chat:1").await;
    assert_eq!(
        a.call("subscribe", json!({"channel": "admin"})).await["error"]["code"],
        103
    );
    assert_eq!(
        a.call("publish", json!({"channel": "admin", "data": 1}))
            .await["error"]["code"],
        103
    );
    let published = a.publish("chat:1", json!("hi")).await;
    assert_eq!(published["offset"], 1);
    let push = a.next_pub().await;
    assert_eq!(
        push["user"], "ann",
        "publications carry the publisher's verified user id"
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_gets_405_and_plain_http_gets_426() {
    let mut server = Server::start(config()).await;
    let (status, text) = server.post("/ws", "", "{}").await;
    assert_eq!(status, 405, "{text}");
    let (status, text) = server.get("/chat?groupId=1", "").await;
    assert_eq!(status, 426, "{text}");
    assert!(text.to_ascii_lowercase().contains("upgrade: websocket"));
    let (status, _) = server.get("/nowhere", UPGRADE).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_429_and_over_the_global_limit_503() {
    let mut cfg = config();
    cfg.limits.max_connections_per_ip = 1;
    let mut server = Server::start(cfg).await;
    let first = plain(&server, "/chat?groupId=1").await;
    let (status, _) = server.get("/chat?groupId=1", UPGRADE).await;
    assert_eq!(status, 429);
    drop(first);
    server.stop().await;

    let mut cfg = config();
    cfg.limits.max_connections = 1;
    let mut server = Server::start(cfg).await;
    let _held = plain(&server, "/chat?groupId=1").await;
    let (status, text) = server.get("/healthz", "").await;
    assert_eq!(status, 503, "{text}");
    server.stop().await;
}
