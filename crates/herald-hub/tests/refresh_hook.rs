//! The refresh hook: a connection the connect hook admitted with an expiry is extended by the
//! backend before it ends, closed with 4501 at its expiry when the backend says no, and never
//! kept past its expiry when the backend is down.
#![allow(clippy::unwrap_used)]

mod common;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::{Server, closed_with};
use futures_util::StreamExt;
use herald_hub::HubConfig;
use herald_hub_protocol::SUBPROTOCOL;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds a session lasts from the connect hook.
const LIFE: u64 = 3;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Refresh calls received.
type Calls = Arc<Mutex<Vec<Value>>>;

/// Everybody is let in for `LIFE` seconds, named by the `user` query parameter.
async fn connect(Json(call): Json<Value>) -> Json<Value> {
    let user = call["query"].as_str().unwrap().trim_start_matches("user=");
    Json(json!({"allow": true, "user": user, "channels": ["*"], "expires": now() + LIFE}))
}

/// Ann's session goes on for ten minutes; anyone else's ends.
async fn refresh(State(calls): State<Calls>, Json(call): Json<Value>) -> Json<Value> {
    calls.lock().unwrap().push(call.clone());
    if call["user"] == "ann" {
        return Json(json!({"allow": true, "expires": now() + 600}));
    }
    Json(json!({"allow": false}))
}

async fn backend() -> (SocketAddr, Calls) {
    let calls = Calls::default();
    let app = axum::Router::new()
        .route("/connect", post(connect))
        .route("/refresh", post(refresh))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calls)
}

fn hooked(connect: SocketAddr, refresh: SocketAddr) -> HubConfig {
    let mut c = common::config();
    c.hooks.connect.url = Some(format!("http://{connect}/connect"));
    c.hooks.refresh.url = Some(format!("http://{refresh}/refresh"));
    c.hooks.refresh.timeout = Duration::from_millis(300);
    c
}

async fn open(server: &Server, user: &str) -> common::Ws {
    let url = server.url(&format!("/ws?user={user}"));
    let builder = herald::ClientBuilder::new(&url)
        .unwrap()
        .subprotocol(SUBPROTOCOL);
    builder.connect().await.unwrap().0
}

/// Every text message until `wait` passed or the connection closed.
async fn texts_for(ws: &mut common::Ws, wait: Duration) -> Vec<Value> {
    let mut texts = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let herald::Message::Text(text) = message {
            texts.push(serde_json::from_str(&text).unwrap());
        }
    }
    texts
}

#[tokio::test]
async fn an_allowed_refresh_keeps_the_connection_past_its_first_expiry_without_a_push() {
    let (addr, calls) = backend().await;
    let server = Server::start(hooked(addr, addr)).await;
    let mut ws = open(&server, "ann").await;
    let texts = texts_for(&mut ws, Duration::from_secs(LIFE + 2)).await;
    assert_eq!(texts[0]["push"], "connected");
    assert!(
        texts.iter().all(|t| t["push"] != "refresh"),
        "no refresh push: {texts:?}"
    );
    let open = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
    assert!(open.is_err(), "still open past the first expiry: {open:?}");
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["user"], "ann");
    assert_eq!(calls[0]["client"], texts[0]["client"]);
    assert!(calls[0]["expires"].as_u64().unwrap() <= now() + LIFE);
    let line = r#"herald_hook_calls_total{hook="refresh",outcome="allow"} 1"#;
    assert!(server.hub.metrics().render().lines().any(|l| l == line));
}

#[tokio::test]
async fn a_denied_refresh_closes_with_4501_at_the_expiry() {
    let (addr, calls) = backend().await;
    let server = Server::start(hooked(addr, addr)).await;
    let mut ws = open(&server, "bob").await;
    let started = std::time::Instant::now();
    assert_eq!(closed_with(&mut ws).await, 4501);
    assert!(started.elapsed() >= Duration::from_secs(LIFE - 1));
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refresh_backend_that_is_down_never_keeps_a_connection_past_its_expiry() {
    let (addr, _calls) = backend().await;
    let nobody = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = nobody.local_addr().unwrap();
    drop(nobody);
    let server = Server::start(hooked(addr, down)).await;
    let mut ws = open(&server, "ann").await;
    let started = std::time::Instant::now();
    assert_eq!(closed_with(&mut ws).await, 4501);
    assert!(started.elapsed() < Duration::from_secs(LIFE + 2));
    let text = server.hub.metrics().render();
    assert!(
        text.contains(r#"herald_hook_calls_total{hook="refresh",outcome="error"}"#),
        "{text}"
    );
}
