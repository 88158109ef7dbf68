//! permessage-deflate negotiated by our client and server over loopback.
#![allow(clippy::unwrap_used)]

mod common;

use herald::{Config, DeflateConfig, Message, PreparedMessage};

fn compressing(deflate: DeflateConfig) -> Config {
    common::big_config().deflate(Some(deflate))
}

async fn echo_with(config: Config) -> std::net::SocketAddr {
    common::serve(config, |mut ws| async move {
        while let Some(Ok(message)) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
    .await
}

#[tokio::test]
async fn client_and_server_negotiate_deflate_and_echo_compressed_messages() {
    let addr = echo_with(compressing(DeflateConfig::default())).await;
    let mut client_side = DeflateConfig::default();
    client_side.client_max_window_bits = 10;
    let (mut ws, accepted) = herald::ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(compressing(client_side))
        .connect()
        .await
        .unwrap();
    assert_eq!(accepted.extensions[0].name, "permessage-deflate");
    let params = *ws.protocol().deflate().unwrap();
    assert_eq!(params.client_max_window_bits, 10);
    let big = "the same words again and again ".repeat(10_000);
    for message in [
        Message::text(big.clone()),
        Message::text("short"),
        Message::binary(vec![9u8; 1 << 20]),
    ] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(common::next_data(&mut ws).await, message);
    }
}

#[tokio::test]
async fn server_without_deflate_leaves_a_compressing_client_uncompressed() {
    let addr = common::echo_server().await;
    let (mut ws, accepted) = herald::ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(compressing(DeflateConfig::default()))
        .connect()
        .await
        .unwrap();
    assert!(accepted.extensions.is_empty());
    assert!(ws.protocol().deflate().is_none());
    ws.send(Message::text("plain".repeat(100))).await.unwrap();
    assert_eq!(
        common::next_data(&mut ws).await,
        Message::text("plain".repeat(100))
    );
}

#[tokio::test]
async fn prepared_broadcast_reaches_every_compressing_client() {
    let mut shared = DeflateConfig::default();
    shared.server_no_context_takeover = true;
    let text = herald::proto::Message::Text("news ".repeat(2000).into());
    let prepared = PreparedMessage::new(text, Some(&shared));
    let prepared = std::sync::Arc::new(prepared);
    let p = prepared.clone();
    let addr = common::serve(compressing(shared), move |mut ws| {
        let p = p.clone();
        async move {
            ws.feed_prepared(&p).await.unwrap();
            ws.flush().await.unwrap();
            while ws.recv().await.is_some() {}
        }
    })
    .await;
    for _ in 0..3 {
        let (mut ws, _) = herald::ClientBuilder::new(&format!("ws://{addr}/"))
            .unwrap()
            .config(compressing(DeflateConfig::default()))
            .connect()
            .await
            .unwrap();
        assert!(ws.protocol().deflate().unwrap().server_no_context_takeover);
        assert_eq!(
            common::next_data(&mut ws).await,
            Message::text("news ".repeat(2000))
        );
    }
}
