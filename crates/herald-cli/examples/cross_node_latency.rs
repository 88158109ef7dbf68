//! Cross-node publish-to-receive latency: publishers on node A, subscribers on node B,
//! both `herald serve` nodes on one Redis. `herald bench fanout` takes one URL, so it cannot
//! put the publisher and the subscribers on different nodes; this does.
//!
//! ```sh
//! cargo run --release -p herald-cli --example cross_node_latency -- \
//!     ws://127.0.0.1:8081/ws ws://127.0.0.1:8082/ws RATE SECONDS SUBSCRIBERS
//! ```
//! Prints one line: rate, publications, deliveries expected and received, latency p50, p99
//! and max in microseconds. Publisher and subscribers share this machine's clock.
#![allow(clippy::print_stdout)]

use hdrhistogram::Histogram;
use herald::Message;
use herald_hub_protocol::SUBPROTOCOL;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CHANNEL: &str = "bench:cross-node";

type Ws = herald::WebSocket<herald::MaybeTlsStream>;

fn now_micros() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

async fn connect(url: &str) -> Result<Ws, Box<dyn std::error::Error>> {
    let (mut ws, _) = herald::ClientBuilder::new(url)?
        .subprotocol(SUBPROTOCOL)
        .connect()
        .await?;
    ws.recv().await.ok_or("closed before connected")??;
    Ok(ws)
}

async fn subscriber(
    url: String,
    latencies: Arc<Mutex<Histogram<u64>>>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut ws = connect(&url).await.map_err(|e| e.to_string())?;
    let subscribe = json!({"id": 1, "method": "subscribe", "params": {"channel": CHANNEL}});
    ws.send(Message::text(subscribe.to_string())).await?;
    let mut received = 0;
    let mut local = Histogram::<u64>::new(3)?;
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(3), ws.recv()).await
    {
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text)?;
        if value["id"] == 1 {
            let _ = ready.send(()).await;
        } else if value["push"] == "pub"
            && let Some(sent) = value["data"]["t"].as_u64()
        {
            local.record(now_micros().saturating_sub(sent))?;
            received += 1;
        }
    }
    latencies.lock().map_err(|e| e.to_string())?.add(&local)?;
    Ok(received)
}

/// Publisher connections: each publishes and awaits the reply (one round trip through the
/// node and Redis), so several share the rate.
const PUBLISHERS: u64 = 8;

/// Publishes `count` at `rate` per second on one connection; returns how many were published.
async fn publisher(
    url: String,
    count: u64,
    rate: f64,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut ws = connect(&url).await.map_err(|e| e.to_string())?;
    let start = tokio::time::Instant::now();
    for n in 0..count {
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due).await;
        let command = json!({"id": n, "method": "publish",
            "params": {"channel": CHANNEL, "data": {"t": now_micros()}}});
        ws.send(Message::text(command.to_string())).await?;
        loop {
            let Some(reply) = ws.recv().await else {
                return Err("publisher connection closed".into());
            };
            if let Message::Text(text) = reply? {
                let value: Value = serde_json::from_str(&text)?;
                if value.get("error").is_some() {
                    return Err(format!("publish failed: {value}").into());
                }
                if value["id"] == n {
                    break;
                }
            }
        }
    }
    Ok(count)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [publish_url, subscribe_url, rate, seconds, subscribers] = args.as_slice() else {
        return Err("usage: PUBLISH_URL SUBSCRIBE_URL RATE SECONDS SUBSCRIBERS".into());
    };
    let (rate, seconds, subscribers): (u64, u64, usize) =
        (rate.parse()?, seconds.parse()?, subscribers.parse()?);
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(subscribers.max(1));
    let subscribed: Vec<_> = (0..subscribers)
        .map(|_| {
            tokio::spawn(subscriber(
                subscribe_url.clone(),
                latencies.clone(),
                ready_tx.clone(),
            ))
        })
        .collect();
    for _ in 0..subscribers {
        ready.recv().await.ok_or("a subscriber failed")?;
    }
    let total = rate * seconds;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|i| {
            let (url, share) = (
                publish_url.clone(),
                total / PUBLISHERS + u64::from(i < total % PUBLISHERS),
            );
            tokio::spawn(publisher(url, share, rate as f64 / PUBLISHERS as f64))
        })
        .collect();
    let mut sent = 0;
    for p in publishers {
        sent += p.await?.map_err(|e| e.to_string())?;
    }
    let mut received = 0;
    for subscriber in subscribed {
        received += subscriber.await?.map_err(|e| e.to_string())?;
    }
    let h = latencies.lock().map_err(|e| e.to_string())?;
    println!(
        "rate {rate}/s, {sent} publications, {} expected, {received} received, latency p50 {} us, p99 {} us, max {} us",
        sent * subscribers as u64,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
    Ok(())
}
