//! History and recovery: a client resubscribing with its last position gets exactly what it
//! missed, in order, before any live publication, or `recovered: false`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn offsets(publications: &Value) -> Vec<u64> {
    publications
        .as_array()
        .map(|a| a.iter().map(|p| p["offset"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn resubscribe_recovers_every_missed_publication_in_order() {
    let mut server = Server::start(config()).await;
    let mut publisher = Client::connect(&server).await;
    let mut reader = Client::connect(&server).await;
    reader.subscribe("feed").await;
    publisher.publish("feed", json!("a")).await;
    let first = reader.next_pub().await;
    assert_eq!(first["offset"], 1);
    let epoch = first["epoch"].clone();
    drop(reader);
    for i in 2..=6 {
        publisher.publish("feed", json!(i)).await;
    }
    let mut reader = Client::connect(&server).await;
    let sub = reader
        .ok(
            "subscribe",
            json!({"channel": "feed", "recover": {"offset": 1, "epoch": epoch}}),
        )
        .await;
    assert_eq!(sub["recovered"], true);
    assert_eq!(offsets(&sub["publications"]), [2, 3, 4, 5, 6]);
    assert_eq!(sub["offset"], 6);
    publisher.publish("feed", json!(7)).await;
    assert_eq!(reader.next_pub().await["offset"], 7);
    server.stop().await;
}

/// A client that subscribed before the channel's first publication holds offset 0 of the
/// vacant epoch; the first stream names that epoch, so it recovers from offset 1.
#[tokio::test]
async fn a_subscriber_from_before_the_first_publication_recovers_it_all() {
    let mut server = Server::start(config()).await;
    let mut publisher = Client::connect(&server).await;
    // Another channel's stream exists, so the vacant epochs are not new.
    publisher.publish("elsewhere", json!(0)).await;
    let mut reader = Client::connect(&server).await;
    let sub = reader.subscribe("fresh").await;
    assert_eq!(sub["offset"], 0);
    let vacant = sub["epoch"].clone();
    drop(reader);
    for i in 1..=3 {
        publisher.publish("fresh", json!(i)).await;
    }
    let mut reader = Client::connect(&server).await;
    let sub = reader
        .ok(
            "subscribe",
            json!({"channel": "fresh", "recover": {"offset": 0, "epoch": vacant}}),
        )
        .await;
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(offsets(&sub["publications"]), [1, 2, 3]);
    assert_ne!(sub["epoch"], vacant);
    // A history read `since` that position is reachable by the same rule.
    let history = reader
        .ok(
            "history",
            json!({"channel": "fresh", "since": {"offset": 0, "epoch": vacant}}),
        )
        .await;
    assert_eq!(offsets(&history["publications"]), [1, 2, 3]);
    server.stop().await;
}

#[tokio::test]
async fn resubscribe_with_nothing_missed_is_recovered_and_empty() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    a.subscribe("feed").await;
    let published = a.publish("feed", json!(1)).await;
    let mut b = Client::connect(&server).await;
    let sub = b
        .ok(
            "subscribe",
            json!({"channel": "feed", "recover": {"offset": 1, "epoch": published["epoch"]}}),
        )
        .await;
    assert_eq!(sub["recovered"], true);
    assert!(sub.get("publications").is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_gap_beyond_retained_history_or_another_epoch_is_not_recovered() {
    let mut cfg = config();
    cfg.history.size = 2;
    let mut server = Server::start(cfg).await;
    let mut a = Client::connect(&server).await;
    let epoch = a.subscribe("feed").await["epoch"].clone();
    for i in 1..=5 {
        a.publish("feed", json!(i)).await;
    }
    let mut b = Client::connect(&server).await;
    let trimmed = b
        .ok(
            "subscribe",
            json!({"channel": "feed", "recover": {"offset": 1, "epoch": epoch}}),
        )
        .await;
    assert_eq!(trimmed["recovered"], false);
    assert!(
        trimmed.get("publications").is_none(),
        "never a partial replay"
    );
    assert_eq!(trimmed["offset"], 5);
    let mut c = Client::connect(&server).await;
    let foreign = c
        .ok(
            "subscribe",
            json!({"channel": "feed", "recover": {"offset": 4, "epoch": "other"}}),
        )
        .await;
    assert_eq!(foreign["recovered"], false);
    server.stop().await;
}

#[tokio::test]
async fn a_restarted_memory_broker_has_a_new_epoch_so_old_positions_do_not_recover() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    let epoch = a.subscribe("feed").await["epoch"].clone();
    a.publish("feed", json!(1)).await;
    server.stop().await;
    let mut server = Server::start(config()).await;
    let mut b = Client::connect(&server).await;
    let sub = b
        .ok(
            "subscribe",
            json!({"channel": "feed", "recover": {"offset": 1, "epoch": epoch}}),
        )
        .await;
    assert_eq!(sub["recovered"], false);
    assert_ne!(sub["epoch"], epoch);
    server.stop().await;
}

/// Publishers keep publishing while a client disconnects and resubscribes: history plus live
/// delivery must hold every offset once, in order, with no gap at the seam.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_while_publishers_race_is_exactly_once_and_in_order() {
    const PER_PUBLISHER: u64 = 400;
    let mut cfg = config();
    cfg.history.size = 10_000;
    let mut server = Server::start(cfg).await;
    let mut reader = Client::connect(&server).await;
    reader.subscribe("race").await;
    // A client resumes from the epoch of the last publication it applied.
    let mut epoch = Value::Null;

    let mut publishers = Vec::new();
    for p in 0..3 {
        let url = server.url("/ws");
        publishers.push(tokio::spawn(async move {
            let mut client = Client::connect_url(&url).await;
            for i in 0..PER_PUBLISHER {
                client.publish("race", json!({"p": p, "i": i})).await;
            }
        }));
    }
    let total = 3 * PER_PUBLISHER;
    let mut seen: Vec<u64> = Vec::new();
    let mut last = 0;
    // Read a while, drop the connection mid-stream, resubscribe from the last offset seen,
    // three times over, while the publishers keep going.
    for _round in 0..3 {
        for _ in 0..50 {
            let push = reader.next_pub().await;
            last = push["offset"].as_u64().unwrap();
            epoch = push["epoch"].clone();
            seen.push(last);
        }
        drop(reader);
        reader = Client::connect(&server).await;
        let sub = reader
            .ok(
                "subscribe",
                json!({"channel": "race", "recover": {"offset": last, "epoch": epoch}}),
            )
            .await;
        assert_eq!(sub["recovered"], true, "{sub}");
        for offset in offsets(&sub["publications"]) {
            seen.push(offset);
            last = offset;
        }
    }
    while last < total {
        last = reader.next_pub().await["offset"].as_u64().unwrap();
        seen.push(last);
    }
    for p in publishers {
        p.await.unwrap();
    }
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "every offset once, in order"
    );
    let distinct: BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len() as u64, total);
    server.stop().await;
}
