//! Channel names from the attacker's side: rooms and channels that could collide, look like a
//! pattern, or display as another name are refused before anything is created.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// The status and body of a plain-mode upgrade request for `path`.
async fn plain_upgrade(server: &Server, path: &str) -> (u16, String) {
    let (status, text) = server.get(path, UPGRADE).await;
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_owned();
    (status, body)
}

#[tokio::test]
async fn plain_room_parameter_with_the_separator_is_refused_with_400_before_the_upgrade() {
    let mut server = Server::start(config()).await;
    for path in [
        "/chat?groupId=a:b",
        "/chat?groupId=a%3Ab",
        "/chat?groupId=a%3ab",
    ] {
        let (status, body) = plain_upgrade(&server, path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body, "room query parameter contains ':'", "{path}");
    }
    assert_eq!(server.hub.metrics().subscriptions.get(), 0);
    server.stop().await;
}

#[tokio::test]
async fn plain_room_that_is_no_channel_name_is_refused_with_400() {
    let mut server = Server::start(config()).await;
    let paths = [
        "/chat?groupId=a+b",
        "/chat?groupId=a%20b",
        "/chat?groupId=a*",
        "/chat?groupId=%3F",
        "/chat?groupId=1%E2%80%AE",
        "/chat?groupId=1%E2%80%8B",
        "/chat?groupId=%00",
    ];
    for path in paths {
        let (status, body) = plain_upgrade(&server, path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body, "invalid room name", "{path}");
    }
    let (status, body) = plain_upgrade(&server, "/chat?groupId=").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "missing room query parameter")
    );
    server.stop().await;
}

#[tokio::test]
async fn plain_room_in_greek_is_accepted() {
    let mut server = Server::start(config()).await;
    let mut watcher = Client::connect(&server).await;
    watcher.subscribe("chat:αθήνα").await;
    let mut alice = plain(&server, "/chat?groupId=%CE%B1%CE%B8%CE%AE%CE%BD%CE%B1").await;
    alice.send(herald::Message::text("γεια")).await.unwrap();
    let push = watcher.next_pub().await;
    assert_eq!(push["channel"], "chat:αθήνα");
    assert_eq!(push["data"], "γεια");
    server.stop().await;
}

#[tokio::test]
async fn subscribe_to_a_name_with_space_wildcard_bidi_or_zero_width_fails_with_107() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    for name in [
        "a b",
        "a*",
        "a?",
        "chat:\u{202E}1",
        "chat:\u{200B}1",
        "chat:1\u{FEFF}",
    ] {
        let reply = a.call("subscribe", json!({ "channel": name })).await;
        assert_eq!(reply["error"]["code"], 107, "{name:?}: {reply}");
    }
    assert_eq!(server.hub.metrics().subscriptions.get(), 0);
    // The connection is still usable, and a valid name still works.
    a.subscribe("chat:1").await;
    server.stop().await;
}

#[tokio::test]
async fn publish_history_and_presence_refuse_the_same_names_with_107() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    let name = "chat:\u{202E}1";
    let publish = a
        .call("publish", json!({ "channel": name, "data": 1 }))
        .await;
    assert_eq!(publish["error"]["code"], 107);
    for method in ["history", "presence"] {
        let reply = a.call(method, json!({ "channel": name })).await;
        assert_eq!(reply["error"]["code"], 107, "{method}: {reply}");
    }
    server.stop().await;
}

#[tokio::test]
async fn api_publish_to_an_invalid_name_is_refused_with_400() {
    let mut cfg = config();
    cfg.api.key = Some("k3y".into());
    let mut server = Server::start(cfg).await;
    let body = json!({ "channel": "a\u{200B}b", "data": 1 }).to_string();
    let (status, text) = server
        .post("/api/publish", "X-API-Key: k3y\r\n", &body)
        .await;
    assert_eq!(status, 400, "{text}");
    server.stop().await;
}
