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
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    // A slot's vacant-epoch key is not per channel: the first read in the slot may set it.
    keys.iter()
        .filter(|k| !herald_redis::testing::is_vacant_key(k))
        .count() as u64
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_messages_and_surveys_reach_every_node() {
    let Some(redis) = RedisServer::start("control_messages_and_surveys_reach_every_node") else {
        return;
    };
    let factory = |history| broker(redis.url(), history);
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(conformance::started(&factory, HistoryConfig::default()).await);
    }
    nodes[0].0.control(b"to all".to_vec().into()).await.unwrap();
    for (_, recorder) in &nodes {
        let heard = Event::Control(b"to all".to_vec());
        recorder
            .wait_until("the control message", |e| e.contains(&heard))
            .await;
    }
    let answers = nodes[1]
        .0
        .survey(b"who".to_vec().into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![conformance::answer_to(b"who"); 3],
        "one per node"
    );
    // A frame that is not ours, on the bus: dropped; the nodes keep answering.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for junk in [&b"zzz"[..], b"s nothex 1\nq", b"s abc\n", b""] {
        let _: u64 = redis::cmd("PUBLISH")
            .arg("herald:{ctl}")
            .arg(junk)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    for (_, recorder) in &nodes {
        let dropped =
            |e: &[Event]| e.iter().filter(|e| **e == Event::ControlMalformed).count() == 4;
        recorder.wait_until("four frames dropped", dropped).await;
    }
    let again = nodes[2]
        .0
        .survey(b"still".to_vec().into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_connections_are_counted_over_every_node() {
    let Some(redis) = RedisServer::start("a_users_connections_are_counted_over_every_node") else {
        return;
    };
    let factory = |history| broker(redis.url(), history);
    let (one, _) = conformance::started(&factory, HistoryConfig::default()).await;
    let (two, _) = conformance::started(&factory, HistoryConfig::default()).await;
    assert!(one.connection_add("ann", "n1-1", 2).await.unwrap());
    assert!(two.connection_add("ann", "n2-1", 2).await.unwrap());
    assert!(!two.connection_add("ann", "n2-2", 2).await.unwrap());
    one.connection_remove("ann", "n1-1").await.unwrap();
    assert!(two.connection_add("ann", "n2-2", 2).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_nodes_connections_expire_after_a_member_lifetime() {
    let Some(redis) = RedisServer::start("a_stopped_nodes_connections_expire") else {
        return;
    };
    let mut options = herald_redis::RedisOptions::default();
    options.member_lifetime = Duration::from_millis(600);
    options.refresh_every = Duration::from_millis(100);
    options.check_every = Duration::from_millis(100);
    let url = redis.url();
    let history = HistoryConfig::default();
    let alive = RedisBroker::connect_with(&url, history, options)
        .await
        .unwrap();
    let crashed = RedisBroker::connect_with(&url, history, options)
        .await
        .unwrap();
    assert!(alive.connection_add("ann", "alive-1", 2).await.unwrap());
    assert!(crashed.connection_add("ann", "crashed-1", 2).await.unwrap());
    drop(crashed);
    // The live node refreshes its own; the stopped node's entry runs out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(alive.connection_add("ann", "alive-2", 2).await.unwrap());
    assert!(!alive.connection_add("ann", "alive-3", 2).await.unwrap());
}
