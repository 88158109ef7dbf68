//! Token refresh over real sockets: the `refresh` push before `exp`, a `refresh` that keeps the
//! connection open past the first token's expiry, a refused one that does not, and a narrower
//! token that ends a subscription with an `unsubscribed` push.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald_hub::auth::{Claims, issue_hs256};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "s3cret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(sub: &str, exp: u64, channels: &[&str]) -> String {
    let claims = Claims {
        sub: sub.into(),
        exp,
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        subscribe: vec![],
        publish: vec![],
        subs: vec![],
    };
    issue_hs256(SECRET, &claims).unwrap()
}

async fn server() -> Server {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some(SECRET.into());
    cfg.auth.refresh_notice = Duration::from_secs(2);
    // No personal channel: its `subscribed` push is not what these tests read.
    cfg.users.personal_prefix = String::new();
    Server::start(cfg).await
}

async fn connect(server: &Server, token: &str) -> Client {
    Client::connect_url(&server.url(&format!("/ws?token={token}"))).await
}

#[tokio::test]
async fn a_refreshed_connection_outlives_its_first_token() {
    let mut server = server().await;
    let first = now() + 3;
    let mut client = connect(&server, &token("ann", first, &["chat:*"])).await;
    client.subscribe("chat:1").await;
    let due = client.next_push().await;
    assert_eq!(due, json!({"push": "refresh", "expires": first}));
    let second = now() + 60;
    let result = client
        .ok(
            "refresh",
            json!({"token": token("ann", second, &["chat:*"])}),
        )
        .await;
    assert_eq!(result, json!({"expires": second}));
    tokio::time::sleep(Duration::from_secs(first + 1 - now())).await;
    let published = client.publish("chat:1", json!("still here")).await;
    assert_eq!(published["offset"], 1);
    assert_eq!(client.next_pub().await["data"], "still here");
    server.stop().await;
}

#[tokio::test]
async fn a_refused_refresh_closes_with_4501_at_the_old_expiry() {
    let mut server = server().await;
    let mut client = connect(&server, &token("ann", now() + 2, &["chat:*"])).await;
    let other = client
        .call(
            "refresh",
            json!({"token": token("bob", now() + 60, &["chat:*"])}),
        )
        .await;
    assert_eq!(other["error"]["code"], 103, "{other}");
    let forged = client
        .call("refresh", json!({"token": "e30.e30.e30"}))
        .await;
    assert_eq!(forged["error"]["code"], 101, "{forged}");
    assert_eq!(client.closed_with().await, 4501);
    server.stop().await;
}

#[tokio::test]
async fn a_narrower_token_ends_the_subscriptions_it_no_longer_allows() {
    let mut server = server().await;
    let mut client = connect(&server, &token("ann", now() + 60, &["a:*", "b:*"])).await;
    client.subscribe("a:1").await;
    client.subscribe("b:1").await;
    client
        .ok(
            "refresh",
            json!({"token": token("ann", now() + 60, &["a:*"])}),
        )
        .await;
    let pushes: Vec<_> = client.pushes.drain(..).collect();
    assert_eq!(
        pushes,
        [
            json!({"push": "unsubscribed", "channel": "b:1", "reason": "not allowed by the refreshed token"})
        ]
    );
    let denied = client
        .call("publish", json!({"channel": "b:1", "data": 1}))
        .await;
    assert_eq!(denied["error"]["code"], 103, "{denied}");
    let again = client.call("subscribe", json!({"channel": "b:1"})).await;
    assert_eq!(again["error"]["code"], 103, "{again}");
    server.stop().await;
}
