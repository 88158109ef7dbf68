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
    let config = Config::default()
        .write_buffer_size(32 << 10)
        .max_write_buffer_size(CAP);
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

#[tokio::test]
async fn queue_neither_waits_nor_writes_and_buffered_reports_what_is_queued() {
    const CAP: usize = 64 << 10;
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let config = Config::default()
        .write_buffer_size(16 << 10)
        .max_write_buffer_size(CAP);
    let addr = common::serve(config, move |mut ws| {
        let tx = tx.lock().unwrap().take().unwrap();
        async move {
            let message = Message::binary(vec![7u8; 16 << 10]);
            let prepared = herald::PreparedMessage::new(
                herald::proto::Message::Binary(vec![8u8; 16 << 10].into()),
                None,
            );
            let mut full_after = None;
            for i in 0..8 {
                ws.queue(message.clone()).unwrap();
                ws.queue_prepared(&prepared).unwrap();
                if full_after.is_none() && ws.is_write_buffer_full() {
                    full_after = Some(i);
                }
            }
            // Nothing was written: the queue holds every frame, past the cap.
            let buffered = ws.buffered();
            ws.queue(Message::Close(None)).unwrap();
            let after_close = ws.queue(Message::text("late"));
            ws.flush().await.unwrap();
            tx.send((buffered, full_after, after_close.is_err(), ws.buffered()))
                .unwrap();
        }
    })
    .await;
    let mut client = common::client(addr).await;
    let (buffered, full_after, misuse, drained) = rx.await.unwrap();
    assert_eq!(buffered, 16 * ((16 << 10) + 4));
    assert_eq!(full_after, Some(1));
    assert!(misuse, "queue after Close must fail with Misuse");
    assert_eq!(drained, 0);
    for _ in 0..16 {
        match common::next_data(&mut client).await {
            Message::Binary(data) => assert_eq!(data.len(), 16 << 10),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn split_reader_stops_reading_while_the_queue_is_full_and_resumes_once_it_drains() {
    const CAP: usize = 64 << 10;
    const MESSAGE: usize = 16 << 10;
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let config = Config::default()
        .write_buffer_size(16 << 10)
        .max_write_buffer_size(CAP);
    let addr = common::serve(config, move |ws| {
        let tx = tx.lock().unwrap().take().unwrap();
        async move {
            let (mut reader, mut writer) = ws.split();
            // Fill the queue: the client does not read yet.
            let mut sent = 0usize;
            loop {
                let feed = writer.feed(Message::binary(vec![3u8; MESSAGE]));
                match tokio::time::timeout(Duration::from_millis(300), feed).await {
                    Ok(result) => result.unwrap(),
                    Err(_) => break,
                }
                sent += 1;
            }
            // The client's message arrived, but a full queue stops the reader.
            let paused = tokio::time::timeout(Duration::from_millis(300), reader.recv())
                .await
                .is_err();
            // The writer keeps waiting for the queue in another task; the reader resumes
            // once the client reads.
            let writing = tokio::spawn(async move {
                writer
                    .feed(Message::binary(vec![3u8; MESSAGE]))
                    .await
                    .unwrap();
                writer.flush().await.unwrap();
                writer
            });
            let received = loop {
                match reader.recv().await.unwrap().unwrap() {
                    Message::Text(text) => break text.to_string(),
                    _ => continue,
                }
            };
            let writer = writing.await.unwrap();
            tx.send((sent + 1, paused, received)).unwrap();
            drop(reader.reunite(writer).unwrap());
        }
    })
    .await;
    let mut client = common::client(addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.send(Message::text("hello")).await.unwrap();
    // Stay away until the server has seen its queue full for a while.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (tx_count, rx_count) = oneshot::channel();
    let reading = tokio::spawn(async move {
        let mut got = 0usize;
        while let Some(Ok(message)) = client.recv().await {
            if message.is_data() {
                got += 1;
            }
        }
        tx_count.send(got).unwrap();
    });
    // Whichever half drains the queue wakes the other: no wait for a timer to fire.
    let (sent, paused, received) = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the halves resumed")
        .unwrap();
    assert!(paused, "the reader went on reading with a full queue");
    assert_eq!(received, "hello");
    assert_eq!(rx_count.await.unwrap(), sent);
    reading.await.unwrap();
}
