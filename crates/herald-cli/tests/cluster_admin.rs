//! The admin page's data over two `herald serve` nodes on one real redis-server: either node's
//! `/admin/api/overview` lists both nodes and the channels subscribed on each, and refuses
//! wrong credentials.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use herald_redis::testing::RedisServer;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "cluster-admin-password";

/// `GET path` with Basic `user:password`: the status and the JSON body.
async fn get(addr: SocketAddr, path: &str, password: &str) -> (u16, Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\n\
         Connection: close\r\n\r\n"
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_string(&mut out))
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

/// Holds an event stream of `channel` open on `addr` (a subscriber there) until dropped.
async fn subscriber(addr: SocketAddr, channel: &str) -> tokio::net::TcpStream {
    let request =
        format!("GET /sse?channel={channel} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head[9..12], b"200");
    tcp
}

#[tokio::test]
async fn the_admin_overview_counts_every_node_of_the_cluster() {
    let Some(redis) = RedisServer::start("cluster_admin") else {
        return;
    };
    let url = redis.url();
    let args = ["--broker", &url, "--admin", "--admin-password", PASSWORD];
    let (a, b) = (
        common::Node::start(&args).await,
        common::Node::start(&args).await,
    );
    let _on_a = subscriber(a.addr, "room").await;
    let _on_b = subscriber(b.addr, "room").await;
    let _only_b = subscriber(b.addr, "other").await;
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, overview) = get(a.addr, "/admin/api/overview", PASSWORD).await;
        assert_eq!(status, 200, "{overview}");
        let channels = &overview["channels"]["channels"];
        if overview["nodes"].as_array().map(Vec::len) == Some(2)
            && channels["room"] == 2
            && channels["other"] == 1
        {
            let (_, from_b) = get(b.addr, "/admin/api/overview", PASSWORD).await;
            assert_eq!(from_b["nodes"], overview["nodes"]);
            assert_eq!(get(a.addr, "/admin", "wrong-password").await.0, 401);
            return;
        }
        last = overview;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the overview never showed both nodes: {last}");
}
