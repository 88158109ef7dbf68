//! Commands against a real hub: a token at connect, publish, history, presence, ping, and the
//! hub's refusals as errors with their codes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, client, data, is_connected, is_disconnected, is_subscribed, token, until};
use herald_client::{
    ClientConfig, Error, ErrorCode, Event, HistoryOptions, SubscribeOptions, Token,
};
use herald_hub::HubConfig;
use serde_json::json;
use std::time::Duration;

fn config(server: &Server, user: &str) -> ClientConfig {
    ClientConfig::new(server.url()).token(Token::Static(token(user, Duration::from_secs(600))))
}

#[tokio::test]
async fn token_at_connect_names_the_user_in_the_connected_event() {
    let server = Server::start(common::with_tokens()).await;
    let (_client, mut events) = client(config(&server, "ann"));
    let seen = until(&mut events, is_connected).await;
    let Some(Event::Connected(connected)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(connected.user, "ann");
    assert!(!connected.client.is_empty());
}

#[tokio::test]
async fn connected_event_carries_the_token_expiry() {
    let server = Server::start(common::with_tokens()).await;
    let ttl = Duration::from_secs(600);
    let expected = common::expiry(ttl);
    let token = Token::Static(token("ann", ttl));
    let (_client, mut events) = client(ClientConfig::new(server.url()).token(token));
    let seen = until(&mut events, is_connected).await;
    let Some(Event::Connected(connected)) = seen.last() else {
        unreachable!()
    };
    let expires = connected.expires.unwrap();
    assert!(expires.abs_diff(expected) <= 1, "{expires} vs {expected}");
}

#[tokio::test]
async fn publication_reaches_a_subscriber_once_with_its_offset_and_user() {
    let server = Server::start(common::with_tokens()).await;
    let (reader, mut events) = client(config(&server, "ann"));
    let (writer, _writer_events) = client(config(&server, "bob"));
    let first = reader
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    assert_eq!((first.offset, first.recovered), (0, None));
    let landed = writer.publish("news", &json!({"n": 1})).await.unwrap();
    assert_eq!(landed.offset, 1);
    let seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    let Some(Event::Publication(p)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        (p.channel.as_str(), p.offset, p.data.get()),
        ("news", 1, r#"{"n":1}"#)
    );
    assert_eq!(p.user.as_deref(), Some("bob"));
    assert_eq!(p.epoch, landed.epoch);
    assert_eq!(data(&seen), [r#"{"n":1}"#]);
}

#[tokio::test]
async fn history_reads_all_since_a_position_and_up_to_a_limit() {
    let server = Server::start(HubConfig::default()).await;
    let (client, _events) = client(ClientConfig::new(server.url()));
    let mut epoch = String::new();
    for n in 1..=5 {
        epoch = client.publish("log", &n).await.unwrap().epoch;
    }
    let all = client
        .history("log", HistoryOptions::default())
        .await
        .unwrap();
    let offsets: Vec<u64> = all.publications.iter().map(|p| p.offset).collect();
    assert_eq!((all.offset, offsets), (5, vec![1, 2, 3, 4, 5]));
    let since = herald_client::StreamPosition { offset: 2, epoch };
    let rest = client
        .history("log", HistoryOptions::default().since(since))
        .await
        .unwrap();
    let data: Vec<&str> = rest.publications.iter().map(|p| p.data.get()).collect();
    assert_eq!(data, ["3", "4", "5"]);
    let limited = client
        .history("log", HistoryOptions::default().limit(2))
        .await
        .unwrap();
    assert_eq!(limited.publications.len(), 2);
}

#[tokio::test]
async fn history_since_another_epoch_is_refused_with_110() {
    let server = Server::start(HubConfig::default()).await;
    let (client, _events) = client(ClientConfig::new(server.url()));
    client.publish("log", &1).await.unwrap();
    let stale = herald_client::StreamPosition {
        offset: 0,
        epoch: "not-this-one".into(),
    };
    let refused = client
        .history("log", HistoryOptions::default().since(stale))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::POSITION_UNAVAILABLE));
}

#[tokio::test]
async fn presence_lists_the_subscribed_connection() {
    let server = Server::start(common::with_tokens()).await;
    let (client, mut events) = client(config(&server, "ann"));
    let seen = until(&mut events, is_connected).await;
    let Some(Event::Connected(connected)) = seen.last() else {
        unreachable!()
    };
    client
        .subscribe("room", SubscribeOptions::default())
        .await
        .unwrap();
    let members = client.presence("room").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].client.as_str(), members[0].user.as_str()),
        (connected.client.as_str(), "ann")
    );
    client.ping().await.unwrap();
}

