//! Long-polling (`GET /poll`, `GET /poll/{session}?last=N`, `POST /poll/{session}`): the
//! herald.v1 session over polls, over real sockets; what a lost answer, a client that stops
//! polling, one that never acknowledges, and hostile requests get.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn poll_config() -> herald_hub::HubConfig {
    let mut cfg = config();
    // A held poll answers empty after this.
    cfg.heartbeat.interval = Duration::from_millis(400);
    cfg
}

async fn open(server: &Server) -> String {
    let (status, response) = server.get("/poll", "").await;
    assert_eq!(status, 200, "{response}");
    assert!(
        response.contains("content-type: application/json"),
        "{response}"
    );
    body_json(&response)["session"].as_str().unwrap().to_owned()
}

/// A poll's status and JSON body.
async fn poll(server: &Server, session: &str, last: u64) -> (u16, Value, String) {
    let (status, response) = server
        .get(&format!("/poll/{session}?last={last}"), "")
        .await;
    (status, body_json(&response), response)
}

/// Polls until a message arrives; returns the answer.
async fn messages(server: &Server, session: &str, last: u64) -> Value {
    loop {
        let (status, body, response) = poll(server, session, last).await;
        assert_eq!(status, 200, "{response}");
        if !body["messages"].as_array().unwrap().is_empty() || body.get("disconnect").is_some() {
            return body;
        }
    }
}

async fn post(server: &Server, session: &str, body: &str) -> (u16, String) {
    server.post(&format!("/poll/{session}"), "", body).await
}

fn count(server: &Server, needle: &str) -> bool {
    server.hub.metrics().render().contains(needle)
}

#[tokio::test]
async fn commands_get_their_replies_in_polls_and_a_lost_answer_is_sent_again() {
    let mut server = Server::start(poll_config()).await;
    let session = open(&server).await;
    let first = messages(&server, &session, 0).await;
    assert_eq!(first["from"], 1);
    assert_eq!(first["messages"][0]["push"], "connected");
    let body = concat!(
        r#"{"id":1,"method":"subscribe","params":{"channel":"room"}}"#,
        "\n",
        r#"{"id":2,"method":"publish","params":{"channel":"room","data":"hi"}}"#,
    );
    assert_eq!(post(&server, &session, body).await.0, 202);
    // `last=1` acknowledges "connected"; the next answer is lost in flight...
    let mut seen = Vec::new();
    let mut last = 1;
    while seen.len() < 3 {
        let answer = messages(&server, &session, last).await;
        let from = answer["from"].as_u64().unwrap();
        assert_eq!(from, last + 1, "nothing skipped: {answer}");
        let got = answer["messages"].as_array().unwrap().clone();
        // ...so the same `last` gets the same messages again.
        let again = messages(&server, &session, last).await;
        assert_eq!(again["messages"].as_array().unwrap()[..got.len()], got[..]);
        last += got.len() as u64;
        seen.extend(got);
    }
    assert_eq!(seen[0]["id"], 1);
    assert!(seen.iter().any(|m| m["push"] == "pub" && m["data"] == "hi"));
    assert!(seen.iter().any(|m| m["id"] == 2));
    // A WebSocket client's publication reaches the polling one as on a WebSocket.
    let mut other = Client::connect(&server).await;
    other.publish("room", json!(2)).await;
    let next = messages(&server, &session, last).await;
    assert_eq!(next["messages"][0]["offset"], 2);
    assert!(count(
        &server,
        r#"herald_transport_connections{transport="poll"} 1"#
    ));
    server.stop().await;
}

