//! Plain mode: any WebSocket client, the room from the path and query.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald::Message;

#[tokio::test]
async fn messages_reach_everyone_in_the_room_and_nobody_outside_it() {
    let mut server = Server::start(config()).await;
    let mut alice = plain(&server, "/chat?groupId=1234").await;
    let mut bob = plain(&server, "/chat?groupId=1234").await;
    let mut carol = plain(&server, "/chat?groupId=999").await;
    // Subscriptions are in place once the server counts them.
    wait_for(|| server.hub.metrics().subscriptions.get() == 3).await;

    alice.send(Message::text("hello 1234")).await.unwrap();
    assert_eq!(next_text(&mut bob).await, "hello 1234");
    carol.send(Message::text("hello 999")).await.unwrap();
    bob.send(Message::text("second")).await.unwrap();
    // Alice gets Bob's message, not her own (echo is off) and not Carol's (other room).
    assert_eq!(next_text(&mut alice).await, "second");
    alice.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let got = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut bob))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::binary(vec![1u8, 2, 3]));
    server.stop().await;
}

#[tokio::test]
async fn echo_sends_a_clients_own_messages_back_when_configured() {
    let mut cfg = config();
    cfg.plain.echo = true;
    let mut server = Server::start(cfg).await;
    let mut alice = plain(&server, "/chat?groupId=1").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 1).await;
    alice.send(Message::text("me")).await.unwrap();
    assert_eq!(next_text(&mut alice).await, "me");
    server.stop().await;
}

#[tokio::test]
async fn plain_publish_reaches_protocol_subscribers_as_a_json_string() {
    let mut server = Server::start(config()).await;
    let mut watcher = Client::connect(&server).await;
    watcher.subscribe("chat:7").await;
    let mut alice = plain(&server, "/chat?groupId=7").await;
    alice.send(Message::text("hi \"there\"")).await.unwrap();
    let push = watcher.next_pub().await;
    assert_eq!(push["channel"], "chat:7");
    assert_eq!(push["data"], "hi \"there\"");
    assert_eq!(push["offset"], 1);
    server.stop().await;
}

#[tokio::test]
async fn missing_room_parameter_is_refused_with_400() {
    let mut server = Server::start(config()).await;
    let err = herald::connect(&server.url("/chat")).await.unwrap_err();
    assert!(matches!(err, herald::Error::Handshake(_)), "{err:?}");
    let (status, _) = server
        .get(
            "/chat",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        )
        .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn publishing_without_permission_closes_with_1008() {
    let mut cfg = config();
    cfg.auth.anonymous_publish = Some(vec!["news:*".into()]);
    let mut server = Server::start(cfg).await;
    let mut alice = plain(&server, "/chat?groupId=1").await;
    alice.send(Message::text("not allowed")).await.unwrap();
    assert_eq!(closed_with(&mut alice).await, 1008);
    server.stop().await;
}

#[tokio::test]
async fn joining_a_room_without_permission_closes_with_1008() {
    let mut cfg = config();
    cfg.auth.anonymous_subscribe = Some(vec!["news:*".into()]);
    let mut server = Server::start(cfg).await;
    let mut alice = plain(&server, "/chat?groupId=1").await;
    assert_eq!(closed_with(&mut alice).await, 1008);
    server.stop().await;
}

#[tokio::test]
async fn publishing_over_the_rate_closes_with_1008() {
    let mut cfg = config();
    cfg.limits.publish_rate = 1;
    cfg.limits.publish_burst = 2;
    let mut server = Server::start(cfg).await;
    let mut alice = plain(&server, "/chat?groupId=1").await;
    for i in 0..5 {
        if alice.send(Message::text(format!("m{i}"))).await.is_err() {
            break;
        }
    }
    assert_eq!(closed_with(&mut alice).await, 1008);
    server.stop().await;
}
