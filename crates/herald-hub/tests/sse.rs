//! Server-sent events (`GET /sse`): a plain `EventSource`'s view of the hub, over real
//! sockets. Ids are `epoch:offset` per channel, and a reconnect's `Last-Event-ID` recovers
//! exactly what was missed.
#![allow(clippy::unwrap_used)]

mod common;

use common::events::{Event, Stream};
use common::*;
use herald::Message;
use herald_hub::auth::{Claims, issue_hs256};
use serde_json::json;
use std::time::Duration;

fn offsets(events: &[Event]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            let v = e.json();
            (
                v["channel"].as_str().unwrap().to_owned(),
                v["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Reads `n` publication events.
async fn publications(stream: &mut Stream, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = stream.event().await;
        assert_eq!(event.kind, "message", "{event:?}");
        out.push(event);
    }
    out
}

mod streaming {
    //! Publications as events, ids as positions.
    use super::*;

    #[tokio::test]
    async fn publications_arrive_as_events_whose_id_is_epoch_colon_offset() {
        let mut server = Server::start(config()).await;
        let mut publisher = Client::connect(&server).await;
        // A channel's first publication starts its stream, in a new epoch.
        let first = publisher.publish("feed", json!(0)).await;
        let mut stream = Stream::open(&server, "/sse?channel=feed", "").await;
        assert_eq!(stream.status, 200);
        assert!(stream.head.contains("content-type: text/event-stream"));
        assert!(stream.head.contains("x-accel-buffering: no"));
        let ready = stream.event().await;
        assert_eq!(ready.kind, "ready");
        let epoch = ready.json()["channels"]["feed"]["epoch"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(epoch, first["epoch"]);
        assert_eq!(ready.id.as_deref(), Some(format!("{epoch}:1").as_str()));
        publisher.publish("feed", json!({"text": "hi"})).await;
        publisher.publish("feed", json!(3)).await;
        let events = publications(&mut stream, 2).await;
        assert_eq!(events[0].id.as_deref(), Some(format!("{epoch}:2").as_str()));
        assert_eq!(events[0].json()["data"], json!({"text": "hi"}));
        assert_eq!(events[1].id.as_deref(), Some(format!("{epoch}:3").as_str()));
        let metrics = server.hub.metrics().render();
        assert!(metrics.contains(r#"herald_transport_connections{transport="sse"} 1"#));
        server.stop().await;
    }

    #[tokio::test]
    async fn json_data_with_line_breaks_is_split_into_data_lines_and_joins_back() {
        let mut server = Server::start(config()).await;
        let mut stream = Stream::open(&server, "/sse?channel=feed", "").await;
        stream.event().await;
        let mut publisher = Client::connect(&server).await;
        let command = "{\"id\":7,\"method\":\"publish\",\"params\":{\"channel\":\"feed\",\"data\":{\"a\":\n1,\r\n\"b\":2}}}";
        futures_util::SinkExt::send(&mut publisher.ws, Message::text(command))
            .await
            .unwrap();
        let event = publications(&mut stream, 1).await.remove(0);
        assert_eq!(event.json()["data"], json!({"a": 1, "b": 2}));
        server.stop().await;
    }

    #[tokio::test]
    async fn an_idle_stream_gets_heartbeat_comments() {
        let mut cfg = config();
        cfg.heartbeat.interval = Duration::from_millis(100);
        let mut server = Server::start(cfg).await;
        let mut stream = Stream::open(&server, "/sse?channel=feed", "").await;
        assert_eq!(stream.event().await.kind, "ready");
        let comment = stream.next().await.unwrap();
        assert_eq!(comment.kind, ":");
        let comment = stream.next().await.unwrap();
        assert_eq!(comment.kind, ":");
        server.stop().await;
    }

    #[tokio::test]
    async fn shutdown_ends_the_stream_with_a_disconnect_event() {
        let mut server = Server::start(config()).await;
        let mut stream = Stream::open(&server, "/sse?channel=feed", "").await;
        stream.event().await;
        server.hub.shutdown();
        let event = stream.event().await;
        assert_eq!(event.kind, "disconnect");
        assert_eq!(event.json()["code"], 1001);
        assert!(stream.next().await.is_none(), "the body ends");
        server.stop().await;
    }
}

mod recovery {
    //! `Last-Event-ID` on reconnect: every missed publication once, in order, or
    //! `recovered: false`.
    use super::*;

    #[tokio::test]
    async fn last_event_id_recovers_exactly_what_each_channel_missed() {
        let mut server = Server::start(config()).await;
        let mut publisher = Client::connect(&server).await;
        let mut stream = Stream::open(&server, "/sse?channel=a&channel=b", "").await;
        assert_eq!(stream.event().await.kind, "ready");
        publisher.publish("a", json!("a1")).await;
        publisher.publish("b", json!("b1")).await;
        publisher.publish("a", json!("a2")).await;
        let seen = publications(&mut stream, 3).await;
        assert_eq!(
            offsets(&seen),
            [("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]
        );
        let last = seen[2].id.clone().unwrap();
        assert_eq!(
            last.split(',').count(),
            2,
            "one position per channel: {last}"
        );
        drop(stream);
        publisher.publish("b", json!("b2")).await;
        publisher.publish("a", json!("a3")).await;
        publisher.publish("b", json!("b3")).await;
        let header = format!("Last-Event-ID: {last}\r\n");
        let mut stream = Stream::open(&server, "/sse?channel=a&channel=b", &header).await;
        let recovered = publications(&mut stream, 3).await;
        assert_eq!(
            offsets(&recovered),
            [("a".into(), 3), ("b".into(), 2), ("b".into(), 3)]
        );
        assert_eq!(recovered[2].json()["data"], "b3");
        let ready = stream.event().await;
        assert_eq!(ready.kind, "ready", "nothing else before ready: {ready:?}");
        publisher.publish("a", json!("a4")).await;
        let live = publications(&mut stream, 1).await;
        assert_eq!(offsets(&live), [("a".into(), 4)]);
        server.stop().await;
    }

    #[tokio::test]
    async fn the_ready_id_recovers_a_stream_that_saw_no_publication() {
        let mut server = Server::start(config()).await;
        let mut publisher = Client::connect(&server).await;
        publisher.publish("feed", json!(1)).await;
        let mut stream = Stream::open(&server, "/sse?channel=feed", "").await;
        let ready = stream.event().await;
        assert_eq!(ready.kind, "ready");
        drop(stream);
        publisher.publish("feed", json!(2)).await;
        let header = format!("Last-Event-ID: {}\r\n", ready.id.unwrap());
        let mut stream = Stream::open(&server, "/sse?channel=feed", &header).await;
        assert_eq!(
            offsets(&publications(&mut stream, 1).await),
            [("feed".into(), 2)]
        );
        assert_eq!(stream.event().await.kind, "ready");
        server.stop().await;
    }

    #[tokio::test]
    async fn a_position_beyond_history_gets_a_recovered_false_event() {
        let mut cfg = config();
        cfg.history.size = 2;
        let mut server = Server::start(cfg).await;
        let mut stream = Stream::open(&server, "/sse?channel=feed", "").await;
        let ready = stream.event().await;
        drop(stream);
        let mut publisher = Client::connect(&server).await;
        for i in 1..=5 {
            publisher.publish("feed", json!(i)).await;
        }
        let header = format!("Last-Event-ID: {}\r\n", ready.id.unwrap());
        let mut stream = Stream::open(&server, "/sse?channel=feed", &header).await;
        let event = stream.event().await;
        assert_eq!(event.kind, "recovery");
        assert_eq!(event.json()["recovered"], false);
        assert_eq!(event.json()["offset"], 5);
        let ready = stream.event().await;
        assert_eq!(ready.kind, "ready");
        assert!(ready.id.unwrap().ends_with(":5"));
        server.stop().await;
    }

    #[tokio::test]
    async fn a_garbled_or_foreign_last_event_id_gets_recovered_false_per_channel() {
        let mut server = Server::start(config()).await;
        let mut stream = Stream::open(
            &server,
            "/sse?channel=a&channel=b",
            "Last-Event-ID: x:1\r\n",
        )
        .await;
        assert_eq!(stream.status, 200);
        for channel in ["a", "b"] {
            let event = stream.event().await;
            assert_eq!(event.kind, "recovery");
            assert_eq!(event.json()["channel"], channel);
            assert_eq!(event.json()["recovered"], false);
        }
        assert_eq!(stream.event().await.kind, "ready");
        server.stop().await;
    }
}

mod admission {
    //! The same Origin policy and credentials as a WebSocket upgrade, as HTTP statuses.
    use super::*;

    const SECRET: &str = "s3cret";

    fn token(channels: &[&str]) -> String {
        let claims = Claims {
            sub: "ann".into(),
            exp: 4_102_444_800,
            channels: channels.iter().map(|c| c.to_string()).collect(),
            subscribe: vec![],
            publish: vec![],
            subs: vec![],
        };
        issue_hs256(SECRET, &claims).unwrap()
    }

    #[tokio::test]
    async fn a_request_without_channels_or_with_too_many_is_400() {
        let mut cfg = config();
        cfg.limits.max_subscriptions = 2;
        let mut server = Server::start(cfg).await;
        let (status, body) = server.get("/sse", "").await;
        assert_eq!(status, 400);
        assert!(body.ends_with("missing channel query parameter\n"));
        let (status, body) = server.get("/sse?channel=a&channel=b&channel=c", "").await;
        assert_eq!(status, 400);
        assert!(body.ends_with("too many channels\n"));
        let (status, body) = server.get("/sse?channel=a&channel=a", "").await;
        assert_eq!(status, 400);
        assert!(body.ends_with("channel named twice\n"));
        let (status, _) = server.get("/sse?channel=bad%20name", "").await;
        assert_eq!(status, 400, "an invalid channel name");
        let metrics = server.hub.metrics().render();
        assert!(metrics.contains(r#"herald_handshake_rejections_total{status="400"} 4"#));
        server.stop().await;
    }

    #[tokio::test]
    async fn a_foreign_origin_is_403_and_an_allowed_one_gets_cors_headers() {
        let mut cfg = config();
        cfg.origins.allowed = vec!["https://app.example.com".into()];
        let mut server = Server::start(cfg).await;
        let (status, _) = server
            .get("/sse?channel=a", "Origin: https://evil.example\r\n")
            .await;
        assert_eq!(status, 403);
        let stream = Stream::open(
            &server,
            "/sse?channel=a",
            "Origin: https://app.example.com\r\n",
        )
        .await;
        assert_eq!(stream.status, 200);
        assert!(
            stream
                .head
                .contains("access-control-allow-origin: https://app.example.com")
        );
        assert!(
            stream
                .head
                .contains("access-control-allow-credentials: true")
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn a_token_in_the_cookie_or_header_decides_and_a_bad_one_is_401() {
        let mut cfg = config();
        cfg.auth.hs256_secret = Some(SECRET.into());
        let mut server = Server::start(cfg).await;
        let (status, _) = server
            .get("/sse?channel=chat:1", "Authorization: Bearer nope\r\n")
            .await;
        assert_eq!(status, 401);
        let (status, _) = server.get("/sse?channel=chat:1", "").await;
        assert_eq!(status, 401, "no anonymous access without the policy");
        let cookie = format!("Cookie: herald_token={}\r\n", token(&["chat:*"]));
        let mut stream = Stream::open(&server, "/sse?channel=chat:1", &cookie).await;
        assert_eq!(stream.status, 200);
        let mut ready = stream.event().await;
        while ready.kind != "ready" {
            // The server's own subscriptions (the personal channel) come as pushes first.
            assert_eq!(ready.kind, "subscribed");
            ready = stream.event().await;
        }
        assert_eq!(ready.json()["user"], "ann");
        let bearer = format!("Authorization: Bearer {}\r\n", token(&["chat:*"]));
        let (status, body) = server.get("/sse?channel=news", &bearer).await;
        assert_eq!(status, 403, "a channel the token does not grant: {body}");
        server.stop().await;
    }
}

mod hostile {
    //! A reader that stops reading is cut off and counted; nothing grows past the bounds.
    use super::*;

    #[tokio::test]
    async fn a_reader_that_stops_reading_is_closed_and_counted() {
        let mut cfg = config();
        cfg.limits.queue_size = 8;
        let mut server = Server::start(cfg).await;
        // Opened and never read again.
        let stream = Stream::open(&server, "/sse?channel=feed", "").await;
        let mut publisher = Client::connect(&server).await;
        let big = "x".repeat(60_000);
        let hub = server.hub.clone();
        let cut = || {
            let metrics = hub.metrics().render();
            metrics.contains(r#"herald_transport_disconnects_total{transport="sse",code="4001"} 1"#)
        };
        for _ in 0..2000 {
            publisher.publish("feed", json!(big)).await;
            if cut() {
                break;
            }
        }
        wait_for(cut).await;
        let metrics = server.hub.metrics().render();
        assert!(metrics.contains(r#"herald_transport_connections{transport="sse"} 0"#));
        assert!(metrics.contains("herald_slow_consumer_drops_total 1"));
        drop(stream);
        server.stop().await;
    }
}
