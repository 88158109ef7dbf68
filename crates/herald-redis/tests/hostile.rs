//! What a hostile client (or a stalling Redis) can do to a real hub, on the memory broker and
//! on a real redis-server: positions no stream can hold, unique channel names, history
//! bounds, publishes Redis does not answer in time, and presence across a Redis stall.
#![allow(clippy::unwrap_used)]

use futures_util::StreamExt;
use herald::{MaybeTlsStream, Message, WebSocket};
use herald_hub::broker::{Broker, Retained};
use herald_hub::{Hub, HubConfig};
use herald_hub_protocol::SUBPROTOCOL;
use herald_redis::testing::RedisServer;
use herald_redis::{RedisBroker, RedisOptions};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);
const API_KEY: &str = "k3y";

/// A hub serving on 127.0.0.1:0 until dropped.
struct Server {
    addr: SocketAddr,
    hub: Arc<Hub>,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(hub: Arc<Hub>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(herald_hub::run(listener, hub.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            hub,
            _stop: stop,
        }
    }

    async fn memory(config: HubConfig) -> Self {
        Self::start(Hub::new(config).unwrap()).await
    }

    async fn redis(config: HubConfig, url: &str, options: RedisOptions) -> Self {
        let broker = RedisBroker::connect_with(url, config.history, options)
            .await
            .unwrap();
        Self::start(Hub::with_broker(config, Arc::new(broker)).unwrap()).await
    }

    /// One HTTP/1.1 request; the status and the body.
    async fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-API-Key: {API_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(WAIT, tcp.read_to_string(&mut response))
            .await
            .unwrap()
            .unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    async fn health(&self) -> u16 {
        self.http("GET", "/healthz", "").await.0
    }

    fn retained(&self) -> Retained {
        self.hub.broker().retained().unwrap()
    }
}

/// A test config: no rate or command limits, the API open with [`API_KEY`].
fn config() -> HubConfig {
    let mut config = HubConfig::default();
    config.limits.publish_rate = 0;
    config.limits.command_rate = 0;
    config.api.key = Some(API_KEY.into());
    config
}

/// Timings short enough for tests: answers within 300 ms, members live 600 ms.
fn quick() -> RedisOptions {
    let mut options = RedisOptions::default();
    options.op_timeout = Duration::from_millis(300);
    options.check_every = Duration::from_millis(100);
    options.member_lifetime = Duration::from_millis(600);
    options.refresh_every = Duration::from_millis(200);
    options
}

/// A herald.v1 client.
struct Client {
    ws: WebSocket<MaybeTlsStream>,
    next_id: u64,
    client_id: String,
}

impl Client {
    async fn connect(server: &Server) -> Self {
        let url = format!("ws://{}/ws", server.addr);
        let builder = herald::ClientBuilder::new(&url)
            .unwrap()
            .subprotocol(SUBPROTOCOL);
        let (ws, _) = builder.connect().await.unwrap();
        let mut client = Self {
            ws,
            next_id: 1,
            client_id: String::new(),
        };
        let connected = client.next_json().await;
        assert_eq!(connected["push"], "connected");
        client.client_id = connected["client"].as_str().unwrap().to_owned();
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

    /// Sends every command, then reads their replies (pushes skipped), in order.
    async fn calls(&mut self, commands: &[(&str, Value)]) -> Vec<Value> {
        let first = self.next_id;
        for (method, params) in commands {
            let command = json!({ "id": self.next_id, "method": method, "params": params });
            self.next_id += 1;
            self.ws
                .send(Message::text(command.to_string()))
                .await
                .unwrap();
        }
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            let value = self.next_json().await;
            if value.get("push").is_none() {
                assert_eq!(
                    value["id"],
                    first + replies.len() as u64,
                    "replies in order"
                );
                replies.push(value);
            }
        }
        replies
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.calls(&[(method, params)]).await.remove(0)
    }

    async fn ok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.call(method, params).await;
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }
}

fn error_code(reply: &Value) -> u64 {
    reply["error"]["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

/// A plain connection to the test's redis-server, for what the hub must not touch.
async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// The keys in the server, but the vacant epochs (one per hash slot at most: 16,384 whatever
/// is read), and how many of those there are.
async fn dbsize(redis: &RedisServer) -> (u64, u64) {
    let mut conn = redis_conn(redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let vacant = keys
        .iter()
        .filter(|k| herald_redis::testing::is_vacant_key(k))
        .count() as u64;
    assert!(vacant <= 16_384, "{vacant} vacant epochs");
    (keys.len() as u64 - vacant, vacant)
}

/// Stops every client of the server for `pause`: commands sent meanwhile wait, then run.
async fn stall(redis: &RedisServer, pause: Duration) {
    let mut conn = redis_conn(redis).await;
    let millis = u64::try_from(pause.as_millis()).unwrap();
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(millis)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Offsets no stream reaches: 1e14 (past Lua's 14 printed digits), 2^53, `u64::MAX`.
const FAR: [u64; 3] = [100_000_000_000_000, 1 << 53, u64::MAX];

async fn far_positions_are_refused_and_health_stays_ok(server: &Server) {
    let mut client = Client::connect(server).await;
    client
        .ok("publish", json!({"channel": "far", "data": 1}))
        .await;
    for channel in ["far", "never-published"] {
        for offset in FAR {
            let since = json!({"offset": offset, "epoch": "x"});
            let reply = client
                .call("history", json!({"channel": channel, "since": since}))
                .await;
            let code = error_code(&reply);
            assert!(
                code == 110 || code == 107,
                "{channel} since {offset}: {reply}"
            );
            assert_eq!(server.health().await, 200, "after since {offset}");
            let path = format!("/api/history/{channel}?since={offset}&epoch=x");
            let (status, body) = server.http("GET", &path, "").await;
            assert!(status == 409 || status == 400, "{path}: {status} {body}");
            assert_eq!(server.health().await, 200);
        }
    }
    let history = client.ok("history", json!({"channel": "far"})).await;
    assert_eq!(history["offset"], 1, "the channel is unharmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_an_offset_no_stream_holds_is_refused_and_health_stays_ok_on_redis() {
    let Some(redis) = RedisServer::start("history_since_an_offset_no_stream_holds") else {
        return;
    };
    let server = Server::redis(config(), &redis.url(), quick()).await;
    far_positions_are_refused_and_health_stays_ok(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_since_an_offset_no_stream_holds_is_refused_and_health_stays_ok_in_memory() {
    let server = Server::memory(config()).await;
    far_positions_are_refused_and_health_stays_ok(&server).await;
}

/// 10,000 `history` commands on unique channels (over four connections at once), and
/// subscribe, presence and unsubscribe on 200 more; every one reads as offset 0.
async fn read_unique_channels(server: &Server) {
    let readers: Vec<_> = (0..4).map(|r| read_unique(server, r, 2500)).collect();
    futures_util::future::join_all(readers).await;
    let mut client = Client::connect(server).await;
    for n in 0..200 {
        let channel = format!("unique:sub:{n}");
        client.ok("subscribe", json!({"channel": channel})).await;
        client.ok("presence", json!({"channel": channel})).await;
        client.ok("unsubscribe", json!({"channel": channel})).await;
    }
}

async fn read_unique(server: &Server, reader: usize, count: usize) {
    let mut client = Client::connect(server).await;
    let names: Vec<String> = (0..count).map(|n| format!("unique:{reader}:{n}")).collect();
    for chunk in names.chunks(500) {
        let commands: Vec<(&str, Value)> = chunk
            .iter()
            .map(|c| ("history", json!({"channel": c, "limit": 10})))
            .collect();
        for reply in client.calls(&commands).await {
            assert_eq!(reply["result"]["offset"], 0, "{reply}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unique_history_reads_create_no_redis_keys() {
    let Some(redis) = RedisServer::start("ten_thousand_unique_history_reads") else {
        return;
    };
    // 2,000 pipelined reads at once: on a loaded machine one may wait longer than the short
    // timeout the outage tests use, and this test is about keys, not timeouts.
    let mut options = quick();
    options.op_timeout = Duration::from_secs(3);
    let server = Server::redis(config(), &redis.url(), options).await;
    // One publication, so the vacant epoch's key exists before counting.
    Client::connect(&server)
        .await
        .ok("publish", json!({"channel": "warm", "data": 1}))
        .await;
    let (before, _) = dbsize(&redis).await;
    read_unique_channels(&server).await;
    assert_eq!(dbsize(&redis).await.0, before, "reads created Redis keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unique_history_reads_create_no_memory_streams() {
    let server = Server::memory(config()).await;
    read_unique_channels(&server).await;
    assert_eq!(
        server.retained(),
        Retained::default(),
        "reads created streams"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_past_the_history_bounds_get_106_and_http_507() {
    let mut config = config();
    config.history.max_channels = 5;
    config.history.max_bytes = 4096;
    let server = Server::memory(config).await;
    let mut client = Client::connect(&server).await;
    for n in 0..5 {
        let channel = format!("bounded:{n}");
        client
            .ok("publish", json!({"channel": channel, "data": n}))
            .await;
    }
    let refused = client
        .call("publish", json!({"channel": "bounded:5", "data": 5}))
        .await;
    assert_eq!(error_code(&refused), 106, "{refused}");
    let api = json!({"channel": "bounded:6", "data": 6}).to_string();
    let (status, body) = server.http("POST", "/api/publish", &api).await;
    assert_eq!(status, 507, "{body}");
    // Known channels go on; a publication bigger than every byte allowed does not.
    client
        .ok("publish", json!({"channel": "bounded:0", "data": "again"}))
        .await;
    let big = client
        .call(
            "publish",
            json!({"channel": "bounded:1", "data": "x".repeat(5000)}),
        )
        .await;
    assert_eq!(error_code(&big), 106, "{big}");
    assert_eq!(server.retained().channels, 5);
    let metrics = server.hub.metrics().render();
    assert!(
        metrics.contains(r#"limit="history.max_channels""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"limit="history.max_bytes""#),
        "{metrics}"
    );
    let (_, scraped) = server.http("GET", "/metrics", "").await;
    assert!(scraped.contains("herald_history_channels 5"), "{scraped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_redis_does_not_answer_in_time_gets_111_and_history_tells_if_it_landed() {
    let Some(redis) = RedisServer::start("a_publish_redis_does_not_answer_in_time") else {
        return;
    };
    let server = Server::redis(config(), &redis.url(), quick()).await;
    let mut client = Client::connect(&server).await;
    let first = client
        .ok("publish", json!({"channel": "slow", "data": 1}))
        .await;
    let pause = Duration::from_millis(1500);
    stall(&redis, pause).await;
    let unanswered = client
        .call("publish", json!({"channel": "slow", "data": 2}))
        .await;
    assert_eq!(error_code(&unanswered), 111, "{unanswered}");
    let api = json!({"channel": "slow", "data": 3}).to_string();
    let (status, body) = server.http("POST", "/api/publish", &api).await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("outcome unknown"), "{body}");
    tokio::time::sleep(pause).await;
    // The stall ended and Redis ran what was waiting: history says what landed.
    let since = json!({"offset": first["offset"], "epoch": first["epoch"]});
    let history = client
        .ok("history", json!({"channel": "slow", "since": since}))
        .await;
    let landed: Vec<&Value> = history["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["data"])
        .collect();
    assert_eq!(landed, [&json!(2), &json!(3)], "{history}");
    eventually("health back to ok", async || server.health().await == 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_survives_a_redis_stall_longer_than_the_member_lifetime() {
    let Some(redis) = RedisServer::start("presence_survives_a_redis_stall") else {
        return;
    };
    let server = Server::redis(config(), &redis.url(), quick()).await;
    // Another node, which sweeps expired members when it lists them.
    let other = RedisBroker::connect_with(&redis.url(), config().history, quick())
        .await
        .unwrap();
    let mut member = Client::connect(&server).await;
    member.ok("subscribe", json!({"channel": "room"})).await;
    let id = member.client_id.clone();
    eventually("the member is listed", async || listed(&other, &id).await).await;

    // The stall outlasts the member's lifetime: whoever lists first afterwards sweeps it.
    let pause = quick().member_lifetime * 2;
    stall(&redis, pause).await;
    tokio::time::sleep(pause + Duration::from_millis(50)).await;
    let _ = other.presence("room").await;
    let back = async || listed(&other, &id).await;
    eventually("the member is back after the stall", back).await;

    // Redis losing the keys outright is the same: the refresh adds the member back.
    let mut conn = redis_conn(&redis).await;
    let deleted: u64 = redis::cmd("DEL")
        .arg(&herald_redis::testing::channel_keys("room")[1..])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 2, "the presence keys were there to lose");
    let back = async || listed(&other, &id).await;
    eventually("the member is back after losing its keys", back).await;
}

/// Whether the node `other` lists client `id` in `room`.
async fn listed(other: &RedisBroker, id: &str) -> bool {
    let members = other.presence("room").await.unwrap_or_default();
    members.iter().any(|m| m.client == id)
}

/// On a Redis that has never seen a publish, a `history` of an empty channel and a recovery
/// from it agree on the vacant epoch (what the chat does on load), and reading set no key
/// for the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_new_redis_reads_of_an_empty_channel_agree_on_the_vacant_epoch() {
    let Some(redis) = RedisServer::start("reads_of_an_empty_channel_agree") else {
        return;
    };
    let broker = RedisBroker::connect_with(&redis.url(), config().history, quick())
        .await
        .unwrap();
    let query = || herald_hub::broker::HistoryQuery {
        after: 0,
        limit: 10,
        reverse: false,
    };
    let first = broker.history("empty", query()).await.unwrap();
    let second = broker.history("empty", query()).await.unwrap();
    assert_eq!(first.position.offset, 0);
    assert_eq!(first.position.epoch, second.position.epoch);
    assert_eq!(
        dbsize(&redis).await,
        (0, 1),
        "only the slot's vacant-epoch key"
    );
}
