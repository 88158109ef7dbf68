//! Graceful shutdown, and slow consumers cut off without slowing the others.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use herald_hub::broker::Payload;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001_and_run_returns() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    a.subscribe("x").await;
    let mut room = plain(&server, "/chat?groupId=1").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    let started = Instant::now();
    let (protocol_code, plain_code, ()) =
        tokio::join!(a.closed_with(), closed_with(&mut room), server.stop());
    assert_eq!(protocol_code, 1001);
    assert_eq!(plain_code, 1001);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        server
            .hub
            .metrics()
            .render()
            .contains("herald_disconnects_total{code=\"1001\"} 2")
    );
}

#[allow(clippy::unwrap_used)]
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_while_the_others_get_everything() {
    const MESSAGES: u64 = 6_000;
    const SIZE: usize = 16 << 10;
    let mut cfg = config();
    cfg.limits.queue_size = 64;
    cfg.limits.max_message_size = 1 << 20;
    cfg.deflate = false;
    let mut server = Server::start(cfg).await;
    // Never polled after the handshake: its socket buffers fill, then its queue.
    let mut stalled = Client::connect(&server).await;
    stalled.subscribe("firehose").await;
    let mut readers = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..2 {
        let mut reader = Client::connect(&server).await;
        reader.subscribe("firehose").await;
        let done = Arc::new(AtomicU64::new(0));
        progress.push(done.clone());
        readers.push(tokio::spawn(async move {
            let mut last = 0;
            while last < MESSAGES {
                let offset = reader.next_pub().await["offset"].as_u64().unwrap();
                assert_eq!(offset, last + 1, "in order, nothing lost");
                last = offset;
                done.store(last, Ordering::Relaxed);
            }
            last
        }));
    }
    let before = rss_kib();
    let payload = Bytes::from(json!("x".repeat(SIZE)).to_string());
    for i in 0..MESSAGES {
        server
            .hub
            .publish("firehose", Payload::Json(payload.clone()), None)
            .await
            .unwrap();
        // The readers read as fast as they can; the publisher stays within their queue so
        // that only the stalled client overflows.
        while progress.iter().any(|p| p.load(Ordering::Relaxed) + 32 < i) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for reader in readers {
        assert_eq!(reader.await.unwrap(), MESSAGES);
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    let metrics = server.hub.metrics().render();
    assert!(
        metrics.contains("herald_slow_consumer_drops_total 1"),
        "{metrics}"
    );
    wait_for(|| {
        server
            .hub
            .metrics()
            .render()
            .contains("herald_disconnects_total{code=\"4001\"} 1")
    })
    .await;
    // ~94 MiB went to each subscriber; the stalled one holds at most its queue and write
    // buffer, not the stream.
    assert!(grown_mib < 48, "memory grew by {grown_mib} MiB");
    drop(stalled);
    server.stop().await;
}
