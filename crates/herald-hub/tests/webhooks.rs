//! Webhooks on one node (the memory broker): a real receiver (axum on 127.0.0.1:0) gets each
//! event once, signed, in order, after the grace delay; a reconnect within it is invisible;
//! a failing receiver gets the same events again; a full outbox drops and counts.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Client, Server, wait_for};
use herald_hub::HubConfig;
use herald_hub::config::NamespaceConfig;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "jwt-secret";
const HOOK_SECRET: &str = "webhook-secret";
const GRACE: Duration = Duration::from_millis(300);

/// The receiver: every event of every verified POST, and how many POSTs it refused.
#[derive(Default)]
struct Receiver {
    events: Mutex<Vec<Value>>,
    bad_signatures: Mutex<usize>,
    /// Answer 500 to this many POSTs first.
    fail_first: Mutex<usize>,
    posts: Mutex<usize>,
}

type Shared = Arc<Receiver>;

fn verified(headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (
        headers.get("herald-timestamp"),
        headers.get("herald-signature"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    sig.as_bytes() == expected.as_bytes()
}

async fn events(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *r.posts.lock().unwrap() += 1;
    {
        let mut fail = r.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    if !verified(&headers, &body) {
        *r.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let batch: Value = serde_json::from_slice(&body).unwrap();
    let first = batch["events"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["herald-webhook-id"], first.as_str());
    r.events
        .lock()
        .unwrap()
        .extend(batch["events"].as_array().unwrap().iter().cloned());
    StatusCode::NO_CONTENT
}

async fn receiver() -> (SocketAddr, Shared) {
    let shared = Shared::default();
    let app = axum::Router::new()
        .route("/events", post(events))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

impl Receiver {
    /// `(event, user or channel)` of every event so far, in delivery order.
    fn names(&self) -> Vec<(String, String)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                let what = e.get("user").or(e.get("channel")).unwrap();
                (
                    e["event"].as_str().unwrap().to_owned(),
                    what.as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

/// Webhooks to `addr`; namespace `room` has presence and publication events.
fn config(addr: SocketAddr) -> HubConfig {
    let mut c = common::config();
    c.auth.hs256_secret = Some(SECRET.into());
    c.webhooks.url = Some(format!("http://{addr}/events"));
    c.webhooks.secret = Some(HOOK_SECRET.into());
    c.webhooks.grace = GRACE;
    let room = NamespaceConfig {
        presence: Some(true),
        webhook_publications: Some(true),
        ..NamespaceConfig::default()
    };
    c.namespaces.insert("room".into(), room);
    let quiet = NamespaceConfig {
        presence: Some(false),
        ..NamespaceConfig::default()
    };
    c.namespaces.insert("quiet".into(), quiet);
    // The default plain route's rooms (`chat:…`) need a namespace too.
    c.namespaces
        .insert("chat".into(), NamespaceConfig::default());
    c
}

async fn connect(server: &Server, user: &str) -> Client {
    let token = common::user_token(SECRET, user, &[]);
    Client::connect_url(&format!("{}?token={token}", server.url("/ws"))).await
}

fn pair(event: &str, what: &str) -> (String, String) {
    (event.to_owned(), what.to_owned())
}

#[tokio::test]
async fn a_users_first_connection_and_last_departure_are_one_online_and_one_offline() {
    let (addr, r) = receiver().await;
    let server = Server::start(config(addr)).await;
    let one = connect(&server, "ann").await;
    let two = connect(&server, "ann").await;
    wait_for(|| r.count() == 1).await;
    drop(one);
    tokio::time::sleep(GRACE * 2).await;
    assert_eq!(
        r.names(),
        vec![pair("user_online", "ann")],
        "one still open"
    );
    drop(two);
    wait_for(|| r.count() == 2).await;
    assert_eq!(
        r.names(),
        vec![pair("user_online", "ann"), pair("user_offline", "ann")]
    );
    let events = r.events.lock().unwrap().clone();
    assert_ne!(events[0]["id"], events[1]["id"]);
    assert!(events[0]["time_ms"].as_u64().unwrap() <= events[1]["time_ms"].as_u64().unwrap());
    assert_eq!(*r.bad_signatures.lock().unwrap(), 0);
    // Counted once the POST returned, which may be just after the receiver recorded it.
    let sent = r#"herald_webhook_events_total{outcome="sent"} 2"#;
    wait_for(|| server.hub.metrics().render().lines().any(|l| l == sent)).await;
}

#[tokio::test]
async fn a_reconnect_within_the_grace_delay_produces_no_event() {
    let (addr, r) = receiver().await;
    let server = Server::start(config(addr)).await;
    let first = connect(&server, "bob").await;
    wait_for(|| r.count() == 1).await;
    drop(first);
    tokio::time::sleep(GRACE / 3).await;
    let _back = connect(&server, "bob").await;
    tokio::time::sleep(GRACE * 3).await;
    assert_eq!(r.names(), vec![pair("user_online", "bob")]);
}

#[tokio::test]
async fn channels_and_members_come_and_go_once_and_publications_are_sent_where_asked() {
    let (addr, r) = receiver().await;
    let server = Server::start(config(addr)).await;
    let mut ann = connect(&server, "ann").await;
    let mut ann_again = connect(&server, "ann").await;
    ann.subscribe("room:1").await;
    ann_again.subscribe("room:1").await;
    ann.subscribe("quiet:1").await;
    ann.publish("room:1", json!({"text": "hi"})).await;
    ann.publish("quiet:1", json!({"text": "not sent"})).await;
    wait_for(|| r.count() >= 5).await;
    let names = r.names();
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(names[0], pair("user_online", "ann"));
    let mut rest = names[1..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            pair("channel_occupied", "quiet:1"),
            pair("channel_occupied", "room:1"),
            pair("member_added", "ann"),
            pair("publication", "ann"),
        ]
    );
    let publication = r
        .events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "publication")
        .cloned()
        .unwrap();
    assert_eq!(publication["channel"], "room:1");
    assert_eq!(publication["data"], json!({"text": "hi"}));
    assert_eq!(publication["offset"], 1);
    assert_eq!(publication["client"], ann.client_id.as_str());
    // The quiet namespace has no presence: no member events there.
    ann.ok("unsubscribe", json!({"channel": "room:1"})).await;
    tokio::time::sleep(GRACE * 2).await;
    assert_eq!(r.count(), 5, "the other connection still holds room:1");
    drop(ann_again);
    drop(ann);
    wait_for(|| r.count() >= 9).await;
    assert_eq!(r.count(), 9, "{:?}", r.names());
    let mut gone = r.names()[5..].to_vec();
    gone.sort();
    assert_eq!(
        gone,
        vec![
            pair("channel_vacated", "quiet:1"),
            pair("channel_vacated", "room:1"),
            pair("member_removed", "ann"),
            pair("user_offline", "ann"),
        ]
    );
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_events_again_until_it_takes_them() {
    let (addr, r) = receiver().await;
    *r.fail_first.lock().unwrap() = 2;
    let server = Server::start(config(addr)).await;
    let _c = connect(&server, "cat").await;
    wait_for(|| r.count() == 1).await;
    assert_eq!(r.names(), vec![pair("user_online", "cat")]);
    assert_eq!(*r.posts.lock().unwrap(), 3, "two failures, then delivered");
    let failed = r#"herald_webhook_events_total{outcome="failed"} 2"#;
    wait_for(|| server.hub.metrics().render().lines().any(|l| l == failed)).await;
}

#[tokio::test]
async fn a_full_outbox_drops_events_and_counts_them() {
    // Nothing listens at the URL: every event stays queued.
    let nobody = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(nobody.local_addr().unwrap());
    drop(nobody);
    cfg.webhooks.max_queue = 2;
    let server = Server::start(cfg).await;
    let mut clients = Vec::new();
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        clients.push(connect(&server, user).await);
    }
    let line = r#"herald_webhook_events_total{outcome="dropped"} 3"#;
    wait_for(|| server.hub.metrics().render().lines().any(|l| l == line)).await;
    let queue = "herald_webhook_queue 2";
    wait_for(|| server.hub.metrics().render().lines().any(|l| l == queue)).await;
}

#[tokio::test]
async fn webhooks_without_a_secret_or_with_an_unknown_event_are_refused() {
    let mut cfg = HubConfig::default();
    cfg.webhooks.url = Some("http://127.0.0.1:9/events".into());
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.key(), "webhooks.secret");
    cfg.webhooks.secret = Some("s".into());
    cfg.webhooks.events = vec!["user_online".into(), "user_renamed".into()];
    assert_eq!(cfg.validate().unwrap_err().key(), "webhooks.events");
}
