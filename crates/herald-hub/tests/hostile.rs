//! Clients that send valid messages in a hostile pattern, against a real hub: one that never
//! reads its replies, one that floods cheap or costly commands, one that churns
//! subscriptions. Each test asserts the bound: a close code, a time, a count.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald::Message;
use herald_hub::HubConfig;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Publishes `count` publications of about `size` bytes to `channel` from the server side.
async fn fill(server: &Server, channel: &str, count: usize, size: usize) {
    let data = json!("x".repeat(size)).to_string();
    for _ in 0..count {
        server
            .hub
            .publish(
                channel,
                herald_hub::broker::Payload::Json(data.clone().into()),
                None,
            )
            .await
            .unwrap();
    }
}

/// The value of `herald_disconnects_total{code}` (0 when absent).
fn disconnects(server: &Server, code: u16) -> u64 {
    let metrics = server.hub.metrics().render();
    let prefix = format!("herald_disconnects_total{{code=\"{code}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Sends `history` commands for `channel` without ever reading, until the server stops
/// taking them (its replies fill every buffer) or `limit` is reached.
async fn flood_history_without_reading(client: &mut Client, channel: &str, limit: u64) -> u64 {
    let mut sent = 0;
    for id in 1..=limit {
        let command = json!({"id": id, "method": "history", "params": {"channel": channel}});
        let send = client.ws.send(Message::text(command.to_string()));
        match tokio::time::timeout(Duration::from_millis(500), send).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    sent
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

mod non_reader {
    //! A client whose replies pile up: the server stops reading it, keeps its own deadlines,
    //! and drops it when its writes make no progress for `limits.write_timeout`.
    use super::*;

    fn setup() -> HubConfig {
        let mut cfg = config();
        cfg.limits.command_rate = 0;
        cfg.limits.max_connections_per_ip = 1;
        cfg.history.size = 100;
        cfg
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_its_replies_is_dropped_at_the_write_timeout() {
        let mut cfg = setup();
        cfg.limits.write_timeout = Duration::from_secs(1);
        let server = Server::start(cfg).await;
        fill(&server, "big", 100, 8 << 10).await;
        let mut client = Client::connect(&server).await;
        let started = Instant::now();
        let sent = flood_history_without_reading(&mut client, "big", 400).await;
        assert!(sent >= 5, "sent {sent} commands");
        wait_for(|| disconnects(&server, 4004) == 1).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(8),
            "dropped after {elapsed:?}"
        );
        // Its slots are free: the per-IP limit of 1 lets the next connection in.
        let mut next = Client::connect(&server).await;
        next.ok("ping", json!({})).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_client_still_closes_when_its_token_expires() {
        let mut cfg = setup();
        cfg.limits.write_timeout = Duration::from_secs(60);
        cfg.auth.hs256_secret = Some("s3cret".into());
        let server = Server::start(cfg).await;
        fill(&server, "big", 100, 8 << 10).await;
        let claims = json!({"sub": "eve", "exp": unix_now() + 2, "channels": ["*"]});
        let token = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        let mut client = Client::connect_url(&format!("{}?token={token}", server.url("/ws"))).await;
        let started = Instant::now();
        flood_history_without_reading(&mut client, "big", 400).await;
        wait_for(|| disconnects(&server, 4501) == 1).await;
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(7), "closed after {elapsed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_client_does_not_hold_up_shutdown() {
        let mut cfg = setup();
        cfg.limits.write_timeout = Duration::from_secs(60);
        cfg.shutdown_timeout = Duration::from_secs(5);
        let mut server = Server::start(cfg).await;
        fill(&server, "big", 100, 8 << 10).await;
        let mut client = Client::connect(&server).await;
        flood_history_without_reading(&mut client, "big", 400).await;
        let started = Instant::now();
        server.stop().await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(disconnects(&server, 1001), 1);
    }
}

mod command_budget {
    //! Every command costs: past the budget a command answers 108, and a client that keeps
    //! going is closed with 1008.
    use super::*;

    #[tokio::test]
    async fn a_history_flood_answers_108_then_closes_with_1008() {
        let mut cfg = config();
        cfg.limits.command_rate = 10;
        cfg.limits.command_burst = 20;
        let server = Server::start(cfg).await;
        let mut client = Client::connect(&server).await;
        let mut codes = Vec::new();
        for i in 0..100 {
            let command =
                json!({"id": i, "method": "history", "params": {"channel": format!("c{i}")}});
            if client
                .ws
                .send(Message::text(command.to_string()))
                .await
                .is_err()
            {
                break;
            }
        }
        loop {
            match tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut client.ws)).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    codes.push(reply["error"]["code"].as_u64().unwrap_or(0));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let answered = codes.iter().filter(|c| **c == 0).count();
        let refused = codes.iter().filter(|c| **c == 108).count();
        assert!((20..=22).contains(&answered), "{codes:?}");
        assert_eq!(refused, 21, "{codes:?}");
    }

    #[tokio::test]
    async fn a_large_history_reply_costs_more_than_a_ping() {
        let mut cfg = config();
        cfg.limits.command_rate = 1;
        cfg.limits.command_burst = 50;
        let server = Server::start(cfg).await;
        fill(&server, "big", 100, 4 << 10).await;
        let mut client = Client::connect(&server).await;
        // About 400 KiB of reply: about 100 units, past the whole burst.
        let history = client.ok("history", json!({"channel": "big"})).await;
        assert_eq!(history["publications"].as_array().unwrap().len(), 100);
        let ping = client.call("ping", json!({})).await;
        assert_eq!(ping["error"]["code"], 108, "{ping}");
    }
}

mod churn {
    //! Subscribe churn: join/leave pushes pass at most `presence.join_leave_rate` per second
    //! per channel, whatever the churning clients do.
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscribe_churn_cannot_flood_join_leave_subscribers() {
        let mut cfg = config();
        cfg.presence.join_leave_rate = 20;
        cfg.limits.command_rate = 0;
        let server = Server::start(cfg).await;
        let mut watcher = Client::connect(&server).await;
        watcher
            .ok("subscribe", json!({"channel": "room", "join_leave": true}))
            .await;
        let started = Instant::now();
        let mut churners = Vec::new();
        for _ in 0..4 {
            let mut churner = Client::connect(&server).await;
            churners.push(tokio::spawn(async move {
                for _ in 0..100 {
                    churner.subscribe("room").await;
                    churner.ok("unsubscribe", json!({"channel": "room"})).await;
                }
            }));
        }
        for churner in churners {
            churner.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        // Everything sent so far has arrived once a ping's reply comes back.
        watcher.ok("ping", json!({})).await;
        let events = watcher
            .pushes
            .iter()
            .filter(|p| p["push"] == "join" || p["push"] == "leave")
            .count();
        let bound = 20.0 + 20.0 * elapsed;
        assert!(
            (events as f64) <= bound,
            "{events} join/leave pushes in {elapsed:.2} s (bound {bound:.0}) for 800 events"
        );
        // The watcher's own join spent one token of the burst (a connection does not get its
        // own join, but fan-out counts it): when the churn ends within one refill (50 ms),
        // 19 pass.
        assert!(events >= 19, "the burst passes: {events}");
        let metrics = server.hub.metrics().render();
        assert!(metrics.contains("herald_limit_hits_total{limit=\"join_leave_rate\"}"));
    }
}