#[tokio::test]
async fn a_held_poll_answers_when_a_message_comes_or_empty_after_the_heartbeat() {
    let mut server = Server::start(poll_config()).await;
    let session = open(&server).await;
    messages(&server, &session, 0).await;
    let started = Instant::now();
    let (status, body, _) = poll(&server, &session, 1).await;
    let held = started.elapsed();
    assert_eq!((status, body["from"].clone()), (200, json!(2)));
    assert_eq!(body["messages"], json!([]));
    assert!(held >= Duration::from_millis(350), "held {held:?}");
    // A poll held while a command is posted answers with its reply at once.
    let waiting = {
        let addr = server.addr;
        let session = session.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let request = format!(
                "GET /poll/{session}?last=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let text = raw(addr, &request).await;
            (started.elapsed(), text)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        post(&server, &session, r#"{"id":9,"method":"ping"}"#)
            .await
            .0,
        202
    );
    let (took, text) = waiting.await.unwrap();
    assert!(text.contains(r#""id":9"#), "{text}");
    assert!(took < Duration::from_millis(350), "answered in {took:?}");
    server.stop().await;
}

async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn hostile_polls_get_a_precise_status_and_are_counted() {
    let mut cfg = poll_config();
    cfg.limits.max_message_size = 1024;
    let mut server = Server::start(cfg).await;
    let session = open(&server).await;
    messages(&server, &session, 0).await;
    let (node, _) = session.split_once('.').unwrap();
    let forged = format!("{node}.{:032x}", 7);
    let cases: [(String, u16, &str); 6] = [
        (format!("/poll/{forged}?last=0"), 404, "unknown session"),
        ("/poll/no-dot?last=0".into(), 404, "unknown session"),
        (
            "/poll/ffffffff.00?last=0".into(),
            404,
            "the session's node does not answer",
        ),
        (format!("/poll/{session}"), 400, "missing or malformed last"),
        (
            format!("/poll/{session}?last=99"),
            400,
            "last is past what was sent",
        ),
        (
            format!("/poll/{session}?last=x"),
            400,
            "missing or malformed last",
        ),
    ];
    for (target, want, reason) in &cases {
        let (status, response) = server.get(target, "").await;
        assert_eq!(status, *want, "{target}: {response}");
        assert!(response.ends_with(&format!("{reason}\n")), "{response}");
    }
    // `last=1` acknowledged "connected": a replayed `last=0` is a conflict.
    let (status, ..) = poll(&server, &session, 1).await;
    assert_eq!(status, 200);
    let (status, _, response) = poll(&server, &session, 0).await;
    assert_eq!(status, 409, "{response}");
    assert!(response.ends_with("last was acknowledged already\n"));
    // A huge POST is refused from its head, before a byte of the body is read.
    let request = format!(
        "POST /poll/{session} HTTP/1.1\r\nHost: {}\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
        server.addr
    );
    assert_eq!(server.http(&request).await.0, 413);
    let (status, _) = post(&server, &forged, "{}").await;
    assert_eq!(status, 404);
    for needle in [
        r#"herald_transport_refusals_total{transport="poll",status="404",reason="unknown session"} 3"#,
        r#"herald_transport_refusals_total{transport="poll",status="404",reason="the session's node does not answer"} 1"#,
        r#"herald_transport_refusals_total{transport="poll",status="400",reason="missing or malformed last"} 2"#,
        r#"herald_transport_refusals_total{transport="poll",status="400",reason="last is past what was sent"} 1"#,
        r#"herald_transport_refusals_total{transport="poll",status="409",reason="last was acknowledged already"} 1"#,
        r#"herald_transport_refusals_total{transport="poll",status="413",reason="request body too large"} 1"#,
    ] {
        assert!(count(&server, needle), "{needle}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_newer_poll_answers_the_held_one_with_409() {
    let mut server = Server::start(poll_config()).await;
    let session = open(&server).await;
    messages(&server, &session, 0).await;
    let addr = server.addr;
    let held = {
        let session = session.clone();
        tokio::spawn(async move {
            let request = format!(
                "GET /poll/{session}?last=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            raw(addr, &request).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, ..) = poll(&server, &session, 1).await;
    assert_eq!(status, 200);
    let older = held.await.unwrap();
    assert!(older.starts_with("HTTP/1.1 409"), "{older}");
    assert!(older.ends_with("a newer poll came\n"), "{older}");
    server.stop().await;
}

#[tokio::test]
async fn a_session_nobody_polls_ends_with_4004_and_its_id_is_then_unknown() {
    let mut cfg = poll_config();
    cfg.limits.poll_timeout = Duration::from_millis(300);
    cfg.limits.close_timeout = Duration::from_millis(100);
    let mut server = Server::start(cfg).await;
    let session = open(&server).await;
    messages(&server, &session, 0).await;
    let hub = server.hub.clone();
    wait_for(|| {
        hub.metrics()
            .render()
            .contains(r#"herald_transport_disconnects_total{transport="poll",code="4004"} 1"#)
    })
    .await;
    wait_for(|| {
        hub.metrics()
            .render()
            .contains(r#"herald_transport_connections{transport="poll"} 0"#)
    })
    .await;
    let (status, ..) = poll(&server, &session, 1).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_acknowledges_is_a_slow_consumer_and_told_so() {
    let mut cfg = poll_config();
    cfg.limits.queue_size = 8;
    let mut server = Server::start(cfg).await;
    let session = open(&server).await;
    messages(&server, &session, 0).await;
    let subscribe = r#"{"id":1,"method":"subscribe","params":{"channel":"feed"}}"#;
    assert_eq!(post(&server, &session, subscribe).await.0, 202);
    let mut publisher = Client::connect(&server).await;
    let big = "x".repeat(60_000);
    let hub = server.hub.clone();
    for _ in 0..2000 {
        publisher.publish("feed", json!(big)).await;
        if count(&server, "herald_slow_consumer_drops_total 1") {
            break;
        }
    }
    // Polls that keep `last=1` acknowledge nothing; the session holds a bounded queue and
    // the disconnect comes after the queued messages.
    let mut last = 1;
    let disconnect = loop {
        let answer = messages(&server, &session, last).await;
        if let Some(disconnect) = answer.get("disconnect") {
            break disconnect.clone();
        }
        last += answer["messages"].as_array().unwrap().len() as u64;
    };
    assert_eq!(disconnect["code"], 4001);
    wait_for(|| {
        hub.metrics()
            .render()
            .contains(r#"herald_transport_disconnects_total{transport="poll",code="4001"} 1"#)
    })
    .await;
    server.stop().await;
}
