//! Webhooks from three `herald serve` processes on one real redis-server: users and channels
//! coming and going across nodes produce each event exactly once (by id), in order per user,
//! signed; a SIGKILLed node's users go offline once its life expired.
#![allow(clippy::unwrap_used, unreachable_pub)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
mod common;

use common::Node;
use herald::{MaybeTlsStream, Message, WebSocket};
use herald_hub_protocol::SUBPROTOCOL;
use herald_redis::testing::RedisServer;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "cluster-secret";
const HOOK_SECRET: &str = "cluster-webhook-secret";
const WAIT: Duration = Duration::from_secs(20);

/// Every verified event by id (a repeat delivery lands on the same id), in first-delivery
/// order, and the POSTs whose signature did not verify.
#[derive(Default)]
struct Receiver {
    order: Mutex<Vec<String>>,
    by_id: Mutex<HashMap<String, Value>>,
    bad: Mutex<usize>,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let ts = headers.get("herald-timestamp").unwrap().as_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(ts);
    mac.update(b".");
    mac.update(&body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    if headers.get("herald-signature").unwrap().as_bytes() != expected.as_bytes() {
        *r.bad.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let batch: Value = serde_json::from_slice(&body).unwrap();
    for event in batch["events"].as_array().unwrap() {
        let id = event["id"].as_str().unwrap().to_owned();
        if r.by_id
            .lock()
            .unwrap()
            .insert(id.clone(), event.clone())
            .is_none()
        {
            r.order.lock().unwrap().push(id);
        }
    }
    StatusCode::OK
}

impl Receiver {
    async fn start() -> (SocketAddr, Arc<Self>) {
        let shared = Arc::new(Self::default());
        let app = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, shared)
    }

    /// `(event, user or channel)` of every distinct event, in first-delivery order.
    fn events(&self) -> Vec<(String, String)> {
        let by_id = self.by_id.lock().unwrap();
        self.order
            .lock()
            .unwrap()
            .iter()
            .map(|id| {
                let e = &by_id[id];
                let what = e.get("user").or(e.get("channel")).unwrap();
                (
                    e["event"].as_str().unwrap().to_owned(),
                    what.as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[(String, String)]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.events()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One `herald serve` process sending webhooks to `receiver`.
async fn node(redis: &str, receiver: SocketAddr) -> Node {
    let url = format!("http://{receiver}/events");
    Node::start(&[
        "--broker",
        redis,
        "--jwt-secret",
        SECRET,
        "--webhook-url",
        &url,
        "--webhook-secret",
        HOOK_SECRET,
        "--webhook-grace",
        "500ms",
        "--webhook-node-expiry",
        "2s",
        "--webhook-timeout",
        "1s",
    ])
    .await
}

/// A `herald.v1` connection of `user` to `node`, past its `connected` push.
async fn connect(node: &Node, user: &str) -> WebSocket<MaybeTlsStream> {
    let url = format!(
        "ws://{}/ws?token={}",
        node.addr,
        common::token(SECRET, user)
    );
    let builder = herald::ClientBuilder::new(&url)
        .unwrap()
        .subprotocol(SUBPROTOCOL);
    let (mut ws, _) = builder.connect().await.unwrap();
    loop {
        let Some(Ok(Message::Text(text))) = ws.recv().await else {
            panic!("closed before connected");
        };
        if serde_json::from_str::<Value>(&text).unwrap()["push"] == "connected" {
            return ws;
        }
    }
}

/// Subscribes and waits for the reply.
async fn subscribe(ws: &mut WebSocket<MaybeTlsStream>, channel: &str) {
    let call = json!({"id": 1, "method": "subscribe", "params": {"channel": channel}});
    ws.send(Message::text(call.to_string())).await.unwrap();
    loop {
        let Some(Ok(Message::Text(text))) = ws.recv().await else {
            panic!("closed before the subscribe reply");
        };
        let reply: Value = serde_json::from_str(&text).unwrap();
        if reply["id"] == 1 {
            assert!(reply.get("result").is_some(), "{reply}");
            return;
        }
    }
}

async fn close(mut ws: WebSocket<MaybeTlsStream>) {
    let _ = ws.close(herald::CloseCode::NORMAL, "bye").await;
    while let Some(Ok(_)) = ws.recv().await {}
}

/// The events about `what` whose name starts with `kind`, in delivery order.
fn of<'a>(events: &'a [(String, String)], kind: &str, what: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|(e, w)| w == what && e.starts_with(kind))
        .map(|(e, _)| e.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_emitted_once_per_cluster_in_order_and_a_killed_nodes_users_go_offline() {
    let Some(redis) = RedisServer::start("cluster_webhooks") else {
        return;
    };
    let (addr, receiver) = Receiver::start().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(&redis.url(), addr).await);
    }

    // Each user connects on two nodes, then leaves one after the other.
    let users: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let mut opened = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let first = connect(&nodes[i % 3], user).await;
        let second = connect(&nodes[(i + 1) % 3], user).await;
        opened.push((first, second));
    }
    // A channel with a subscriber on two nodes.
    let mut a = connect(&nodes[0], "reader-a").await;
    let mut b = connect(&nodes[1], "reader-b").await;
    subscribe(&mut a, "room").await;
    subscribe(&mut b, "room").await;
    receiver
        .wait_for("online and occupied", |e| {
            e.iter().filter(|(n, _)| n == "user_online").count() == 8
                && e.iter().any(|(n, _)| n == "channel_occupied")
        })
        .await;
    for (first, second) in opened {
        close(first).await;
        close(second).await;
    }
    close(a).await;
    close(b).await;
    receiver
        .wait_for("offline and vacated", |e| {
            e.iter().filter(|(n, _)| n == "user_offline").count() == 8
                && e.iter().any(|(n, _)| n == "channel_vacated")
        })
        .await;
    // Nothing more comes: each event once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = receiver.events();
    for user in users
        .iter()
        .map(String::as_str)
        .chain(["reader-a", "reader-b"])
    {
        assert_eq!(
            of(&events, "user_", user),
            ["user_online", "user_offline"],
            "{user}"
        );
    }
    // Presence is on: each reader is also a member of the room once.
    for reader in ["reader-a", "reader-b"] {
        let member = of(&events, "member_", reader);
        assert_eq!(member, ["member_added", "member_removed"], "{reader}");
    }
    assert_eq!(
        of(&events, "channel_", "room"),
        ["channel_occupied", "channel_vacated"]
    );
    assert_eq!(events.len(), 22, "{events:?}");

    // A user held only by node 3, which dies without closing anything.
    let _held = connect(&nodes[2], "kim").await;
    receiver
        .wait_for("kim online", |e| of(e, "user_", "kim") == ["user_online"])
        .await;
    nodes[2].kill().await;
    receiver
        .wait_for("kim offline after the node expiry", |e| {
            of(e, "user_", "kim") == ["user_online", "user_offline"]
        })
        .await;
    assert_eq!(*receiver.bad.lock().unwrap(), 0, "every signature verifies");
}
