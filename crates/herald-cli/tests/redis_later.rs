//! `herald serve` with a Redis that is not up yet: it serves degraded (health 503, publishes
//! refused with 109 as HTTP 503) and becomes healthy once Redis answers, without a restart.
#![allow(clippy::unwrap_used)]

mod common;

use herald_redis::testing::RedisServer;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "later-key";

async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut out))
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

#[tokio::test]
async fn serve_starts_degraded_without_redis_and_heals_when_it_appears() {
    let Some(mut redis) = RedisServer::start("redis_later") else {
        return;
    };
    redis.kill();
    let url = redis.url();
    let node = common::Node::start(&[
        "--broker",
        &url,
        "--api-key",
        KEY,
        "--redis-max-reconnect-delay",
        "500ms",
    ])
    .await;
    let addr = node.addr;

    let (status, health) = request(addr, "GET", "/healthz", "").await;
    assert_eq!((status, health["status"].as_str()), (503, Some("degraded")));
    let publish = r#"{"channel":"news","data":{"n":1}}"#;
    let (status, refused) = request(addr, "POST", "/api/publish", publish).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["code"], 109, "{refused}");

    redis.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = request(addr, "GET", "/healthz", "").await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthy once redis is up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, published) = request(addr, "POST", "/api/publish", publish).await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["offset"], 1, "{published}");
}
