//! The client side of hub features documented in docs/protocol.md and the wire types:
//! `history` `reverse`, `subscribe` `latest`, token `refresh`, and server-side subscriptions
//! (`subscribed` pushes from the token's `subs` claim and the personal channel `#user`,
//! caught up with `history` after a reconnect), and `rpc` through the hub to a real backend.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Relay, Server, client, is_connected, is_disconnected, is_subscribed, offsets, until};
use herald_client::{
    ClientConfig, Event, HistoryOptions, SubscribeOptions, Token, TokenError, TokenProvider,
};
use herald_hub::HubConfig;
use herald_hub::config::NamespaceConfig;
use serde_json::json;
use std::time::Duration;

/// A token for `user` on every channel for `ttl`, with a `subs` claim.
fn token_with_subs(user: &str, ttl: Duration, subs: &[&str]) -> String {
    let exp = common::expiry(ttl);
    common::sign(&json!({"sub": user, "exp": exp, "channels": ["*"], "subs": subs}))
}

#[tokio::test]
async fn history_reverse_returns_the_newest_first() {
    let server = Server::start(HubConfig::default()).await;
    let (client, _events) = client(ClientConfig::new(server.url()));
    for n in 1..=5 {
        client.publish("log", &n).await.unwrap();
    }
    let newest = client
        .history("log", HistoryOptions::default().limit(2).reverse(true))
        .await
        .unwrap();
    let got: Vec<u64> = newest.publications.iter().map(|p| p.offset).collect();
    assert_eq!(got, [5, 4]);
}

#[tokio::test]
async fn subscribe_with_latest_delivers_the_newest_publications_first() {
    // `latest` is a namespace's offer (the default namespace has none): the client may ask
    // for up to it.
    let mut config = HubConfig::default();
    let log = NamespaceConfig {
        latest: Some(3),
        ..NamespaceConfig::default()
    };
    config.namespaces.insert("log".into(), log);
    config
        .namespaces
        .insert("chat".into(), NamespaceConfig::default());
    let server = Server::start(config).await;
    let (writer, _writer_events) = client(ClientConfig::new(server.url()));
    for n in 1..=5 {
        writer.publish("log:1", &n).await.unwrap();
    }
    let (reader, mut events) = client(ClientConfig::new(server.url()));
    let first = reader
        .subscribe("log:1", SubscribeOptions::default().latest(2))
        .await
        .unwrap();
    assert_eq!(first.offset, 5);
    let seen = until(&mut events, is_subscribed("log:1")).await;
    assert_eq!(offsets(&seen), [4, 5]);
    writer.publish("log:1", &6).await.unwrap();
    let live = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    assert_eq!(offsets(&live), [6]);
}

#[tokio::test]
async fn refresh_push_is_answered_with_a_fresh_token_and_the_connection_stays() {
    let server = Server::start(common::with_tokens()).await;
    let provider = TokenProvider::new(|| async {
        Ok::<_, TokenError>(common::token("ann", Duration::from_secs(3)))
    });
    let config = ClientConfig::new(server.url()).token(Token::Provider(provider));
    let (client, mut events) = client(config);
    until(&mut events, is_connected).await;
    let seen = until(&mut events, |e| matches!(e, Event::Refreshed { .. })).await;
    assert!(!seen.iter().any(is_disconnected), "{seen:?}");
    assert!(matches!(
        seen.last(),
        Some(Event::Refreshed { expires: Some(_) })
    ));
    // Past the first token's expiry the same connection still answers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    client.ping().await.unwrap();
    while let Ok(event) = events.try_recv() {
        assert!(!is_disconnected(&event), "{event:?}");
    }
}

#[tokio::test]
async fn subs_claim_subscribes_server_side_and_delivers_like_any_subscription() {
    let server = Server::start(common::with_tokens()).await;
    let token = token_with_subs("ann", Duration::from_secs(600), &["news"]);
    let (_reader, mut events) = client(ClientConfig::new(server.url()).token(Token::Static(token)));
    let seen = until(&mut events, is_subscribed("news")).await;
    assert!(matches!(seen.last(), Some(Event::Subscribed(s)) if s.server_side));
    let writer_token = common::token("bob", Duration::from_secs(600));
    let (writer, _w) = client(ClientConfig::new(server.url()).token(Token::Static(writer_token)));
    writer.publish("news", &1).await.unwrap();
    let seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;
    assert_eq!(offsets(&seen), [1]);
}

#[tokio::test]
async fn personal_channel_is_subscribed_server_side() {
    let server = Server::start(common::with_tokens()).await;
    let token = common::token("ann", Duration::from_secs(600));
    let (_client, mut events) = client(ClientConfig::new(server.url()).token(Token::Static(token)));
    let seen = until(&mut events, is_subscribed("#ann")).await;
    assert!(matches!(seen.last(), Some(Event::Subscribed(s)) if s.server_side));
}

#[tokio::test]
async fn server_side_subscription_reads_what_it_missed_after_a_reconnect() {
    let server = Server::start(common::with_tokens()).await;
    let relay = Relay::to(server.addr).await;
    let token = token_with_subs("ann", Duration::from_secs(600), &["news"]);
    let (_reader, mut events) = client(ClientConfig::new(relay.url()).token(Token::Static(token)));
    until(&mut events, is_subscribed("news")).await;
    let writer_token = common::token("bob", Duration::from_secs(600));
    let (writer, _w) = client(ClientConfig::new(server.url()).token(Token::Static(writer_token)));
    writer.publish("news", &1).await.unwrap();
    let mut seen = until(&mut events, |e| matches!(e, Event::Publication(_))).await;

    relay.refuse(true);
    relay.cut();
    until(&mut events, is_disconnected).await;
    for n in 2..=3 {
        writer.publish("news", &n).await.unwrap();
    }
    relay.refuse(false);
    let back = until(&mut events, is_subscribed("news")).await;
    assert!(
        matches!(back.last(), Some(Event::Subscribed(s)) if s.server_side && s.recovered == Some(true)),
        "{back:?}"
    );
    writer.publish("news", &4).await.unwrap();
    let live = until(
        &mut events,
        |e| matches!(e, Event::Publication(p) if p.offset == 4),
    )
    .await;
    seen.extend(back);
    seen.extend(live);
    assert_eq!(offsets(&seen), [1, 2, 3, 4]);
}

/// The backend's RPC hook: `add` sums two numbers; anything else is application error 1404.
async fn rpc_hook(
    axum::Json(call): axum::Json<serde_json::Value>,
) -> axum::Json<serde_json::Value> {
    match (call["method"].as_str(), call["data"].as_array()) {
        (Some("add"), Some(terms)) => {
            let sum: i64 = terms.iter().filter_map(serde_json::Value::as_i64).sum();
            axum::Json(json!({"data": {"sum": sum}}))
        }
        _ => axum::Json(json!({"error": {"code": 1404, "message": "no such method"}})),
    }
}

#[tokio::test]
async fn rpc_round_trips_through_the_hub_to_the_backend_and_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/rpc", axum::routing::post(rpc_hook));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = HubConfig::default();
    config.hooks.rpc.url = Some(format!("http://{backend}/rpc"));
    let server = Server::start(config).await;
    let (client, _events) = client(ClientConfig::new(server.url()));
    let answer: serde_json::Value = client.rpc("add", &[2, 3, 37]).await.unwrap();
    assert_eq!(answer, json!({"sum": 42}));
    let refused = client
        .rpc::<_, serde_json::Value>("divide", &[1, 0])
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, herald_client::Error::Server(e) if e.code.0 == 1404),
        "{refused:?}"
    );
}
