//! The connect hook: a real backend (axum on 127.0.0.1:0, sessions in cookies) admits or
//! refuses each WebSocket handshake before the 101; the hub's timeout, in-flight bound,
//! circuit breaker and failure rule hold when it misbehaves.
#![allow(clippy::unwrap_used)]

mod common;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::{Server, WAIT};
use futures_util::StreamExt;
use herald::Message;
use herald_hub::HubConfig;
use herald_hub::auth::{Claims, issue_hs256};
use herald_hub_protocol::SUBPROTOCOL;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the backend's hook endpoint behaves.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Admit a known `sid` cookie, deny others with 401.
    Sessions,
    /// Deny every request with 403 and a body.
    Forbid,
    /// Answer after this long.
    Slow(Duration),
    /// Answer with a valid allow of more than 64 KiB.
    Huge,
}

struct Backend {
    sessions: Mutex<HashMap<String, String>>,
    behaviour: Mutex<Behaviour>,
    /// Hook requests received.
    calls: AtomicUsize,
    /// The last hook request's JSON.
    last: Mutex<Value>,
}

type Shared = Arc<Backend>;

async fn login(State(backend): State<Shared>, user: String) -> Response {
    let sid = format!("s{:016x}", rand_sid());
    backend.sessions.lock().unwrap().insert(sid.clone(), user);
    ([(header::SET_COOKIE, format!("sid={sid}; HttpOnly"))], "ok").into_response()
}

fn rand_sid() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) as u64 * 0x9e37_79b9
}

async fn hook(State(backend): State<Shared>, Json(call): Json<Value>) -> Response {
    backend.calls.fetch_add(1, Ordering::SeqCst);
    *backend.last.lock().unwrap() = call.clone();
    let behaviour = *backend.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Forbid => {
            return Json(json!({"allow": false, "status": 403, "body": "banned"})).into_response();
        }
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Huge => {
            let info = "x".repeat(100 * 1024);
            return Json(json!({"allow": true, "user": "big", "info": info})).into_response();
        }
        Behaviour::Sessions => {}
    }
    let cookie = call["headers"]["cookie"].as_str().unwrap_or("");
    let sid = cookie
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "sid")
        .map(|(_, value)| value.to_owned());
    let user = sid.and_then(|sid| backend.sessions.lock().unwrap().get(&sid).cloned());
    match user {
        Some(user) => Json(json!({
            "allow": true,
            "user": user,
            "info": {"name": user},
            "channels": ["chat:*"],
            "subs": ["alerts"],
        }))
        .into_response(),
        None => {
            Json(json!({"allow": false, "status": 401, "body": "login required"})).into_response()
        }
    }
}

