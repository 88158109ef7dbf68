//! The shared broker conformance suite against a real redis-server, plus what only a shared,
//! restartable broker can show: several nodes, and history lost with Redis.
#![allow(clippy::unwrap_used)]

use herald_hub::broker::conformance::{self, Event};
use herald_hub::broker::{Broker, Health, HistoryQuery, Payload, Retention};
use herald_hub::config::HistoryConfig;
use herald_redis::RedisBroker;
use herald_redis::testing::RedisServer;
use std::sync::Arc;
use std::time::Duration;

async fn broker(url: String, history: HistoryConfig) -> Arc<dyn Broker> {
    Arc::new(RedisBroker::connect(&url, history).await.unwrap())
}

/// Every key in the server: what reads must not add to.
async fn key_count(url: String) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    // The one shared vacant-epoch key is not per channel: the first read may set it.
    let vacant: u64 = redis::cmd("EXISTS")
        .arg("herald:vacant")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys - vacant
}

fn json(n: u64) -> Payload {
    Payload::Json(n.to_string().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_broker_keeps_every_broker_invariant() {
    let Some(redis) = RedisServer::start("redis_broker_keeps_every_broker_invariant") else {
        return;
    };
    let url = redis.url();
    let keys = redis.url();
    conformance::run_all(
        move |history| broker(url.clone(), history),
        move |_| key_count(keys.clone()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_hears_every_nodes_publications_in_offset_order() {
    let Some(redis) = RedisServer::start("every_node_hears_every_nodes_publications") else {
        return;
    };
    let factory = |history| broker(redis.url(), history);
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(conformance::started(&factory, HistoryConfig::default()).await);
    }
    let channel = conformance::fresh_channel("nodes");
    for (node, _) in &nodes {
        node.subscribe(&channel).await.unwrap();
    }
    let publishers: Vec<_> = nodes
        .iter()
        .map(|(node, _)| {
            let (node, channel) = (node.clone(), channel.clone());
            tokio::spawn(async move {
                for n in 0..100 {
                    node.publish(&channel, json(n), None, Retention::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for (_, recorder) in &nodes {
        let all = |_: &[Event]| recorder.publications(&channel).len() >= 300;
        recorder.wait_until("300 publications", all).await;
        let offsets: Vec<u64> = recorder
            .publications(&channel)
            .iter()
            .map(|p| p.1)
            .collect();
        assert_eq!(offsets, (1..=300).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_means_unavailable_then_lost_then_a_new_epoch() {
    let Some(mut redis) = RedisServer::start("redis_restarted_empty") else {
        return;
    };
    let factory = |history| broker(redis.url(), history);
    let (node, recorder) = conformance::started(&factory, HistoryConfig::default()).await;
    let channel = conformance::fresh_channel("restart");
    node.subscribe(&channel).await.unwrap();
    let before = node
        .publish(&channel, json(1), None, Retention::default())
        .await
        .unwrap();
    redis.kill();
    let failed = node
        .publish(&channel, json(2), None, Retention::default())
        .await;
    assert!(failed.is_err(), "a publish without Redis fails: {failed:?}");
    recorder
        .wait_until("lost", |e| e.contains(&Event::Lost))
        .await;
    assert_eq!(node.health(), Health::Degraded);
    redis.restart();
    let lost_twice = |e: &[Event]| e.iter().filter(|e| **e == Event::Lost).count() >= 2;
    recorder.wait_until("resubscribed", lost_twice).await;
    let after = retry_publish(node.as_ref(), &channel).await;
    assert_eq!(after.offset, 1);
    assert_ne!(
        after.epoch, before.epoch,
        "history lost with Redis: a new epoch"
    );
    let heard =
        |e: &[Event]| e.contains(&Event::Publication(channel.clone(), after.epoch.clone(), 1));
    recorder
        .wait_until("live delivery after resubscribing", heard)
        .await;
    let read = node
        .history(
            &channel,
            HistoryQuery {
                after: 0,
                limit: 10,
                reverse: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(read.position, after);
    for _ in 0..50 {
        if node.health() == Health::Ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health stays degraded after Redis came back");
}

async fn retry_publish(node: &dyn Broker, channel: &str) -> herald_hub_protocol::StreamPosition {
    for _ in 0..100 {
        if let Ok(position) = node
            .publish(channel, json(9), None, Retention::default())
            .await
        {
            return position;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("publish never succeeded after the restart");
}
