//! A server that does not follow the protocol: oversized messages end the connection with
//! 1009 before they are buffered; garbage, stray replies and publications on channels not held
//! are dropped; the client goes on.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, is_connected, is_disconnected, until};
use futures_util::StreamExt;
use herald::handshake::Accept;
use herald::{Message, WebSocket};
use herald_client::{ClientConfig, Event};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// A one-connection server speaking `herald.v1` badly: it sends `script` after `connected`,
/// then answers every command with an empty result.
async fn scripted(script: Vec<String>) -> SocketAddr {
    serve(Some(script)).await
}

/// With no script, the server accepts `herald.v1` and then says nothing at all.
async fn serve(script: Option<Vec<String>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let accept = Accept {
            subprotocol: Some("herald.v1".into()),
            ..Accept::default()
        };
        let mut ws = herald::accept_with(tcp, &herald::Config::default(), |_| Ok(accept))
            .await
            .unwrap();
        let Some(script) = script else {
            while ws.next().await.is_some() {}
            return;
        };
        let connected = r#"{"push":"connected","client":"c-1","user":"","ping_interval":25}"#;
        ws.send(Message::text(connected)).await.unwrap();
        for text in script {
            if ws.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        answer(&mut ws).await;
    });
    addr
}

async fn answer(ws: &mut WebSocket<TcpStream>) {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let command: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        let reply = serde_json::json!({"id": command["id"], "result": {}});
        if ws.send(Message::text(reply.to_string())).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn message_over_the_limit_ends_the_connection_with_1009() {
    let huge = format!(
        r#"{{"push":"pub","channel":"x","offset":1,"epoch":"e","data":"{}"}}"#,
        "a".repeat(2 << 20)
    );
    let addr = scripted(vec![huge]).await;
    let limits = herald::Config::default()
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .keepalive_interval(None);
    let config = ClientConfig::new(format!("ws://{addr}/ws"))
        .websocket(limits)
        .reconnect(false);
    let (_client, mut events) = client(config);
    let seen = until(&mut events, is_disconnected).await;
    let Some(Event::Disconnected(d)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(d.code, 1009, "{d:?}");
    assert!(!seen.iter().any(|e| matches!(e, Event::Publication(_))));
}

#[tokio::test]
async fn garbage_stray_replies_and_unheld_publications_are_dropped() {
    let script = vec![
        "not json".to_owned(),
        "[1,2,3]".to_owned(),
        r#"{"id":999,"result":{}}"#.to_owned(),
        r#"{"push":"unheard-of"}"#.to_owned(),
        r#"{"push":"pub","channel":"x","offset":1,"epoch":"e","data":1}"#.to_owned(),
        r#"{"push":"join","channel":"x","client":"c-2","user":""}"#.to_owned(),
        r#"{"push":"unsubscribed","channel":"x","reason":"no"}"#.to_owned(),
    ];
    let addr = scripted(script).await;
    let (client, mut events) = client(ClientConfig::new(format!("ws://{addr}/ws")));
    until(&mut events, is_connected).await;
    client.ping().await.unwrap();
    client.ping().await.unwrap();
    assert!(
        events.try_recv().is_err(),
        "nothing reached the application"
    );
}

#[tokio::test]
async fn server_that_never_says_connected_is_dropped_as_dead() {
    let addr = serve(None).await;
    let config = ClientConfig::new(format!("ws://{addr}/ws"))
        .command_timeout(std::time::Duration::from_millis(300))
        .reconnect(false);
    let (client, mut events) = client(config);
    let pinger = client.clone();
    let ping = tokio::spawn(async move { pinger.ping().await });
    let seen = until(&mut events, is_disconnected).await;
    let Some(Event::Disconnected(d)) = seen.last() else {
        unreachable!()
    };
    assert!(
        d.opened && matches!(d.error, Some(herald_client::Error::Dead)),
        "{d:?}"
    );
    assert!(
        ping.await.unwrap().is_err(),
        "nothing was sent before `connected`"
    );
}
