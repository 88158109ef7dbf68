//! Reconnects against a real hub: recovery of what was published while the client was away,
//! `recovered: false` after history was lost, backoff bounds, and the close codes that end the
//! client (4501 with a static token, a clean `close`, reconnects off).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Relay, Server, client, is_connected, is_disconnected, is_subscribed, offsets, until};
use herald_client::{
    Backoff, Client, ClientConfig, Error, Event, SubscribeOptions, Token, TokenError, TokenProvider,
};
use herald_hub::HubConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

fn disconnected(events: &[Event]) -> &herald_client::Disconnected {
    match events.last() {
        Some(Event::Disconnected(d)) => d,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

#[tokio::test]
async fn cut_connection_recovers_publications_made_while_down_without_duplicates() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    let (reader, mut events) = client(ClientConfig::new(relay.url()));
    let (writer, _writer_events) = client(ClientConfig::new(server.url()));
    reader
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    for n in 1..=2 {
        writer.publish("news", &n).await.unwrap();
    }
    let mut seen = until(
        &mut events,
        |e| matches!(e, Event::Publication(p) if p.offset == 2),
    )
    .await;

    relay.refuse(true);
    relay.cut();
    let down = until(&mut events, is_disconnected).await;
    assert!(disconnected(&down).will_reconnect);
    assert_eq!(disconnected(&down).code, 1006);
    for n in 3..=5 {
        writer.publish("news", &n).await.unwrap();
    }
    relay.refuse(false);
    let back = until(&mut events, is_subscribed("news")).await;
    let Some(Event::Subscribed(s)) = back.last() else {
        unreachable!()
    };
    assert_eq!(s.recovered, Some(true));
    assert_eq!(s.previous.as_ref().map(|p| p.offset), Some(2));
    writer.publish("news", &6).await.unwrap();
    let live = until(
        &mut events,
        |e| matches!(e, Event::Publication(p) if p.offset == 6),
    )
    .await;
    seen.extend(back);
    seen.extend(live);
    assert_eq!(offsets(&seen), [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn restarted_hub_without_the_history_reports_recovered_false() {
    let mut first = Server::start(HubConfig::default()).await;
    let (client, mut events) = client(ClientConfig::new(first.url()));
    client
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    let before = client.publish("news", &1).await.unwrap();
    until(&mut events, |e| matches!(e, Event::Publication(_))).await;

    first.stop().await;
    let down = until(&mut events, is_disconnected).await;
    assert_eq!(disconnected(&down).code, 1001);
    assert!(disconnected(&down).will_reconnect);
    // A new hub on the same port with a new memory broker: the old epoch is gone.
    let _second = Server::on(first.addr, HubConfig::default()).await;
    let back = until(&mut events, is_subscribed("news")).await;
    let Some(Event::Subscribed(s)) = back.last() else {
        unreachable!()
    };
    assert_eq!(s.recovered, Some(false));
    assert_eq!(s.previous.as_ref().map(|p| &p.epoch), Some(&before.epoch));
    assert_ne!(s.epoch, before.epoch);
    let after = client.publish("news", &2).await.unwrap();
    let seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    assert_eq!(offsets(&seen), [after.offset]);
}

#[tokio::test]
async fn reconnect_attempts_wait_no_longer_than_the_backoff_window() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    relay.refuse(true);
    let backoff = Backoff {
        min: Duration::from_millis(40),
        max: Duration::from_millis(160),
    };
    let config = ClientConfig::new(relay.url()).backoff(backoff);
    let (_client, mut events) = Client::connect(config).unwrap();
    let mut at = Vec::new();
    for _ in 0..8 {
        let seen = until(&mut events, is_disconnected).await;
        let d = disconnected(&seen);
        assert!(d.will_reconnect && !d.opened, "{d:?}");
        at.push(Instant::now());
    }
    // Attempt n waits a random delay under min·2ⁿ, at most max; the rest is connecting.
    let slack = Duration::from_millis(250);
    for (n, pair) in at.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let cap = backoff.cap(u32::try_from(n).unwrap());
        assert!(gap <= cap + slack, "attempt {n}: {gap:?} over {cap:?}");
    }
    relay.refuse(false);
    until(&mut events, is_connected).await;
}

#[tokio::test]
async fn expired_static_token_closes_with_4501_and_the_client_stays_down() {
    let server = Server::start(common::with_tokens()).await;
    let token = common::token("ann", Duration::from_secs(2));
    let (client, mut events) = client(ClientConfig::new(server.url()).token(Token::Static(token)));
    until(&mut events, is_connected).await;
    let seen = until(&mut events, is_disconnected).await;
    let d = disconnected(&seen);
    assert_eq!(d.code, 4501);
    assert!(!d.will_reconnect);
    let end = tokio::time::timeout(common::WAIT, events.recv())
        .await
        .unwrap();
    assert!(end.is_none(), "no reconnect: {end:?}");
    assert!(matches!(
        client.publish("news", &1).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn token_provider_is_asked_at_each_connect_and_renews_after_4501() {
    // No refresh push: the token runs out and the server closes with 4501.
    let mut config = common::with_tokens();
    config.auth.refresh_notice = Duration::ZERO;
    let server = Server::start(config).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = TokenProvider::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, TokenError>(common::token("ann", Duration::from_secs(2))) }
    });
    let config = ClientConfig::new(server.url()).token(Token::Provider(provider));
    let (_client, mut events) = client(config);
    until(&mut events, is_connected).await;
    let seen = until(&mut events, is_disconnected).await;
    let d = disconnected(&seen);
    assert_eq!(d.code, 4501);
    assert!(d.will_reconnect, "a provider can give a fresh token");
    until(&mut events, is_connected).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn failing_token_provider_is_retried_with_backoff() {
    let server = Server::start(common::with_tokens()).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = TokenProvider::new(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(TokenError::new("backend down"))
            } else {
                Ok(common::token("ann", Duration::from_secs(600)))
            }
        }
    });
    let (_client, mut events) =
        client(ClientConfig::new(server.url()).token(Token::Provider(provider)));
    let seen = until(&mut events, is_disconnected).await;
    let d = disconnected(&seen);
    assert!(
        matches!(d.error, Some(Error::Token(_))) && d.will_reconnect,
        "{d:?}"
    );
    until(&mut events, is_connected).await;
}

