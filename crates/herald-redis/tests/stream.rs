//! Emulated connections (`GET /stream` + `POST /stream/{session}`) on two hub nodes sharing a
//! real redis-server: a POST that lands on the node without the stream is delivered through
//! the control bus, so no sticky sessions are needed; once the stream's node is gone, a POST
//! for it is 404.
#![allow(clippy::unwrap_used)]

use herald_hub::{Hub, HubConfig};
use herald_redis::RedisBroker;
use herald_redis::testing::RedisServer;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

/// A hub node on the test's Redis, serving on 127.0.0.1:0 until stopped.
struct Node {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    async fn start(redis: &RedisServer) -> Self {
        let mut config = HubConfig::default();
        config.redis.op_timeout = Duration::from_secs(1);
        let broker = RedisBroker::connect(&redis.url(), config.history)
            .await
            .unwrap();
        let hub = Hub::with_broker(config, std::sync::Arc::new(broker)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(herald_hub::run(listener, hub, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}

/// A downstream read as raw text.
struct Downstream {
    tcp: TcpStream,
    text: String,
}

impl Downstream {
    async fn open(node: &Node) -> Self {
        let mut tcp = TcpStream::connect(node.addr).await.unwrap();
        let request = format!("GET /stream HTTP/1.1\r\nHost: {}\r\n\r\n", node.addr);
        tcp.write_all(request.as_bytes()).await.unwrap();
        Self {
            tcp,
            text: String::new(),
        }
    }

    /// Reads until `needle` arrived; returns everything read so far.
    async fn until(&mut self, needle: &str) -> &str {
        while !self.text.contains(needle) {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("{needle} in time; got {}", self.text))
                .unwrap();
            assert!(n > 0, "the stream ended before {needle}: {}", self.text);
            self.text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        &self.text
    }

    async fn session(&mut self) -> String {
        let text = self.until("\"}\n\n").await;
        let start = text.find("{\"session\":\"").unwrap() + 12;
        let end = start + text[start..].find('"').unwrap();
        text[start..end].to_owned()
    }
}

async fn post(node: &Node, session: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(node.addr).await.unwrap();
    let request = format!(
        "POST /stream/{session} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        node.addr,
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

#[tokio::test]
async fn a_post_on_another_node_reaches_the_stream_and_a_dead_nodes_session_is_404() {
    let Some(redis) = RedisServer::start("a_post_on_another_node_reaches_the_stream") else {
        return;
    };
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let mut downstream = Downstream::open(&a).await;
    let session = downstream.session().await;
    downstream.until("\"connected\"").await;
    let command = r#"{"id":41,"method":"subscribe","params":{"channel":"room"}}"#;
    let (status, response) = post(&b, &session, command).await;
    assert_eq!(status, 202, "{response}");
    downstream.until("{\"id\":41,\"result\"").await;
    let (status, _) = post(&a, &session, r#"{"id":42,"method":"ping"}"#).await;
    assert_eq!(status, 202, "on its own node too");
    downstream.until("{\"id\":42,").await;
    let forged = format!("{}.{:032x}", session.split_once('.').unwrap().0, 1);
    let (status, response) = post(&b, &forged, command).await;
    assert_eq!(status, 404, "{response}");
    assert!(response.ends_with("unknown session\n"), "{response}");
    a.stop().await;
    let (status, response) = post(&b, &session, command).await;
    assert_eq!(status, 404, "{response}");
    b.stop().await;
}

async fn get(node: &Node, target: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(node.addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        node.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// Polls `node` until an answer carries `needle`; returns the `last` it acknowledges.
async fn poll_until(node: &Node, session: &str, last: u64, needle: &str) -> u64 {
    let mut last = last;
    for _ in 0..50 {
        let (status, response) = get(node, &format!("/poll/{session}?last={last}")).await;
        assert_eq!(status, 200, "{response}");
        let body: serde_json::Value =
            serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let from = body["from"].as_u64().unwrap();
        assert_eq!(from, last + 1, "{body}");
        last += body["messages"].as_array().unwrap().len() as u64;
        if response.contains(needle) {
            return last;
        }
    }
    panic!("{needle} never came");
}

#[tokio::test]
async fn a_poll_on_another_node_gets_the_sessions_messages_and_a_dead_nodes_session_is_404() {
    let Some(redis) = RedisServer::start("a_poll_on_another_node_gets_the_sessions") else {
        return;
    };
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let (status, response) = get(&a, "/poll").await;
    assert_eq!(status, 200, "{response}");
    let start = response.find("{\"session\":\"").unwrap() + 12;
    let session = &response[start..start + response[start..].find('"').unwrap()];
    // Polls and POSTs alternate between the nodes, as a round-robin proxy sends them.
    let last = poll_until(&b, session, 0, "\"connected\"").await;
    let command = r#"{"id":41,"method":"subscribe","params":{"channel":"room"}}"#;
    let (status, response) = post(&b, session, command).await;
    assert_eq!(status, 202, "{response}");
    let last = poll_until(&a, session, last, "{\"id\":41,\"result\"").await;
    let ping = r#"{"id":42,"method":"ping"}"#;
    let mut tcp = TcpStream::connect(b.addr).await.unwrap();
    let request = format!(
        "POST /poll/{session} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ping}",
        b.addr,
        ping.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    poll_until(&b, session, last, "{\"id\":42,").await;
    a.stop().await;
    let (status, response) = get(&b, &format!("/poll/{session}?last={last}")).await;
    assert_eq!(status, 404, "{response}");
    b.stop().await;
}