/// A backend on 127.0.0.1:0.
async fn backend(behaviour: Behaviour) -> (SocketAddr, Shared) {
    let shared = Arc::new(Backend {
        sessions: Mutex::new(HashMap::new()),
        behaviour: Mutex::new(behaviour),
        calls: AtomicUsize::new(0),
        last: Mutex::new(Value::Null),
    });
    let app = axum::Router::new()
        .route("/login", post(login))
        .route("/hook", post(hook))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

/// Logs `user` in over real HTTP and returns the `sid=…` cookie pair.
async fn log_in(backend: SocketAddr, user: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(backend).await.unwrap();
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {backend}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{user}",
        user.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let line = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a Set-Cookie");
    line["set-cookie:".len()..]
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn hooked(backend: SocketAddr) -> HubConfig {
    let mut config = common::config();
    config.hooks.connect.url = Some(format!("http://{backend}/hook"));
    config
}

/// An address nothing listens on.
async fn nothing_listening() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A protocol-mode handshake with `headers`, raw: the status and the body of a refusal (for a
/// 101, the head only).
async fn handshake(server: &Server, headers: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{headers}\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if out.len() >= end + 4 + length {
                    break;
                }
            }
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("an answer");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// A protocol-mode connection with `cookie`; returns the socket and its `connected` push.
async fn connect(server: &Server, cookie: Option<&str>) -> (common::Ws, Value) {
    let mut builder = herald::ClientBuilder::new(&server.url("/ws"))
        .unwrap()
        .subprotocol(SUBPROTOCOL);
    if let Some(cookie) = cookie {
        builder = builder.header("Cookie", cookie).unwrap();
    }
    let (mut ws, _) = builder.connect().await.expect("connected");
    let connected = next_json(&mut ws).await;
    assert_eq!(connected["push"], "connected", "{connected}");
    (ws, connected)
}

async fn next_json(ws: &mut common::Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

fn metric(server: &Server, line: &str) -> bool {
    server.hub.metrics().render().lines().any(|l| l == line)
}

mod admission {
    //! The backend's allow and deny.
    use super::*;

    #[tokio::test]
    async fn a_client_with_a_session_cookie_connects_as_the_backends_user() {
        let (addr, backend) = backend(Behaviour::Sessions).await;
        let cookie = log_in(addr, "ann").await;
        let server = Server::start(hooked(addr)).await;
        let (_ws, connected) = connect(&server, Some(&format!("theme=dark; {cookie}"))).await;
        assert_eq!(connected["user"], "ann");
        let call = backend.last.lock().unwrap().clone();
        assert_eq!(call["method"], "GET");
        assert_eq!(call["path"], "/ws");
        assert_eq!(call["ip"], "127.0.0.1");
        assert_eq!(call["protocol"], json!([SUBPROTOCOL]));
        assert!(
            call["headers"]["cookie"]
                .as_str()
                .unwrap()
                .contains(&cookie)
        );
        assert!(
            call["headers"].get("host").is_none(),
            "not on the allow-list"
        );
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="allow"} 1"#
        ));
        assert!(
            server
                .hub
                .metrics()
                .render()
                .contains(r#"herald_hook_latency_seconds_count{hook="connect"} 1"#)
        );
    }

    #[tokio::test]
    async fn a_client_without_a_session_gets_the_backends_401_before_any_upgrade() {
        let (addr, _backend) = backend(Behaviour::Sessions).await;
        let server = Server::start(hooked(addr)).await;
        let (status, body) = handshake(&server, "Cookie: sid=forged\r\n").await;
        assert_eq!((status, body.as_str()), (401, "login required"));
        assert!(metric(
            &server,
            r#"herald_handshake_rejections_total{status="401"} 1"#
        ));
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="deny"} 1"#
        ));
    }

    #[tokio::test]
    async fn over_http2_the_backend_admits_a_session_and_refuses_one_without() {
        let (addr, backend) = backend(Behaviour::Sessions).await;
        let cookie = log_in(addr, "ann").await;
        let server = Server::start(hooked(addr)).await;
        let builder = || {
            herald::ClientBuilder::new(&server.url("/ws"))
                .unwrap()
                .subprotocol(SUBPROTOCOL)
        };
        let connection = herald::h2::Http2Connection::open(&builder()).await.unwrap();
        let with_session = builder().header("Cookie", &cookie).unwrap();
        let (mut ws, _) = connection.websocket(&with_session).await.unwrap();
        let connected = next_json(&mut ws).await;
        assert_eq!(connected["user"], "ann", "{connected}");
        let call = backend.last.lock().unwrap().clone();
        assert_eq!(call["path"], "/ws");
        // The same call as for an HTTP/1.1 upgrade.
        assert_eq!(call["method"], "GET", "{call}");
        assert_eq!(call["protocol"], json!([SUBPROTOCOL]));
        match connection.websocket(&builder()).await.unwrap_err() {
            herald::Error::Handshake(herald_proto::HandshakeError::Rejected(response)) => {
                assert_eq!(response.status.as_u16(), 401);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_deny_with_403_and_a_body_reaches_the_client_as_sent() {
        let (addr, _backend) = backend(Behaviour::Forbid).await;
        let server = Server::start(hooked(addr)).await;
        assert_eq!(handshake(&server, "").await, (403, "banned".into()));
        assert!(metric(
            &server,
            r#"herald_handshake_rejections_total{status="403"} 1"#
        ));
    }

    #[tokio::test]
    async fn the_hooks_subs_are_subscribed_with_a_subscribed_push() {
        let (addr, _backend) = backend(Behaviour::Sessions).await;
        let cookie = log_in(addr, "bob").await;
        let server = Server::start(hooked(addr)).await;
        let (mut ws, _) = connect(&server, Some(&cookie)).await;
        loop {
            let push = next_json(&mut ws).await;
            if push["push"] == "subscribed" && push["channel"] == "alerts" {
                break;
            }
        }
    }

    #[tokio::test]
    async fn a_plain_mode_client_is_admitted_by_the_hook_too() {
        let (addr, _backend) = backend(Behaviour::Sessions).await;
        let cookie = log_in(addr, "cy").await;
        let server = Server::start(hooked(addr)).await;
        let builder = herald::ClientBuilder::new(&server.url("/chat?groupId=1"))
            .unwrap()
            .header("Cookie", &cookie)
            .unwrap();
        assert!(builder.connect().await.is_ok());
        let refused = herald::connect(&server.url("/chat?groupId=1")).await;
        assert!(refused.is_err(), "no cookie, no room");
    }

    #[tokio::test]
    async fn a_valid_token_is_used_and_the_hook_is_not_called() {
        let (addr, backend) = backend(Behaviour::Sessions).await;
        let mut config = hooked(addr);
        config.auth.hs256_secret = Some("s3".into());
        let server = Server::start(config).await;
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let claims = Claims {
            sub: "tok".into(),
            exp,
            channels: vec![],
            subscribe: vec![],
            publish: vec![],
            subs: vec![],
        };
        let token = issue_hs256("s3", &claims).unwrap();
        let url = server.url(&format!("/ws?token={token}"));
        let (mut ws, _) = herald::ClientBuilder::new(&url)
            .unwrap()
            .subprotocol(SUBPROTOCOL)
            .connect()
            .await
            .unwrap();
        assert_eq!(next_json(&mut ws).await["user"], "tok");
        assert_eq!(backend.calls.load(Ordering::SeqCst), 0);
        let (status, _) = handshake(&server, "").await;
        assert_eq!(status, 401, "no token: the hook decides");
        assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
    }
}

mod failures {
    //! A backend that is down, slow, flooded or answers too much.
    use super::*;

    #[tokio::test]
    async fn a_backend_that_is_down_fails_closed_with_503() {
        let server = Server::start(hooked(nothing_listening().await)).await;
        let (status, body) = handshake(&server, "").await;
        assert_eq!((status, body.as_str()), (503, "backend unavailable\n"));
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="error"} 1"#
        ));
        assert!(metric(
            &server,
            r#"herald_handshake_rejections_total{status="503"} 1"#
        ));
    }

    #[tokio::test]
    async fn with_fail_open_a_backend_that_is_down_applies_the_anonymous_policy() {
        let mut config = hooked(nothing_listening().await);
        config.hooks.connect.fail_open = true;
        let server = Server::start(config).await;
        let (_ws, connected) = connect(&server, None).await;
        assert_eq!(connected["user"], "");
        let mut closed = hooked(nothing_listening().await);
        closed.hooks.connect.fail_open = true;
        closed.auth.allow_anonymous = Some(false);
        let server = Server::start(closed).await;
        assert_eq!(handshake(&server, "").await.0, 401);
    }

    #[tokio::test]
    async fn a_slow_backend_times_out_with_503_within_about_the_timeout() {
        let (addr, _backend) = backend(Behaviour::Slow(Duration::from_secs(5))).await;
        let mut config = hooked(addr);
        config.hooks.connect.timeout = Duration::from_millis(300);
        let server = Server::start(config).await;
        let started = Instant::now();
        assert_eq!(handshake(&server, "").await.0, 503);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="timeout"} 1"#
        ));
    }

    #[tokio::test]
    async fn past_max_in_flight_a_handshake_is_refused_with_503_at_once() {
        let (addr, backend) = backend(Behaviour::Slow(Duration::from_secs(2))).await;
        let mut config = hooked(addr);
        config.hooks.connect.max_in_flight = 1;
        config.hooks.connect.timeout = Duration::from_secs(5);
        let server = Arc::new(Server::start(config).await);
        let first = tokio::spawn({
            let server = server.clone();
            async move { handshake(&server, "").await }
        });
        common::wait_for(|| backend.calls.load(Ordering::SeqCst) == 1).await;
        let started = Instant::now();
        let (status, body) = handshake(&server, "").await;
        assert_eq!(status, 503, "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(backend.calls.load(Ordering::SeqCst), 1, "no second call");
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="overloaded"} 1"#
        ));
        // The held call ends with the backend's deny (no cookie).
        assert_eq!(first.await.unwrap().0, 401);
    }

    #[tokio::test]
    async fn an_answer_over_64_kib_is_refused_as_a_failed_call() {
        let (addr, _backend) = backend(Behaviour::Huge).await;
        let server = Server::start(hooked(addr)).await;
        assert_eq!(handshake(&server, "").await.0, 503);
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="error"} 1"#
        ));
    }

    #[tokio::test]
    async fn the_circuit_opens_after_n_failures_and_closes_after_the_cooldown() {
        let (addr, backend) = backend(Behaviour::Slow(Duration::from_secs(5))).await;
        let mut config = hooked(addr);
        config.hooks.connect.timeout = Duration::from_millis(100);
        config.hooks.connect.breaker_failures = 3;
        config.hooks.connect.breaker_cooldown = Duration::from_millis(500);
        let server = Server::start(config).await;
        for _ in 0..3 {
            assert_eq!(handshake(&server, "").await.0, 503);
        }
        assert_eq!(backend.calls.load(Ordering::SeqCst), 3);
        for _ in 0..3 {
            assert_eq!(handshake(&server, "").await.0, 503);
        }
        assert_eq!(
            backend.calls.load(Ordering::SeqCst),
            3,
            "calls skipped while open"
        );
        assert!(metric(
            &server,
            r#"herald_hook_calls_total{hook="connect",outcome="open_circuit"} 3"#
        ));
        *backend.behaviour.lock().unwrap() = Behaviour::Sessions;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let cookie = log_in(addr, "dee").await;
        let (_ws, connected) = connect(&server, Some(&cookie)).await;
        assert_eq!(connected["user"], "dee");
        assert_eq!(backend.calls.load(Ordering::SeqCst), 4);
    }
}
