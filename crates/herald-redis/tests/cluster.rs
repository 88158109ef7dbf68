//! The shared broker conformance suite against a real Redis Cluster (three masters, three
//! replicas) and a real master behind three Sentinels, and what only they can show: nodes
//! hearing each other through sharded pub/sub, and the control bus across shards.
//!
//! These tests are `#[ignore]`d so that `cargo test` stays quick: `./scripts/test` runs them
//! beside the client suites (`cargo test --test cluster -- --ignored`).
#![allow(clippy::unwrap_used)]

use herald_hub::broker::conformance::{self, Event};
use herald_hub::broker::{Broker, HistoryQuery, Payload, Retention};
use herald_hub::config::HistoryConfig;
use herald_redis::RedisBroker;
use herald_redis::testing::{RedisCluster, RedisSentinels, is_vacant_key};
use std::sync::Arc;
use std::time::Duration;

async fn broker(url: String, history: HistoryConfig) -> Arc<dyn Broker> {
    Arc::new(RedisBroker::connect(&url, history).await.unwrap())
}

/// Every key on every master (a cluster client sends KEYS to each and joins the answers),
/// but the slots' vacant epochs, which the first read in a slot may set.
async fn cluster_key_count(seeds: Vec<String>) -> u64 {
    let client = redis::cluster::ClusterClient::new(seeds).unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.iter().filter(|k| !is_vacant_key(k)).count() as u64
}

async fn server_key_count(url: String) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.iter().filter(|k| !is_vacant_key(k)).count() as u64
}

