//! Namespaces on two hub nodes sharing a real redis-server: each namespace's history size and
//! TTL reach Redis with every publish, and `latest` and reverse history read what another node
//! published, without a gap or a duplicate at the seam with live delivery.
#![allow(clippy::unwrap_used)]

use futures_util::StreamExt;
use herald::{MaybeTlsStream, Message, WebSocket};
use herald_hub::config::NamespaceConfig;
use herald_hub::{Hub, HubConfig};
use herald_hub_protocol::SUBPROTOCOL;
use herald_redis::RedisBroker;
use herald_redis::testing::RedisServer;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

/// A hub node on the test's Redis, serving on 127.0.0.1:0 until dropped.
struct Node {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Node {
    async fn start(redis: &RedisServer) -> Self {
        let config = config();
        let broker = RedisBroker::connect(&redis.url(), config.history)
            .await
            .unwrap();
        let hub = Hub::with_broker(config, std::sync::Arc::new(broker)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(herald_hub::run(listener, hub, async move {
            let _ = stopped.await;
        }));
        Self { addr, _stop: stop }
    }
}

/// `prices`: 3 kept for 2 s, the newest 2 on subscribe. `chat` for the default route.
fn config() -> HubConfig {
    let mut config = HubConfig::default();
    config.limits.publish_rate = 0;
    config.limits.command_rate = 0;
    let prices = NamespaceConfig {
        history_size: Some(3),
        history_ttl: Some(Duration::from_secs(2)),
        latest: Some(2),
        ..NamespaceConfig::default()
    };
    config.namespaces.insert("prices".into(), prices);
    config
        .namespaces
        .insert("chat".into(), NamespaceConfig::default());
    config
}

/// A herald.v1 client.
struct Client {
    ws: WebSocket<MaybeTlsStream>,
    next_id: u64,
    pushes: Vec<Value>,
}

impl Client {
    async fn connect(node: &Node) -> Self {
        let url = format!("ws://{}/ws", node.addr);
        let builder = herald::ClientBuilder::new(&url)
            .unwrap()
            .subprotocol(SUBPROTOCOL);
        let (ws, _) = builder.connect().await.unwrap();
        let mut client = Self {
            ws,
            next_id: 1,
            pushes: Vec::new(),
        };
        assert_eq!(client.next_json().await["push"], "connected");
        client
    }

    async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("open")
                .expect("no error");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    async fn ok(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let value = self.next_json().await;
            if value.get("push").is_some() {
                self.pushes.push(value);
                continue;
            }
            assert!(value.get("error").is_none(), "{method} failed: {value}");
            return value["result"].clone();
        }
    }

    async fn next_pub_offset(&mut self) -> u64 {
        let push = if self.pushes.is_empty() {
            self.next_json().await
        } else {
            self.pushes.remove(0)
        };
        assert_eq!(push["push"], "pub", "{push}");
        push["offset"].as_u64().unwrap()
    }
}

fn offsets(publications: &Value) -> Vec<u64> {
    publications
        .as_array()
        .map(|a| a.iter().map(|p| p["offset"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

async fn pttl(redis: &RedisServer, key: &str) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_namespaces_size_and_ttl_reach_redis_and_another_node_reads_latest_and_reverse() {
    let Some(redis) = RedisServer::start("namespaces_reach_redis") else {
        return;
    };
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let mut publisher = Client::connect(&a).await;
    for n in 1..=5 {
        let params = json!({"channel": "prices:eur", "data": n});
        publisher.ok("publish", params).await;
        let params = json!({"channel": "lobby", "data": n});
        publisher.ok("publish", params).await;
    }
    let mut reader = Client::connect(&b).await;
    let reply = reader
        .ok("subscribe", json!({"channel": "prices:eur"}))
        .await;
    assert_eq!(offsets(&reply["publications"]), [4, 5], "{reply}");
    let all = reader.ok("history", json!({"channel": "prices:eur"})).await;
    assert_eq!(offsets(&all["publications"]), [3, 4, 5], "MAXLEN 3");
    let newest = json!({"channel": "prices:eur", "reverse": true, "limit": 2});
    let newest = reader.ok("history", newest).await;
    assert_eq!(offsets(&newest["publications"]), [5, 4]);
    let lobby = reader.ok("history", json!({"channel": "lobby"})).await;
    assert_eq!(offsets(&lobby["publications"]), [1, 2, 3, 4, 5]);
    let short = pttl(
        &redis,
        &herald_redis::testing::channel_keys("prices:eur")[0],
    )
    .await;
    assert!(
        short > 0 && short <= 2000,
        "the namespace's TTL: {short} ms"
    );
    let long = pttl(&redis, &herald_redis::testing::channel_keys("lobby")[0]).await;
    assert!(
        long > 2000,
        "history.ttl for the default namespace: {long} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_on_one_node_meets_live_delivery_from_another_without_gap_or_duplicate() {
    const TOTAL: u64 = 200;
    let Some(redis) = RedisServer::start("latest_meets_live_across_nodes") else {
        return;
    };
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let mut publisher = Client::connect(&a).await;
    let first = json!({"channel": "prices:usd", "data": 0});
    publisher.ok("publish", first).await;
    let publishing = tokio::spawn(async move {
        for n in 1..TOTAL {
            let params = json!({"channel": "prices:usd", "data": n});
            publisher.ok("publish", params).await;
        }
    });
    let mut subscribers = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(&b).await;
        let reply = c.ok("subscribe", json!({"channel": "prices:usd"})).await;
        subscribers.push((c, reply));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    publishing.await.unwrap();
    for (mut c, reply) in subscribers {
        let mut seen = offsets(&reply["publications"]);
        assert!(!seen.is_empty() && seen.len() <= 2, "{reply}");
        assert_eq!(seen.last().copied(), reply["offset"].as_u64());
        while seen.last().copied() < Some(TOTAL) {
            seen.push(c.next_pub_offset().await);
        }
        assert_eq!(seen, (seen[0]..=TOTAL).collect::<Vec<_>>());
    }
}
