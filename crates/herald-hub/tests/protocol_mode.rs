//! Protocol mode (herald.v1): commands, replies, pushes and error codes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald::Message;
use serde_json::json;

#[tokio::test]
async fn subscribe_publish_and_receive_with_offsets_and_epoch() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    let sub = a.subscribe("news").await;
    assert_eq!(sub["offset"], 0);
    b.subscribe("sport").await;

    let published = b.publish("news", json!({"title": "one"})).await;
    assert_eq!(published["offset"], 1);
    // The first publication starts the channel's stream: a new epoch, not the vacant one.
    assert_ne!(published["epoch"], sub["epoch"]);
    let epoch = published["epoch"].as_str().unwrap().to_owned();
    let push = a.next_pub().await;
    assert_eq!(push["channel"], "news");
    assert_eq!(push["offset"], 1);
    assert_eq!(push["epoch"], epoch.as_str());
    assert_eq!(push["data"], json!({"title": "one"}));

    // One connection, many subscriptions.
    a.subscribe("sport").await;
    b.publish("sport", json!(2)).await;
    assert_eq!(a.next_pub().await["channel"], "sport");
    // b subscribed to sport too, and gets its own publication.
    assert_eq!(b.next_pub().await["data"], 2);

    a.ok("unsubscribe", json!({"channel": "news"})).await;
    b.publish("news", json!(3)).await;
    b.publish("sport", json!(4)).await;
    // Nothing from news after unsubscribing: the next push is sport's.
    assert_eq!(a.next_pub().await["data"], 4);
    server.stop().await;
}

#[tokio::test]
async fn history_returns_retained_publications_in_order() {
    let mut cfg = config();
    cfg.history.size = 3;
    let mut server = Server::start(cfg).await;
    let mut a = Client::connect(&server).await;
    for i in 1..=5 {
        a.publish("log", json!(i)).await;
    }
    let history = a.ok("history", json!({"channel": "log"})).await;
    assert_eq!(history["offset"], 5);
    let data: Vec<_> = history["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["offset"].clone(), p["data"].clone()))
        .collect();
    assert_eq!(
        data,
        [
            (json!(3), json!(3)),
            (json!(4), json!(4)),
            (json!(5), json!(5))
        ]
    );
    let epoch = history["epoch"].clone();
    let since = a
        .ok(
            "history",
            json!({"channel": "log", "since": {"offset": 4, "epoch": epoch}}),
        )
        .await;
    assert_eq!(since["publications"].as_array().unwrap().len(), 1);
    // Trimmed or foreign positions are refused, never answered partially.
    let trimmed = a
        .call(
            "history",
            json!({"channel": "log", "since": {"offset": 1, "epoch": epoch}}),
        )
        .await;
    assert_eq!(trimmed["error"]["code"], 110);
    let foreign = a
        .call(
            "history",
            json!({"channel": "log", "since": {"offset": 4, "epoch": "nope"}}),
        )
        .await;
    assert_eq!(foreign["error"]["code"], 110);
    server.stop().await;
}

#[tokio::test]
async fn presence_lists_members_and_pushes_join_and_leave() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    a.ok("subscribe", json!({"channel": "room", "join_leave": true}))
        .await;
    let mut b = Client::connect(&server).await;
    b.subscribe("room").await;
    let join = a.next_push().await;
    assert_eq!(join["push"], "join");
    assert_eq!(join["client"], b.client_id.as_str());
    let presence = a.ok("presence", json!({"channel": "room"})).await;
    let mut members: Vec<String> = presence["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = vec![a.client_id.clone(), b.client_id.clone()];
    expected.sort();
    assert_eq!(members, expected);
    let b_id = b.client_id.clone();
    drop(b);
    let leave = a.next_push().await;
    assert_eq!(leave["push"], "leave");
    assert_eq!(leave["client"], b_id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn errors_are_replies_with_stable_codes() {
    let mut cfg = config();
    cfg.limits.max_subscriptions = 2;
    let mut server = Server::start(cfg).await;
    let mut a = Client::connect(&server).await;
    assert_eq!(a.call("teleport", json!({})).await["error"]["code"], 102);
    assert_eq!(
        a.call("publish", json!({"data": 1})).await["error"]["code"],
        107
    );
    assert_eq!(
        a.call("subscribe", json!({"channel": ""})).await["error"]["code"],
        107
    );
    assert_eq!(
        a.call("unsubscribe", json!({"channel": "x"})).await["error"]["code"],
        105
    );
    a.subscribe("one").await;
    assert_eq!(
        a.call("subscribe", json!({"channel": "one"})).await["error"]["code"],
        104
    );
    a.subscribe("two").await;
    assert_eq!(
        a.call("subscribe", json!({"channel": "three"})).await["error"]["code"],
        106
    );
    assert_eq!(a.ok("ping", json!({})).await, json!({}));
    server.stop().await;
}

#[tokio::test]
async fn a_message_that_is_not_a_command_closes_with_4500() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    a.ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(a.closed_with().await, 4500);
    server.stop().await;
}

#[tokio::test]
async fn publishing_over_the_rate_is_refused_then_closed_with_1008() {
    let mut cfg = config();
    cfg.limits.publish_rate = 1;
    cfg.limits.publish_burst = 2;
    let mut server = Server::start(cfg).await;
    let mut a = Client::connect(&server).await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let reply = a.call("publish", json!({"channel": "c", "data": i})).await;
        codes.push(reply["error"]["code"].as_u64().unwrap_or(0));
    }
    assert_eq!(codes, [0, 0, 108, 108, 108]);
    let _ =
        a.ws.send(Message::text(
            json!({"id": 99, "method": "publish", "params": {"channel": "c", "data": 0}})
                .to_string(),
        ))
        .await;
    assert_eq!(a.closed_with().await, 1008);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_without_subscriptions_is_closed_when_idle() {
    let mut cfg = config();
    cfg.limits.idle_timeout = std::time::Duration::from_millis(300);
    let mut server = Server::start(cfg).await;
    let mut a = Client::connect(&server).await;
    assert_eq!(a.closed_with().await, 4502);
    server.stop().await;
}

#[tokio::test]
async fn join_and_leave_pushes_only_reach_subscribers_that_asked() {
    let mut server = Server::start(config()).await;
    let mut quiet = Client::connect(&server).await;
    quiet.subscribe("room").await;
    let mut b = Client::connect(&server).await;
    b.subscribe("room").await;
    drop(b);
    let mut c = Client::connect(&server).await;
    c.publish("room", json!("after")).await;
    // The first push `quiet` sees is the publication: no join or leave came before it.
    assert_eq!(quiet.next_push().await["push"], "pub");
    server.stop().await;
}
