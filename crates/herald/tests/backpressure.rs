//! A peer that stops reading: sending waits, and memory stays bounded by the write cap.
#![allow(clippy::unwrap_used)]

mod common;

use herald::{Config, Message};
use std::time::Duration;
use tokio::sync::oneshot;

#[tokio::test]
async fn send_waits_when_the_peer_stops_reading_and_the_queue_stays_bounded() {
    const CAP: usize = 256 << 10;
    const MESSAGE: usize = 64 << 10;
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let config = Config::default().write_buffer(32 << 10, CAP);
    let addr = common::serve(config, move |mut ws| {
        let tx = tx.lock().unwrap().take().unwrap();
        async move {
            let payload = Message::binary(vec![1u8; MESSAGE]);
            let mut sent = 0usize;
            let mut most_queued = 0;
            loop {
                let send = ws.feed(payload.clone());
                match tokio::time::timeout(Duration::from_millis(500), send).await {
                    Ok(result) => result.unwrap(),
                    Err(_) => break,
                }
                sent += 1;
                most_queued = most_queued.max(ws.protocol().transmit_len());
                assert!(sent < 100_000, "send never blocked");
            }
            tx.send((sent, most_queued)).unwrap();
        }
    })
    .await;
    // The client connects and never reads.
    let _client = common::client(addr).await;
    let (sent, most_queued) = rx.await.unwrap();
    assert!(sent > 0);
    assert!(
        most_queued <= CAP + MESSAGE + 64,
        "queued {most_queued} bytes"
    );
}
