//! The subscribe, publish and RPC hooks: a real backend (axum on 127.0.0.1:0) allows or
//! denies subscribes, moderates publications and answers RPCs; the hub's failure rule,
//! timeout and plain-mode behaviour hold when it is down or slow.
#![allow(clippy::unwrap_used)]

mod common;

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::{Client, Server, closed_with, next_text, plain};
use herald::Message;
use herald_hub::HubConfig;
use herald_hub::config::NamespaceConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the backend behaves, shared with the test.
#[derive(Default)]
struct Backend {
    /// Answer every call after this long.
    delay: Mutex<Option<Duration>>,
    /// Every call received, by hook.
    calls: Mutex<Vec<(&'static str, Value)>>,
}

type Shared = Arc<Backend>;

impl Backend {
    async fn record(&self, hook: &'static str, call: &Value) {
        self.calls.lock().unwrap().push((hook, call.clone()));
        let delay = *self.delay.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    fn calls(&self, hook: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(h, _)| *h == hook)
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// `chat:secret` is for members only; everything else is welcome, with a greeting.
async fn subscribe(State(b): State<Shared>, Json(call): Json<Value>) -> Json<Value> {
    b.record("subscribe", &call).await;
    if call["channel"] == "chat:secret" {
        return Json(json!({"allow": false, "reason": "members only"}));
    }
    Json(json!({"allow": true, "data": {"welcome": call["channel"]}}))
}

/// Spam is refused, "darn" becomes "d*rn", anything else passes as is.
async fn publish(State(b): State<Shared>, Json(call): Json<Value>) -> Json<Value> {
    b.record("publish", &call).await;
    let text = match &call["data"] {
        Value::String(s) => s.clone(),
        other => other["text"].as_str().unwrap_or_default().to_owned(),
    };
    if text.contains("spam") {
        return Json(json!({"allow": false, "reason": "no spam"}));
    }
    if !text.contains("darn") {
        return Json(json!({"allow": true}));
    }
    let clean = text.replace("darn", "d*rn");
    let data = match &call["data"] {
        Value::String(_) => json!(clean),
        _ => json!({"text": clean}),
    };
    Json(json!({"allow": true, "data": data}))
}

/// `upper` upper-cases a string; any other method is an application error.
async fn rpc(State(b): State<Shared>, Json(call): Json<Value>) -> Json<Value> {
    b.record("rpc", &call).await;
    match (call["method"].as_str(), call["data"].as_str()) {
        (Some("upper"), Some(text)) => Json(json!({"data": text.to_uppercase()})),
        _ => Json(json!({"error": {"code": 1404, "message": "no such method"}})),
    }
}

async fn backend() -> (SocketAddr, Shared) {
    let shared = Shared::default();
    let app = axum::Router::new()
        .route("/subscribe", post(subscribe))
        .route("/publish", post(publish))
        .route("/rpc", post(rpc))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

/// An address nothing listens on.
async fn nobody() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Namespace `chat` asks both hooks (and is where the plain route `/chat` leads); `free`
/// asks neither; every hook points at `addr`.
fn hooked(addr: SocketAddr) -> HubConfig {
    let mut c = common::config();
    c.history.size = 10;
    for (hook, path) in [
        (&mut c.hooks.subscribe, "subscribe"),
        (&mut c.hooks.publish, "publish"),
        (&mut c.hooks.rpc, "rpc"),
    ] {
        hook.url = Some(format!("http://{addr}/{path}"));
        hook.timeout = Duration::from_millis(300);
    }
    let chat = NamespaceConfig {
        subscribe_hook: Some(true),
        publish_hook: Some(true),
        ..NamespaceConfig::default()
    };
    c.namespaces.insert("chat".into(), chat);
    c.namespaces
        .insert("free".into(), NamespaceConfig::default());
    c
}

fn metric(server: &Server, line: &str) -> bool {
    server.hub.metrics().render().lines().any(|l| l == line)
}

mod subscribe_hook {
    //! Before a subscribe is registered the backend allows it, with data, or denies it.
    use super::*;

    #[tokio::test]
    async fn an_allowed_subscribe_carries_the_backends_data() {
        let (addr, backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let result = c.subscribe("chat:open").await;
        assert_eq!(result["data"], json!({"welcome": "chat:open"}));
        let call = &backend.calls("subscribe")[0];
        assert_eq!(call["channel"], "chat:open");
        assert_eq!(call["namespace"], "chat");
        assert_eq!(call["client"], c.client_id.as_str());
        assert!(call["user"].is_string());
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="subscribe",outcome="allow"} 1"#
        ));
    }

    #[tokio::test]
    async fn a_denied_subscribe_is_103_with_the_backends_reason() {
        let (addr, _backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let reply = c.call("subscribe", json!({"channel": "chat:secret"})).await;
        assert_eq!(reply["error"]["code"], 103);
        assert_eq!(reply["error"]["message"], "members only");
        // Nothing was registered: the same subscribe is asked again and denied again.
        let again = c.call("subscribe", json!({"channel": "chat:secret"})).await;
        assert_eq!(again["error"]["code"], 103);
    }

    #[tokio::test]
    async fn a_namespace_without_the_hook_is_not_asked() {
        let (addr, backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let result = c.subscribe("free:1").await;
        assert!(result.get("data").is_none(), "{result}");
        assert!(backend.calls("subscribe").is_empty());
    }

    #[tokio::test]
    async fn a_denied_plain_mode_room_closes_with_1008_after_the_upgrade() {
        let (addr, _backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut ws = plain(&server, "/chat?groupId=secret").await;
        assert_eq!(closed_with(&mut ws).await, 1008);
    }
}

mod publish_hook {
    //! Before a publication gets its offset the backend allows, rewrites or denies it.
    use super::*;

    #[tokio::test]
    async fn a_rewritten_publication_reaches_subscribers_and_history_rewritten() {
        let (addr, backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut reader = Client::connect(&server).await;
        reader.subscribe("chat:1").await;
        let mut writer = Client::connect(&server).await;
        writer
            .publish("chat:1", json!({"text": "oh darn it"}))
            .await;
        let push = reader.next_pub().await;
        assert_eq!(push["data"], json!({"text": "oh d*rn it"}));
        let history = reader.ok("history", json!({"channel": "chat:1"})).await;
        assert_eq!(
            history["publications"][0]["data"],
            json!({"text": "oh d*rn it"})
        );
        let call = &backend.calls("publish")[0];
        assert_eq!(call["channel"], "chat:1");
        assert_eq!(call["data"], json!({"text": "oh darn it"}));
        assert_eq!(call["client"], writer.client_id.as_str());
    }

    #[tokio::test]
    async fn an_allowed_publication_is_published_as_is() {
        let (addr, _backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        c.subscribe("chat:1").await;
        c.publish("chat:1", json!({"text": "hello", "n": 1})).await;
        assert_eq!(c.next_pub().await["data"], json!({"text": "hello", "n": 1}));
    }

    #[tokio::test]
    async fn a_denied_publication_is_103_with_the_reason_and_is_not_published() {
        let (addr, _backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let reply = c
            .call(
                "publish",
                json!({"channel": "chat:1", "data": {"text": "buy spam"}}),
            )
            .await;
        assert_eq!(reply["error"]["code"], 103);
        assert_eq!(reply["error"]["message"], "no spam");
        let history = c.ok("history", json!({"channel": "chat:1"})).await;
        assert_eq!(history["publications"], json!([]));
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="publish",outcome="deny"} 1"#
        ));
    }

    #[tokio::test]
    async fn publications_from_the_http_api_are_not_asked_about() {
        let (addr, backend) = backend().await;
        let mut config = hooked(addr);
        config.api.key = Some("k".into());
        let server = Server::start(config).await;
        let body = json!({"channel": "chat:1", "data": {"text": "darn"}}).to_string();
        let (status, _) = server.post("/api/publish", "X-API-Key: k\r\n", &body).await;
        assert_eq!(status, 200);
        assert!(backend.calls("publish").is_empty());
    }

    #[tokio::test]
    async fn plain_mode_text_is_rewritten_and_a_denied_message_closes_with_1008() {
        let (addr, backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut reader = plain(&server, "/chat?groupId=7").await;
        let mut writer = plain(&server, "/chat?groupId=7").await;
        writer.send(Message::text("darn you")).await.unwrap();
        assert_eq!(next_text(&mut reader).await, "d*rn you");
        assert_eq!(backend.calls("publish")[0]["data"], "darn you");
        writer.send(Message::text("spam")).await.unwrap();
        assert_eq!(closed_with(&mut writer).await, 1008);
    }

    #[tokio::test]
    async fn plain_mode_binary_goes_to_the_backend_as_base64() {
        let (addr, backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut reader = plain(&server, "/chat?groupId=8").await;
        let mut writer = plain(&server, "/chat?groupId=8").await;
        writer
            .send(Message::binary(vec![0xff, 0x00]))
            .await
            .unwrap();
        let delivered =
            tokio::time::timeout(common::WAIT, futures_util::StreamExt::next(&mut reader))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        assert!(matches!(delivered, Message::Binary(b) if b[..] == [0xff, 0x00]));
        let call = &backend.calls("publish")[0];
        assert_eq!(
            (&call["data"], &call["encoding"]),
            (&json!("/wA="), &json!("base64"))
        );
    }
}

mod rpc {
    //! `rpc` is forwarded to the backend and its answer returned.
    use super::*;

    #[tokio::test]
    async fn a_round_trip_returns_the_backends_data() {
        let (addr, backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let result = c
            .ok("rpc", json!({"method": "upper", "data": "hello"}))
            .await;
        assert_eq!(result, json!({"data": "HELLO"}));
        let call = &backend.calls("rpc")[0];
        assert_eq!(
            (&call["method"], &call["data"]),
            (&json!("upper"), &json!("hello"))
        );
        assert_eq!(call["client"], c.client_id.as_str());
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="rpc",outcome="ok"} 1"#
        ));
    }

    #[tokio::test]
    async fn the_backends_error_is_the_error_reply() {
        let (addr, _backend) = backend().await;
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let reply = c.call("rpc", json!({"method": "nope", "data": {}})).await;
        assert_eq!(
            reply["error"],
            json!({"code": 1404, "message": "no such method", "temporary": false})
        );
    }

    #[tokio::test]
    async fn without_a_url_rpc_is_an_unknown_method() {
        let server = Server::start(common::config()).await;
        let mut c = Client::connect(&server).await;
        let reply = c.call("rpc", json!({"method": "upper", "data": "x"})).await;
        assert_eq!(reply["error"]["code"], 102);
    }
}

mod failure {
    //! A backend that is down or slow: 109 (temporary), unless the hook fails open.
    use super::*;

    #[tokio::test]
    async fn a_backend_down_fails_closed_with_109() {
        let server = Server::start(hooked(nobody().await)).await;
        let mut c = Client::connect(&server).await;
        for (method, params) in [
            ("subscribe", json!({"channel": "chat:1"})),
            ("publish", json!({"channel": "chat:1", "data": 1})),
            ("rpc", json!({"method": "upper", "data": "x"})),
        ] {
            let reply = c.call(method, params).await;
            assert_eq!(reply["error"]["code"], 109, "{method}: {reply}");
            assert_eq!(reply["error"]["temporary"], true);
        }
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="subscribe",outcome="error"} 1"#
        ));
    }

    #[tokio::test]
    async fn with_fail_open_subscribe_and_publish_proceed() {
        let mut config = hooked(nobody().await);
        config.hooks.subscribe.fail_open = true;
        config.hooks.publish.fail_open = true;
        let server = Server::start(config).await;
        let mut c = Client::connect(&server).await;
        let result = c.subscribe("chat:1").await;
        assert!(result.get("data").is_none());
        c.publish("chat:1", json!({"text": "darn"})).await;
        assert_eq!(c.next_pub().await["data"], json!({"text": "darn"}));
    }

    #[tokio::test]
    async fn a_slow_backend_times_out_with_109() {
        let (addr, backend) = backend().await;
        *backend.delay.lock().unwrap() = Some(Duration::from_secs(2));
        let server = Server::start(hooked(addr)).await;
        let mut c = Client::connect(&server).await;
        let reply = c.call("rpc", json!({"method": "upper", "data": "x"})).await;
        assert_eq!(reply["error"]["code"], 109);
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="rpc",outcome="timeout"} 1"#
        ));
    }

    #[tokio::test]
    async fn a_backend_down_closes_a_plain_mode_room_with_1011() {
        let server = Server::start(hooked(nobody().await)).await;
        let mut ws = plain(&server, "/chat?groupId=1").await;
        assert_eq!(closed_with(&mut ws).await, 1011);
    }
}
