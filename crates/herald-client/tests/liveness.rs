//! A connection that goes silent: the client's `ping` finds it dead and reconnects; commands
//! without replies time out; the in-flight table has a bound.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Relay, Server, client, is_connected, is_disconnected, until};
use herald_client::{ClientConfig, Error, Event};
use herald_hub::HubConfig;
use std::time::Duration;

#[tokio::test]
async fn silent_connection_is_found_dead_by_ping_and_replaced() {
    let mut config = HubConfig::default();
    config.heartbeat.interval = Duration::from_secs(1);
    let server = Server::start(config).await;
    let relay = Relay::to(server.addr).await;
    let client_config = ClientConfig::new(relay.url())
        .liveness(Duration::from_millis(200), Duration::from_millis(300));
    let (_client, mut events) = client(client_config);
    let seen = until(&mut events, is_connected).await;
    assert!(matches!(seen.last(), Some(Event::Connected(c)) if c.ping_interval == 1));
    relay.stall(true);
    let seen = until(&mut events, is_disconnected).await;
    let Some(Event::Disconnected(d)) = seen.last() else {
        unreachable!()
    };
    assert!(matches!(d.error, Some(Error::Dead)), "{d:?}");
    assert!(d.will_reconnect && d.opened);
    relay.stall(false);
    until(&mut events, is_connected).await;
}

#[tokio::test]
async fn command_without_a_reply_times_out() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    let config = ClientConfig::new(relay.url()).command_timeout(Duration::from_millis(300));
    let (client, mut events) = client(config);
    until(&mut events, is_connected).await;
    relay.stall(true);
    let started = tokio::time::Instant::now();
    assert!(matches!(client.ping().await, Err(Error::Timeout)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn commands_past_max_pending_fail_at_once() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    let config = ClientConfig::new(relay.url())
        .max_pending(2)
        .command_timeout(Duration::from_secs(5));
    let (client, mut events) = client(config);
    until(&mut events, is_connected).await;
    relay.stall(true);
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.ping().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(client.ping().await, Err(Error::TooManyPending)));
    for task in waiting {
        task.abort();
    }
}

#[tokio::test]
async fn commands_waiting_for_a_connection_count_against_max_pending() {
    let server = Server::start(HubConfig::default()).await;
    let relay = Relay::to(server.addr).await;
    relay.refuse(true);
    let config = ClientConfig::new(relay.url())
        .max_pending(1)
        .command_timeout(Duration::from_secs(5));
    let (client, mut events) = client(config);
    until(&mut events, is_disconnected).await;
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.ping().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(client.ping().await, Err(Error::TooManyPending)));
    relay.refuse(false);
    first.await.unwrap().unwrap();
}
