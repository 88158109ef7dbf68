//! Bidirectional emulation (`GET /stream` + `POST /stream/{session}`): herald.v1 over an
//! event stream and POSTs, over real sockets, and the POSTs a hostile client sends.
#![allow(clippy::unwrap_used)]

mod common;

use common::events::{Event, Stream};
use common::*;
use serde_json::{Value, json};

/// Opens a downstream; returns it and its session id.
async fn open(server: &Server) -> (Stream, String) {
    let mut stream = Stream::open(server, "/stream", "").await;
    assert_eq!(stream.status, 200);
    let session = stream.event().await;
    assert_eq!(session.kind, "session");
    let id = session.json()["session"].as_str().unwrap().to_owned();
    (stream, id)
}

/// The next herald.v1 message on the downstream.
async fn message(stream: &mut Stream) -> Value {
    let event: Event = stream.event().await;
    assert_eq!(event.kind, "message", "{event:?}");
    event.json()
}

async fn post(server: &Server, session: &str, body: &str) -> (u16, String) {
    server.post(&format!("/stream/{session}"), "", body).await
}

#[tokio::test]
async fn commands_posted_get_their_replies_and_pushes_on_the_downstream() {
    let mut server = Server::start(config()).await;
    let (mut stream, session) = open(&server).await;
    assert_eq!(message(&mut stream).await["push"], "connected");
    let body = concat!(
        r#"{"id":1,"method":"subscribe","params":{"channel":"room"}}"#,
        "\n",
        r#"{"id":2,"method":"publish","params":{"channel":"room","data":{"text":"hi"}}}"#,
        "\n"
    );
    let (status, _) = post(&server, &session, body).await;
    assert_eq!(status, 202);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(message(&mut stream).await);
    }
    assert_eq!(seen[0]["id"], 1);
    assert_eq!(seen[0]["result"]["offset"], 0);
    let publication = seen.iter().find(|m| m["push"] == "pub").unwrap();
    assert_eq!(publication["data"], json!({"text": "hi"}));
    assert!(
        seen.iter()
            .any(|m| m["id"] == 2 && m["result"]["offset"] == 1)
    );
    // A WebSocket client's publication reaches the emulated one as on a WebSocket.
    let mut other = Client::connect(&server).await;
    other.publish("room", json!(2)).await;
    assert_eq!(message(&mut stream).await["offset"], 2);
    let metrics = server.hub.metrics().render();
    assert!(metrics.contains(r#"herald_transport_connections{transport="stream"} 1"#));
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_or_malformed_session_id_is_404_with_its_reason() {
    let mut server = Server::start(config()).await;
    let (_stream, session) = open(&server).await;
    let (node, _) = session.split_once('.').unwrap();
    let forged = format!("{node}.{:032x}", 7);
    let (status, body) = post(&server, &forged, "{}").await;
    assert_eq!(status, 404);
    assert!(body.ends_with("unknown session\n"), "{body}");
    let (status, _) = post(&server, "no-dot", "{}").await;
    assert_eq!(status, 404);
    let (status, body) = post(&server, "ffffffff.00", "{}").await;
    assert_eq!(status, 404, "another node, which does not answer");
    assert!(
        body.ends_with("the session's node does not answer\n"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_post_over_the_message_size_is_413_before_it_is_read() {
    let mut cfg = config();
    cfg.limits.max_message_size = 1024;
    let mut server = Server::start(cfg).await;
    let (_stream, session) = open(&server).await;
    let (status, body) = post(&server, &session, &"x".repeat(2000)).await;
    assert_eq!(status, 413);
    assert!(body.contains("request body too large"), "{body}");
    // Announced as huge, nothing sent: refused from the head alone.
    let request = format!(
        "POST /stream/{session} HTTP/1.1\r\nHost: {}\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let (status, _) = server.http(&request).await;
    assert_eq!(status, 413);
    let metrics = server.hub.metrics().render();
    assert!(metrics.contains(r#"herald_limit_hits_total{limit="stream_post_size"} 2"#));
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_command_closes_the_session_and_its_id_is_then_unknown() {
    let mut server = Server::start(config()).await;
    let (mut stream, session) = open(&server).await;
    message(&mut stream).await;
    let (status, _) = post(&server, &session, "not json").await;
    assert_eq!(status, 202);
    let event = stream.event().await;
    assert_eq!(event.kind, "disconnect");
    assert_eq!(event.json()["code"], 4500);
    assert!(stream.next().await.is_none(), "the downstream ends");
    let hub = server.hub.clone();
    wait_for(|| {
        hub.metrics()
            .render()
            .contains(r#"herald_transport_connections{transport="stream"} 0"#)
    })
    .await;
    let (status, _) = post(&server, &session, "{}").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_downstream_reader_that_stops_reading_is_closed_and_counted() {
    let mut cfg = config();
    cfg.limits.queue_size = 8;
    let mut server = Server::start(cfg).await;
    let (stream, session) = open(&server).await;
    let (status, _) = post(
        &server,
        &session,
        r#"{"id":1,"method":"subscribe","params":{"channel":"feed"}}"#,
    )
    .await;
    assert_eq!(status, 202);
    let mut publisher = Client::connect(&server).await;
    let big = "x".repeat(60_000);
    let hub = server.hub.clone();
    let cut = || {
        hub.metrics()
            .render()
            .contains(r#"herald_transport_disconnects_total{transport="stream",code="4001"} 1"#)
    };
    for _ in 0..2000 {
        publisher.publish("feed", json!(big)).await;
        if cut() {
            break;
        }
    }
    wait_for(cut).await;
    drop(stream);
    server.stop().await;
}
