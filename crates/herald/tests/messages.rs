//! Our client against our server over loopback: text, binary, fragmented and 16 MiB messages,
//! interleaved pings, split halves.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{client, echo_server, next_data};
use herald::Message;

#[tokio::test]
async fn text_and_binary_messages_echo_unchanged() {
    let mut ws = client(echo_server().await).await;
    ws.send(Message::text("κόσμε")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("κόσμε"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Message::binary(vec![0u8, 1, 2, 255])
    );
}

#[tokio::test]
async fn fragmented_text_is_reassembled_across_a_split_code_point() {
    let mut ws = client(echo_server().await).await;
    let text = "𝄞 music ".repeat(1000);
    // 7-byte fragments cut the 4-byte code points at every position.
    ws.send_fragmented(Message::text(text.clone()), 7)
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text(text));
}

#[tokio::test]
async fn sixteen_mib_message_round_trips() {
    let mut ws = client(echo_server().await).await;
    let payload = Bytes::from((0..16 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    ws.send(Message::Binary(payload.clone())).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::Binary(payload));
}

#[tokio::test]
async fn pings_between_messages_are_answered_with_pongs() {
    let mut ws = client(echo_server().await).await;
    ws.feed(Message::text("one")).await.unwrap();
    ws.feed(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    ws.feed(Message::text("two")).await.unwrap();
    ws.flush().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(ws.recv().await.unwrap().unwrap());
    }
    assert_eq!(
        seen,
        [
            Message::text("one"),
            Message::Pong(Bytes::from_static(b"are you there")),
            Message::text("two"),
        ]
    );
}

#[tokio::test]
async fn many_batched_messages_arrive_in_order() {
    let mut ws = client(echo_server().await).await;
    for i in 0..1000 {
        ws.feed(Message::text(i.to_string())).await.unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..1000 {
        assert_eq!(next_data(&mut ws).await, Message::text(i.to_string()));
    }
}

#[tokio::test]
async fn split_halves_work_from_two_tasks() {
    let ws = client(echo_server().await).await;
    let (mut reader, mut writer) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..100 {
            writer.send(Message::text(format!("m{i}"))).await.unwrap();
        }
        writer
    });
    for i in 0..100 {
        let message = reader.recv().await.unwrap().unwrap();
        assert_eq!(message, Message::text(format!("m{i}")));
    }
    let writer = sender.await.unwrap();
    assert!(reader.reunite(writer).is_ok());
}
