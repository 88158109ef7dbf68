//! Fan-out writes a broadcast straight into an idle WebSocket's socket (`crate::direct`):
//! every frame stays whole and in order, a full socket sends deliveries back to the
//! connection's queue, and the slow-consumer limit still holds.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::StreamExt;
use herald::Message;

fn numbered(i: u32, size: usize) -> Vec<u8> {
    let mut payload = vec![(i % 251) as u8; size];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    payload
}

#[tokio::test]
async fn an_idle_subscribers_deliveries_are_written_by_fan_out_itself() {
    let mut server = Server::start(config()).await;
    let mut reader = plain(&server, "/chat?groupId=1").await;
    let mut writer = plain(&server, "/chat?groupId=1").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    for i in 0..20 {
        writer.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(next_text(&mut reader).await, format!("m{i}"));
    }
    // The reader waits between messages, so fan-out writes to it (the first may race the
    // reader's task settling down); the writer's own copy goes through its busy task's
    // queue and is dropped there (no echo).
    let direct = server.hub.metrics().direct_deliveries.get();
    assert!((19..=20).contains(&direct), "direct deliveries: {direct}");
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_gets_every_frame_whole_and_in_order() {
    const MESSAGES: u32 = 600;
    const SIZE: usize = 32 << 10;
    let mut server = Server::start(config()).await;
    let mut reader = plain(&server, "/chat?groupId=2").await;
    let mut writer = plain(&server, "/chat?groupId=2").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    // 19 MiB while the reader reads nothing: more than both kernel buffers hold, so fan-out
    // meets a full socket, leaves a frame half written and queues the rest for the task.
    for i in 0..MESSAGES {
        writer
            .send(Message::binary(numbered(i, SIZE)))
            .await
            .unwrap();
    }
    let metrics = server.hub.metrics();
    wait_for(|| metrics.messages_out.get() >= u64::from(MESSAGES) * 2).await;
    for i in 0..MESSAGES {
        let got = tokio::time::timeout(WAIT, reader.next())
            .await
            .unwrap_or_else(|_| panic!("delivery {i} never came: {}", metrics.render()))
            .expect("open")
            .expect("a whole frame");
        assert_eq!(got, Message::binary(numbered(i, SIZE)), "message {i}");
    }
    let direct = metrics.direct_deliveries.get();
    assert!(
        direct > 0 && direct < u64::from(MESSAGES),
        "direct deliveries: {direct}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_still_closed_with_4001() {
    let mut cfg = config();
    cfg.limits.queue_size = 16;
    let mut server = Server::start(cfg).await;
    let stalled = plain(&server, "/chat?groupId=3").await;
    let mut writer = plain(&server, "/chat?groupId=3").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    let metrics = server.hub.metrics();
    let mut sent = 0u32;
    while metrics.slow_consumer_drops.get() == 0 {
        assert!(sent < 10_000, "never dropped");
        writer
            .send(Message::binary(numbered(sent, 32 << 10)))
            .await
            .unwrap();
        sent += 1;
    }
    wait_for(|| {
        metrics
            .render()
            .contains("herald_disconnects_total{code=\"4001\"} 1")
    })
    .await;
    assert!(metrics.direct_deliveries.get() > 0);
    drop(stalled);
    server.stop().await;
}

/// A plain-mode publisher's own messages reach its queue too (to be skipped there, without
/// echo). A burst that its task reads back to back must not fill that queue: the task takes
/// its deliveries between messages, so only a subscriber that does not read is a slow one.
/// (The publisher is alone in its room: a reading subscriber with a queue this short would
/// be at the scheduler's mercy, closed with 4001 whenever its task runs late.)
#[tokio::test]
async fn a_publisher_whose_burst_outpaces_its_task_is_not_a_slow_consumer() {
    const MESSAGES: u32 = 300;
    let mut cfg = config();
    cfg.limits.queue_size = 4;
    let mut server = Server::start(cfg).await;
    let mut writer = plain(&server, "/chat?groupId=4").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 1).await;
    // Queued and written at once: the server reads the whole burst from one buffer.
    for i in 0..MESSAGES {
        writer.feed(Message::binary(numbered(i, 64))).await.unwrap();
    }
    writer.feed(Message::Ping("after".into())).await.unwrap();
    writer.flush().await.unwrap();
    // The Pong answers the Ping read after the whole burst: the writer is still open.
    let metrics = server.hub.metrics();
    let got = tokio::time::timeout(WAIT, writer.next())
        .await
        .unwrap_or_else(|_| panic!("no Pong: {}", metrics.render()))
        .expect("open")
        .expect("a whole frame");
    assert_eq!(got, Message::Pong("after".into()), "{}", metrics.render());
    wait_for(|| metrics.publications.get() == u64::from(MESSAGES)).await;
    assert_eq!(metrics.slow_consumer_drops.get(), 0, "{}", metrics.render());
    server.stop().await;
}