fn seeds(url: &str) -> Vec<String> {
    url.strip_prefix("redis+cluster://")
        .unwrap()
        .split(',')
        .map(|s| format!("redis://{s}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (real Redis servers failing over): ./scripts/test runs it with --ignored"]
async fn cluster_broker_keeps_every_broker_invariant() {
    let Some(cluster) = RedisCluster::start("cluster_broker_keeps_every_broker_invariant") else {
        return;
    };
    let url = cluster.url();
    let seeds = seeds(&url);
    conformance::run_all(
        move |history| broker(url.clone(), history),
        move |_| cluster_key_count(seeds.clone()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (real Redis servers failing over): ./scripts/test runs it with --ignored"]
async fn sentinel_broker_keeps_every_broker_invariant() {
    let Some(sentinels) = RedisSentinels::start("sentinel_broker_keeps_every_broker_invariant")
    else {
        return;
    };
    let url = sentinels.url();
    let master = format!("redis://127.0.0.1:{}", sentinels.master_port());
    conformance::run_all(
        move |history| broker(url.clone(), history),
        move |_| server_key_count(master.clone()),
    )
    .await;
}

/// A failover may lose what the old master acknowledged, a first stream with it: a position
/// read before it in a vacant epoch continues into no stream of the new master, while one
/// read there does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (real Redis servers failing over): ./scripts/test runs it with --ignored"]
async fn a_vacant_position_from_before_a_failover_continues_into_no_stream_after_it() {
    let Some(mut sentinels) = RedisSentinels::start(
        "a_vacant_position_from_before_a_failover_continues_into_no_stream_after_it",
    ) else {
        return;
    };
    let history = HistoryConfig::default();
    let broker = broker(sentinels.url(), history).await;
    let query = || HistoryQuery {
        after: 0,
        limit: 10,
        reverse: false,
    };
    let channel = "failover:vacant";
    let before = broker.history(channel, query()).await.unwrap();
    assert_eq!(before.position.offset, 0);
    // The vacant epoch reached the replica before its master died.
    let master =
        redis::Client::open(format!("redis://127.0.0.1:{}", sentinels.master_port())).unwrap();
    let mut conn = master.get_multiplexed_async_connection().await.unwrap();
    let synced: u64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(synced, 1, "the replica acknowledged the vacant epoch");
    sentinels.fail_over();
    let retention = Retention::from(&history);
    let published = loop {
        // The broker follows the Sentinels to the new master; until then a publish fails.
        match broker
            .publish(channel, Payload::Json("1".into()), None, retention)
            .await
        {
            Ok(position) => break position,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let after = broker.history(channel, query()).await.unwrap();
    assert_eq!(after.position, published);
    assert_eq!(
        after.vacant_before, None,
        "the vacant epoch was set under the old master's replication id"
    );
    assert!(!conformance::recovers(&before.position, after));

    let fresh = "failover:vacant-after";
    let read = broker.history(fresh, query()).await.unwrap();
    broker
        .publish(fresh, Payload::Json("1".into()), None, retention)
        .await
        .unwrap();
    let first = broker.history(fresh, query()).await.unwrap();
    assert_eq!(
        first.vacant_before.as_ref(),
        Some(&read.position.epoch),
        "a vacant epoch read from the new master continues into its first stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (real Redis servers failing over): ./scripts/test runs it with --ignored"]
async fn cluster_nodes_hear_channels_on_every_shard_and_answer_surveys() {
    let Some(cluster) = RedisCluster::start("cluster_nodes_hear_channels_on_every_shard") else {
        return;
    };
    let factory = |history| broker(cluster.url(), history);
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(conformance::started(&factory, HistoryConfig::default()).await);
    }
    // Enough channels that every master owns some.
    let channels: Vec<String> = (0..24)
        .map(|i| conformance::fresh_channel(&format!("shard{i}")))
        .collect();
    let masters: std::collections::BTreeSet<u16> = channels
        .iter()
        .map(|c| cluster.master_of(&herald_redis::testing::channel_key(c)))
        .collect();
    assert_eq!(masters.len(), 3, "the channels span every shard");
    for (node, _) in &nodes {
        for channel in &channels {
            node.subscribe(channel).await.unwrap();
        }
    }
    for (i, channel) in channels.iter().enumerate() {
        let (publisher, _) = &nodes[i % nodes.len()];
        for n in 0..5 {
            publisher
                .publish(
                    channel,
                    Payload::Json(n.to_string().into()),
                    None,
                    Retention::default(),
                )
                .await
                .unwrap();
        }
    }
    for (_, recorder) in &nodes {
        for channel in &channels {
            recorder
                .wait_until("five publications", |e| {
                    e.iter()
                        .filter(|e| matches!(e, Event::Publication(c, _, _) if c == channel))
                        .count()
                        >= 5
                })
                .await;
            let offsets: Vec<u64> = recorder
                .publications(channel)
                .iter()
                .map(|(_, offset)| *offset)
                .collect();
            assert_eq!(offsets, [1, 2, 3, 4, 5], "{channel}");
        }
    }
    let history = nodes[0]
        .0
        .history(&channels[0], HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.position.offset, 5);
    // The control bus reaches every node, and a survey hears every node answer.
    let answers = nodes[0]
        .0
        .survey(bytes::Bytes::from_static(b"who"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![conformance::answer_to(b"who"); 3],
        "one per node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (real Redis servers failing over): ./scripts/test runs it with --ignored"]
async fn a_moved_slot_is_followed_subscribers_recover_and_fan_out_resumes() {
    let Some(cluster) = RedisCluster::start("a_moved_slot_is_followed") else {
        return;
    };
    let factory = |history| broker(cluster.url(), history);
    let (publisher, _) = conformance::started(&factory, HistoryConfig::default()).await;
    let (listener, recorder) = conformance::started(&factory, HistoryConfig::default()).await;
    let channel = conformance::fresh_channel("moved");
    listener.subscribe(&channel).await.unwrap();
    let publish = |n: u64| {
        let (publisher, channel) = (publisher.clone(), channel.clone());
        async move {
            publisher
                .publish(
                    &channel,
                    Payload::Json(n.to_string().into()),
                    None,
                    Retention::default(),
                )
                .await
                .unwrap()
        }
    };
    let before = publish(1).await;
    let key = herald_redis::testing::channel_key(&channel);
    let from = cluster.master_of(&key);
    let to = cluster.move_slot(&key);
    assert_ne!(from, to);
    // The old owner dropped the subscription: the node tells its subscribers (they recover),
    // re-subscribes on the new owner, and tells them once more when it is confirmed.
    recorder
        .wait_until("lost, twice", |e| {
            e.iter().filter(|e| **e == Event::Lost).count() >= 2
        })
        .await;
    let after = publish(2).await;
    recorder
        .wait_until("the publication after the move", |e| {
            e.iter().any(|e| {
                *e == Event::Publication(channel.clone(), after.epoch.clone(), after.offset)
            })
        })
        .await;
    // The new owner's history continues, in a new epoch: another server took the channel,
    // so positions from before it are not trusted to continue.
    let history = listener
        .history(&channel, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.position, after);
    assert_ne!(after.epoch, before.epoch);
}
