//! Personal channels, the `subs` claim, the server API for users and the per-user connection
//! limit, end to end over real sockets on one node (the memory broker). The same operations
//! across three nodes on Redis are in crates/herald-cli/tests/cluster_users.rs.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const SECRET: &str = "users-secret";
const KEY: &str = "k3y";

fn hub_config() -> herald_hub::HubConfig {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some(SECRET.into());
    cfg.api.key = Some(KEY.into());
    cfg
}

fn token(user: &str, subs: &[&str]) -> String {
    user_token(SECRET, user, subs)
}

async fn connect(server: &Server, user: &str, subs: &[&str]) -> Client {
    let url = format!("{}?token={}", server.url("/ws"), token(user, subs));
    Client::connect_url(&url).await
}

async fn api(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let headers = format!("X-API-Key: {KEY}\r\n");
    let (status, text) = server.post(path, &headers, &body.to_string()).await;
    (status, body_json(&text))
}

async fn api_get(server: &Server, path: &str) -> Value {
    let (status, text) = server.get(path, &format!("X-API-Key: {KEY}\r\n")).await;
    assert_eq!(status, 200, "{text}");
    body_json(&text)
}

#[tokio::test]
async fn a_publish_to_a_user_reaches_every_connection_of_that_user_only() {
    let mut server = Server::start(hub_config()).await;
    let mut phone = connect(&server, "ann", &[]).await;
    let mut laptop = connect(&server, "ann", &[]).await;
    let mut bob = connect(&server, "bob", &[]).await;
    for (client, channel) in [
        (&mut phone, "#ann"),
        (&mut laptop, "#ann"),
        (&mut bob, "#bob"),
    ] {
        let push = client.next_push().await;
        assert_eq!(push["push"], "subscribed", "{push}");
        assert_eq!(push["channel"], channel);
    }
    let (status, body) = api(
        &server,
        "/api/publish",
        json!({"user": "ann", "data": "hi"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for client in [&mut phone, &mut laptop] {
        let push = client.next_pub().await;
        assert_eq!(
            (push["channel"].clone(), push["data"].clone()),
            (json!("#ann"), json!("hi"))
        );
    }
    let denied = bob.call("subscribe", json!({"channel": "#ann"})).await;
    assert_eq!(denied["error"]["code"], 103, "{denied}");
    let (status, _) = api(&server, "/api/publish", json!({"user": "", "data": 1})).await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn subs_claims_subscribe_at_connect_and_history_since_recovers_the_gap() {
    let mut server = Server::start(hub_config()).await;
    let mut first = connect(&server, "ann", &["alerts"]).await;
    let pushes = [first.next_push().await, first.next_push().await];
    assert_eq!(pushes[1]["channel"], "alerts", "{pushes:?}");
    let (_, published) = api(
        &server,
        "/api/publish",
        json!({"channel": "alerts", "data": 1}),
    )
    .await;
    let seen = first.next_pub().await;
    assert_eq!(seen["offset"], 1);
    first
        .ws
        .close(herald::CloseCode::NORMAL, "bye")
        .await
        .unwrap();
    for n in 2..=3 {
        api(
            &server,
            "/api/publish",
            json!({"channel": "alerts", "data": n}),
        )
        .await;
    }
    let mut again = connect(&server, "ann", &["alerts"]).await;
    let subscribed = loop {
        let push = again.next_push().await;
        if push["channel"] == "alerts" {
            break push;
        }
    };
    assert_eq!(subscribed["offset"], 3);
    let since = json!({"offset": 1, "epoch": published["epoch"]});
    let missed = again
        .ok("history", json!({"channel": "alerts", "since": since}))
        .await;
    let offsets: Vec<&Value> = missed["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["offset"])
        .collect();
    assert_eq!(offsets, [&json!(2), &json!(3)]);
    server.stop().await;
}

#[tokio::test]
async fn the_server_api_subscribes_unsubscribes_and_disconnects_a_user() {
    let mut server = Server::start(hub_config()).await;
    let mut ann = connect(&server, "ann", &[]).await;
    let mut kept = connect(&server, "ann", &[]).await;
    ann.next_push().await;
    kept.next_push().await;
    let (status, _) = api(
        &server,
        "/api/subscribe",
        json!({"user": "ann", "channel": "room"}),
    )
    .await;
    assert_eq!(status, 200);
    let push = ann.next_push().await;
    assert_eq!(
        (push["push"].clone(), push["channel"].clone()),
        (json!("subscribed"), json!("room"))
    );
    api(
        &server,
        "/api/publish",
        json!({"channel": "room", "data": 7}),
    )
    .await;
    assert_eq!(ann.next_pub().await["data"], 7);

    let channels = api_get(&server, "/api/channels?pattern=roo*").await;
    assert_eq!(channels["channels"], json!({"room": 2}), "{channels}");
    assert_eq!(channels["nodes"], 1);
    let info = api_get(&server, "/api/info").await;
    assert_eq!(info["nodes"][0]["connections"], 2, "{info}");
    let presence = api_get(&server, "/api/presence_counts/room").await;
    assert_eq!(presence, json!({"clients": 2, "users": 1}));

    api(
        &server,
        "/api/unsubscribe",
        json!({"user": "ann", "channel": "room"}),
    )
    .await;
    let push = ann.next_push().await;
    assert_eq!(
        (push["push"].clone(), push["channel"].clone()),
        (json!("unsubscribed"), json!("room"))
    );

    let (status, body) = api(
        &server,
        "/api/disconnect",
        json!({"user": "ann", "code": 1000}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(107)), "{body}");
    let except = kept.client_id.clone();
    let body = json!({"user": "ann", "code": 4100, "reason": "moved", "except": except});
    assert_eq!(api(&server, "/api/disconnect", body).await.0, 200);
    assert_eq!(ann.closed_with().await, 4100);
    kept.ok("ping", json!({})).await;
    api(&server, "/api/disconnect", json!({"user": "ann"})).await;
    assert_eq!(kept.closed_with().await, 4504);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_over_the_per_user_limit_closes_with_4503_after_the_upgrade() {
    let mut cfg = hub_config();
    cfg.limits.max_connections_per_user = 1;
    let mut server = Server::start(cfg).await;
    let mut first = connect(&server, "ann", &[]).await;
    let url = format!("{}?token={}", server.url("/ws"), token("ann", &[]));
    let builder = herald::ClientBuilder::new(&url)
        .unwrap()
        .subprotocol(herald_hub_protocol::SUBPROTOCOL);
    let (mut refused, _) = builder.connect().await.expect("the upgrade succeeds");
    assert_eq!(closed_with(&mut refused).await, 4503);
    let _other_user = connect(&server, "bob", &[]).await;
    first
        .ws
        .close(herald::CloseCode::NORMAL, "bye")
        .await
        .unwrap();
    assert_eq!(first.closed_with().await, 1000);
    wait_for(|| {
        server
            .hub
            .metrics()
            .render()
            .contains(r#"herald_disconnects_total{code="1000"} 1"#)
    })
    .await;
    let _again = connect(&server, "ann", &[]).await;
    let text = server.hub.metrics().render();
    assert!(
        text.contains(r#"herald_limit_hits_total{limit="max_connections_per_user"} 1"#),
        "{text}"
    );
    server.stop().await;
}
