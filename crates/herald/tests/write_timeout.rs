//! A peer that stops reading: once the transport accepts no queued byte for the write timeout,
//! the connection fails with `Error::WriteTimeout`, from receiving and from sending alike.
#![allow(clippy::unwrap_used)]

mod common;

use herald::{Config, Error, Message};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config::default()
        .keepalive_interval(None)
        .keepalive_timeout(Duration::from_secs(1))
        .write_buffer_size(16 << 10)
        .max_write_buffer_size(64 << 10)
        .write_timeout(Some(TIMEOUT))
}

/// Fails between one and two timeouts after the last progress (see `Config::write_timeout`).
fn assert_timed_out_in_time(started: Instant) {
    let elapsed = started.elapsed();
    assert!(
        elapsed >= TIMEOUT && elapsed <= 2 * TIMEOUT,
        "timed out after {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn recv_fails_with_write_timeout_when_the_peer_stops_reading() {
    let (mut ws, _deaf_peer) = common::duplex_pair(config(), 4 << 10).await;
    ws.queue(Message::binary(vec![0u8; 32 << 10])).unwrap();
    let started = Instant::now();
    let err = ws.recv().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::WriteTimeout), "{err}");
    assert_timed_out_in_time(started);
    assert_eq!(ws.buffered(), 0, "what was queued is dropped");
    assert!(ws.recv().await.is_none());
    assert_eq!(ws.closed().unwrap().code(), herald::CloseCode::ABNORMAL);
    let err = ws.send(Message::text("late")).await.unwrap_err();
    assert!(matches!(err, Error::WriteTimeout), "{err}");
    let err = ws.queue(Message::text("late")).unwrap_err();
    assert!(matches!(err, Error::WriteTimeout), "{err}");
}

#[tokio::test(start_paused = true)]
async fn send_waiting_on_back_pressure_fails_with_write_timeout() {
    let (mut ws, _deaf_peer) = common::duplex_pair(config(), 4 << 10).await;
    let started = Instant::now();
    let mut sent = 0;
    let err = loop {
        match ws.send(Message::binary(vec![1u8; 16 << 10])).await {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "send never waited");
    };
    assert!(matches!(err, Error::WriteTimeout), "{err}");
    assert_timed_out_in_time(started);
    assert!(matches!(ws.recv().await, Some(Err(Error::WriteTimeout))));
    assert!(ws.recv().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn feed_waiting_on_a_full_buffer_fails_with_write_timeout() {
    let (mut ws, _deaf_peer) = common::duplex_pair(config(), 4 << 10).await;
    let started = Instant::now();
    let err = loop {
        if let Err(e) = ws.feed(Message::binary(vec![1u8; 16 << 10])).await {
            break e;
        }
    };
    assert!(matches!(err, Error::WriteTimeout), "{err}");
    assert_timed_out_in_time(started);
}

#[tokio::test(start_paused = true)]
async fn peer_that_reads_slowly_but_steadily_is_not_timed_out() {
    let (mut ws, mut slow_peer) = common::duplex_pair(config(), 1 << 10).await;
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let mut total = 0;
        // Half a KiB every 3 s: each read well within the 5 s timeout, the whole far beyond.
        while total < 16 << 10 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            total += slow_peer.read(&mut buf).await.unwrap();
        }
        total
    });
    let started = Instant::now();
    ws.send(Message::binary(vec![2u8; (16 << 10) - 4]))
        .await
        .unwrap();
    assert!(started.elapsed() > 10 * TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(reader.await.unwrap(), 16 << 10);
}

#[tokio::test(start_paused = true)]
async fn without_a_write_timeout_a_blocked_write_waits() {
    let config = config().write_timeout(None);
    let (mut ws, _deaf_peer) = common::duplex_pair(config, 4 << 10).await;
    let send = ws.send(Message::binary(vec![0u8; 32 << 10]));
    assert!(
        tokio::time::timeout(Duration::from_secs(3600), send)
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn both_halves_of_a_split_report_the_write_timeout() {
    let (ws, _deaf_peer) = common::duplex_pair(config(), 4 << 10).await;
    let (mut reader, mut writer) = ws.split();
    let reading = tokio::spawn(async move { reader.recv().await });
    let started = Instant::now();
    let err = loop {
        if let Err(e) = writer.send(Message::binary(vec![1u8; 16 << 10])).await {
            break e;
        }
    };
    assert!(matches!(err, Error::WriteTimeout), "{err}");
    assert_timed_out_in_time(started);
    let read = reading.await.unwrap();
    assert!(matches!(read, Some(Err(Error::WriteTimeout))), "{read:?}");
}