#[tokio::test]
async fn close_ends_cleanly_and_fails_later_commands() {
    let server = Server::start(HubConfig::default()).await;
    let (client, mut events) = client(ClientConfig::new(server.url()));
    client
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    let closed = client.close().await.unwrap();
    assert!(closed.is_clean());
    assert_eq!(closed.initiator, herald::Initiator::Local);
    let seen = until(&mut events, is_disconnected).await;
    let d = disconnected(&seen);
    assert_eq!((d.code, d.will_reconnect), (1000, false));
    let end = tokio::time::timeout(common::WAIT, events.recv())
        .await
        .unwrap();
    assert!(end.is_none());
    assert!(matches!(
        client.publish("news", &1).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn with_reconnect_off_a_shutdown_ends_the_client() {
    let mut server = Server::start(HubConfig::default()).await;
    let (_client, mut events) = client(ClientConfig::new(server.url()).reconnect(false));
    until(&mut events, is_connected).await;
    server.stop().await;
    let seen = until(&mut events, is_disconnected).await;
    let d = disconnected(&seen);
    assert_eq!((d.code, d.will_reconnect), (1001, false));
    assert!(d.closed.as_ref().is_some_and(|c| c.is_clean()));
    let end = tokio::time::timeout(common::WAIT, events.recv())
        .await
        .unwrap();
    assert!(end.is_none());
}

#[tokio::test]
async fn commands_sent_while_down_go_out_once_reconnected() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    relay.refuse(true);
    let (client, mut events) = client(ClientConfig::new(relay.url()));
    until(&mut events, is_disconnected).await;
    let subscriber = client.clone();
    let subscribe = tokio::spawn(async move {
        subscriber
            .subscribe("news", SubscribeOptions::default())
            .await
    });
    let publish = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.publish("news", &1).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay.refuse(false);
    assert_eq!(subscribe.await.unwrap().unwrap().offset, 0);
    let landed = publish.await.unwrap().unwrap();
    assert_eq!(landed.offset, 1);
    let seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    assert_eq!(offsets(&seen), [1]);
}

#[tokio::test]
async fn dropping_every_handle_while_down_ends_the_client() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    relay.refuse(true);
    let (client, mut events) = client(ClientConfig::new(relay.url()));
    until(&mut events, is_disconnected).await;
    drop(client);
    let rest = async { while events.recv().await.is_some() {} };
    tokio::time::timeout(common::WAIT, rest)
        .await
        .expect("the task ends once no handle is left");
}

#[tokio::test]
async fn dropping_every_handle_while_connected_closes_the_connection() {
    let server = Server::start(HubConfig::default()).await;
    let (client, mut events) = client(ClientConfig::new(server.url()));
    client
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    common::subscriptions_reach(&server.hub, 1).await;
    drop(client);
    let seen = until(&mut events, is_disconnected).await;
    assert_eq!(disconnected(&seen).code, 1000);
    common::subscriptions_reach(&server.hub, 0).await;
}

#[tokio::test]
async fn close_returns_while_the_event_queue_is_full_and_unread() {
    let server = Server::start(HubConfig::default()).await;
    let (client, events) = client(ClientConfig::new(server.url()).event_capacity(1));
    client
        .subscribe("news", SubscribeOptions::default())
        .await
        .unwrap();
    let (writer, _writer_events) = common::client(ClientConfig::new(server.url()));
    for n in 0..10 {
        writer.publish("news", &n).await.unwrap();
    }
    // Let the publications reach the client, whose task now waits on the full queue.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closed = tokio::time::timeout(common::WAIT, client.close())
        .await
        .expect("close does not wait for the application to read");
    assert!(closed.is_some_and(|c| c.is_clean()));
    drop(events);
}