#[tokio::test]
async fn join_and_leave_reach_a_subscriber_that_asked_for_them() {
    let server = Server::start(HubConfig::default()).await;
    let (watcher, mut events) = client(ClientConfig::new(server.url()));
    watcher
        .subscribe("room", SubscribeOptions::default().join_leave(true))
        .await
        .unwrap();
    let (visitor, _visitor_events) = client(ClientConfig::new(server.url()));
    visitor
        .subscribe("room", SubscribeOptions::default())
        .await
        .unwrap();
    until(
        &mut events,
        |e| matches!(e, Event::Join(m) if m.channel == "room"),
    )
    .await;
    visitor.unsubscribe("room").await.unwrap();
    until(
        &mut events,
        |e| matches!(e, Event::Leave(m) if m.channel == "room"),
    )
    .await;
}

#[tokio::test]
async fn refused_command_carries_the_hub_code() {
    let server = Server::start(HubConfig::default()).await;
    let (client, _events) = client(ClientConfig::new(server.url()));
    let refused = client.publish("no spaces", &1).await.unwrap_err();
    assert!(matches!(&refused, Error::Server(body) if body.code == ErrorCode::BAD_REQUEST));
    assert!(!refused.is_temporary());
}

#[tokio::test]
async fn refused_subscribe_is_forgotten_and_a_second_one_is_refused_locally() {
    let server = Server::start(HubConfig::default()).await;
    let (client, mut events) = client(ClientConfig::new(server.url()));
    let refused = client
        .subscribe("no spaces", SubscribeOptions::default())
        .await;
    assert_eq!(refused.unwrap_err().code(), Some(ErrorCode::BAD_REQUEST));
    let again = client
        .subscribe("no spaces", SubscribeOptions::default())
        .await;
    assert_eq!(again.unwrap_err().code(), Some(ErrorCode::BAD_REQUEST));
    client
        .subscribe("ok", SubscribeOptions::default())
        .await
        .unwrap();
    let twice = client.subscribe("ok", SubscribeOptions::default()).await;
    assert!(matches!(twice, Err(Error::AlreadySubscribed(c)) if c == "ok"));
    until(&mut events, is_subscribed("ok")).await;
    assert!(matches!(
        client.unsubscribe("never").await,
        Err(Error::NotSubscribed(_))
    ));
}

#[tokio::test]
async fn unsubscribed_channel_delivers_nothing_more() {
    let server = Server::start(HubConfig::default()).await;
    let (client, mut events) = client(ClientConfig::new(server.url()));
    client
        .subscribe("a", SubscribeOptions::default())
        .await
        .unwrap();
    client
        .subscribe("b", SubscribeOptions::default())
        .await
        .unwrap();
    client.unsubscribe("a").await.unwrap();
    client.publish("a", &"dropped").await.unwrap();
    client.publish("b", &"kept").await.unwrap();
    let seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    assert_eq!(data(&seen), [r#""kept""#]);
}

#[tokio::test]
async fn refused_handshake_with_a_static_token_stays_down() {
    let server = Server::start(common::with_tokens()).await;
    let config = ClientConfig::new(server.url()).token(Token::Static("not-a-token".into()));
    let (client, mut events) = client(config);
    let seen = until(&mut events, is_disconnected).await;
    let Some(Event::Disconnected(d)) = seen.last() else {
        unreachable!()
    };
    assert!(!d.opened && !d.will_reconnect);
    let refused = d.error.as_ref().unwrap().to_string();
    assert!(refused.contains("401"), "{refused}");
    let end = tokio::time::timeout(common::WAIT, events.recv())
        .await
        .unwrap();
    assert!(end.is_none(), "the client ended");
    assert!(matches!(client.ping().await, Err(Error::Closed)));
}
