//! DNS rebinding: a page on the attacker's domain, resolved to this server, sends the
//! attacker's name as both Host and Origin. The same-host rule (RFC 6455 §10.2) must not take
//! that for the server's own page.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// A handshake with this Host and Origin; returns the status.
async fn upgrade(server: &Server, host: &str, origin: &str) -> u16 {
    let request = format!(
        "GET /chat?groupId=1 HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n{UPGRADE}Connection: close\r\n\r\n"
    );
    server.http(&request).await.0
}

#[tokio::test]
async fn a_host_that_is_neither_public_nor_loopback_gets_403_even_with_a_matching_origin() {
    let mut server = Server::start(config()).await;
    let port = server.addr.port();
    assert_eq!(
        upgrade(&server, "evil.example", "http://evil.example").await,
        403
    );
    let evil = format!("evil.example:{port}");
    assert_eq!(
        upgrade(&server, &evil, &format!("http://{evil}")).await,
        403
    );
    let own = format!("127.0.0.1:{port}");
    assert_eq!(upgrade(&server, &own, &format!("http://{own}")).await, 101);
    let local = format!("localhost:{port}");
    assert_eq!(
        upgrade(&server, &local, &format!("http://{local}")).await,
        101
    );
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
async fn a_public_host_passes_the_same_host_rule_and_others_still_do_not() {
    let mut cfg = config();
    cfg.origins.public_hosts = vec!["chat.example.com".into()];
    let mut server = Server::start(cfg).await;
    assert_eq!(
        upgrade(&server, "chat.example.com", "https://chat.example.com").await,
        101
    );
    assert_eq!(
        upgrade(
            &server,
            "CHAT.example.com:8443",
            "https://chat.example.com:8443"
        )
        .await,
        101
    );
    assert_eq!(
        upgrade(&server, "evil.example", "http://evil.example").await,
        403
    );
    assert_eq!(
        upgrade(&server, "chat.example.com", "https://evil.example").await,
        403,
        "a trusted Host does not make another Origin same-host"
    );
    server.stop().await;
}

#[tokio::test]
async fn listed_origins_pass_whatever_the_host() {
    let mut cfg = config();
    cfg.origins.allowed = vec!["https://app.example.com".into()];
    let mut server = Server::start(cfg).await;
    assert_eq!(
        upgrade(&server, "herald.internal", "https://app.example.com").await,
        101
    );
    server.stop().await;
}
