//! Three `herald serve` processes on one real redis-server: the server API and personal
//! channels reach a user whichever node it is connected to, listings count every node, and
//! the per-user connection limit holds over all of them.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

use herald::{MaybeTlsStream, Message, WebSocket};
use herald_hub_protocol::SUBPROTOCOL;
use herald_redis::testing::RedisServer;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "cluster-secret";
const KEY: &str = "cluster-key";
const WAIT: Duration = Duration::from_secs(20);

/// One `herald serve` node of the cluster, and its API.
struct Node {
    /// The process, kept running as long as the node is.
    _process: common::Node,
    addr: SocketAddr,
}

impl Node {
    async fn start(redis: &str, per_user: usize) -> Self {
        let per_user = per_user.to_string();
        let node = common::Node::start(&[
            "--broker",
            redis,
            "--jwt-secret",
            SECRET,
            "--api-key",
            KEY,
            "--max-connections-per-user",
            &per_user,
        ])
        .await;
        let addr = node.addr;
        Self {
            _process: node,
            addr,
        }
    }

    /// An API request; returns the status and the JSON body.
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-API-Key: {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(WAIT, tcp.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        let status = out[9..12].parse().unwrap();
        let json = out
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, json)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, json) = self.api("POST", path, Some(body)).await;
        assert_eq!(status, 200, "{path}: {json}");
        json
    }
}

fn token(user: &str) -> String {
    common::token(SECRET, user)
}

/// A `herald.v1` connection of a user.
struct Conn {
    ws: WebSocket<MaybeTlsStream>,
}

impl Conn {
    async fn open(node: &Node, user: &str) -> Self {
        let url = format!("ws://{}/ws?token={}", node.addr, token(user));
        let builder = herald::ClientBuilder::new(&url)
            .unwrap()
            .subprotocol(SUBPROTOCOL);
        let (ws, _) = builder.connect().await.unwrap();
        Self { ws }
    }

    /// Connects and reads `connected` and the personal channel's `subscribed`.
    async fn connect(node: &Node, user: &str) -> (Self, String) {
        let mut conn = Self::open(node, user).await;
        let connected = conn.next().await.unwrap();
        assert_eq!(connected["push"], "connected", "{connected}");
        let subscribed = conn.next().await.unwrap();
        assert_eq!(subscribed["push"], "subscribed", "{subscribed}");
        assert_eq!(subscribed["channel"], format!("#{user}"));
        (conn, connected["client"].as_str().unwrap().to_owned())
    }

    /// The next text message; `None` once closed.
    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("in time")
            {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).ok(),
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The close code the server sent.
    async fn closed_with(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(WAIT, self.ws.recv())
                .await
                .expect("in time")
            {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or(1005, |f| u16::from(f.code));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return 1006,
            }
        }
    }
}

async fn three_nodes(redis: &RedisServer, per_user: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Node::start(&redis.url(), per_user).await);
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_api_reaches_a_user_on_any_node_and_listings_count_every_node() {
    let Some(redis) = RedisServer::start("cluster_users_server_api") else {
        return;
    };
    let nodes = three_nodes(&redis, 0).await;
    // A user on node 2 gets a publish sent to node 1's API.
    let (mut on_two, _) = Conn::connect(&nodes[1], "ann").await;
    nodes[0]
        .post("/api/publish", json!({"user": "ann", "data": {"hi": 1}}))
        .await;
    let push = on_two.next().await.unwrap();
    assert_eq!(
        (push["push"].clone(), push["channel"].clone()),
        (json!("pub"), json!("#ann"))
    );
    assert_eq!(push["data"], json!({"hi": 1}));

    // Subscribe, unsubscribe and disconnect through node 3 reach a user on node 1.
    let (mut on_one, _) = Conn::connect(&nodes[0], "bob").await;
    let (mut kept, kept_id) = Conn::connect(&nodes[2], "bob").await;
    nodes[2]
        .post("/api/subscribe", json!({"user": "bob", "channel": "room"}))
        .await;
    for conn in [&mut on_one, &mut kept] {
        let push = conn.next().await.unwrap();
        assert_eq!(
            (push["push"].clone(), push["channel"].clone()),
            (json!("subscribed"), json!("room"))
        );
    }
    nodes[1]
        .post("/api/publish", json!({"channel": "room", "data": 5}))
        .await;
    assert_eq!(on_one.next().await.unwrap()["data"], 5);
    assert_eq!(kept.next().await.unwrap()["data"], 5);

    // Listings and node info count all three nodes: room has bob's two connections, on two
    // nodes; every node holds one connection.
    let (_, channels) = nodes[0].api("GET", "/api/channels?pattern=ro*", None).await;
    assert_eq!(channels["nodes"], 3, "{channels}");
    assert_eq!(channels["channels"], json!({"room": 2}));
    let (_, info) = nodes[1].api("GET", "/api/info", None).await;
    let per_node: Vec<u64> = info["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["connections"].as_u64().unwrap())
        .collect();
    assert_eq!(per_node, [1, 1, 1], "{info}");
    let (_, counts) = nodes[2].api("GET", "/api/presence_counts/room", None).await;
    assert_eq!(counts, json!({"clients": 2, "users": 1}));

    nodes[2]
        .post(
            "/api/unsubscribe",
            json!({"user": "bob", "channel": "room"}),
        )
        .await;
    let push = on_one.next().await.unwrap();
    assert_eq!(
        (push["push"].clone(), push["channel"].clone()),
        (json!("unsubscribed"), json!("room"))
    );
    kept.next().await.unwrap();

    let body = json!({"user": "bob", "except": kept_id});
    nodes[2].post("/api/disconnect", body).await;
    assert_eq!(on_one.closed_with().await, 4504);
    nodes[1]
        .post(
            "/api/disconnect",
            json!({"user": "bob", "code": 4100, "reason": "moved"}),
        )
        .await;
    assert_eq!(kept.closed_with().await, 4100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_user_connection_limit_holds_over_every_node() {
    let Some(redis) = RedisServer::start("cluster_users_connection_limit") else {
        return;
    };
    let nodes = three_nodes(&redis, 2).await;
    let (mut first, _) = Conn::connect(&nodes[0], "ann").await;
    let (_second, _) = Conn::connect(&nodes[1], "ann").await;
    let mut refused = Conn::open(&nodes[2], "ann").await;
    assert_eq!(refused.closed_with().await, 4503);
    let (_other_user, _) = Conn::connect(&nodes[2], "bob").await;
    first
        .ws
        .close(herald::CloseCode::NORMAL, "bye")
        .await
        .unwrap();
    // Read to the end of the closing handshake.
    first.closed_with().await;
    // The slot frees once node 1 saw the close; retry briefly.
    for _ in 0..100 {
        let mut again = Conn::open(&nodes[2], "ann").await;
        if again.next().await.is_some_and(|v| v["push"] == "connected") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a closed connection never freed its slot");
}
