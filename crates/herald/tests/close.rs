//! Every way a connection ends (RFC 6455 §7): clean by either side, abrupt EOF, timeouts.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, serve};
use herald::{CloseCode, Config, Initiator, Message};
use std::time::Duration;
use tokio::sync::oneshot;

#[tokio::test]
async fn client_initiated_close_is_clean_on_both_sides() {
    let (tx, rx) = oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let addr = serve(Config::default(), move |mut ws| {
        let tx = tx.lock().unwrap().take();
        async move {
            let last = ws.recv().await.unwrap().unwrap();
            assert!(ws.recv().await.is_none());
            tx.unwrap()
                .send((last, ws.closed().cloned().unwrap()))
                .unwrap();
        }
    })
    .await;
    let mut ws = client(addr).await;
    let closed = ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.code(), CloseCode::NORMAL);
    assert!(closed.is_clean());
    let (last, server_closed) = rx.await.unwrap();
    let Message::Close(Some(frame)) = last else {
        panic!("{last:?}")
    };
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::NORMAL, "bye")
    );
    assert_eq!(server_closed.initiator, Initiator::Remote);
    assert!(server_closed.is_clean());
}

#[tokio::test]
async fn server_initiated_close_reaches_the_client_with_code_and_reason() {
    let addr = serve(Config::default(), |mut ws| async move {
        ws.close(CloseCode::GOING_AWAY, "restarting").await.unwrap();
    })
    .await;
    let mut ws = client(addr).await;
    let Message::Close(Some(frame)) = ws.recv().await.unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode::GOING_AWAY, "restarting")
    );
    assert!(ws.recv().await.is_none());
    let closed = ws.closed().unwrap();
    assert_eq!(closed.initiator, Initiator::Remote);
    assert!(closed.is_clean());
}

#[tokio::test]
async fn abrupt_eof_ends_the_connection_with_1006() {
    let addr = serve(Config::default(), |ws| async move { drop(ws) }).await;
    let mut ws = client(addr).await;
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Close(None));
    assert!(ws.recv().await.is_none());
    let closed = ws.closed().unwrap();
    assert_eq!(closed.code(), CloseCode::ABNORMAL);
    assert!(!closed.is_clean());
}

#[tokio::test]
async fn sending_after_close_is_a_misuse_error() {
    let addr = common::echo_server().await;
    let mut ws = client(addr).await;
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    let err = ws.send(Message::text("late")).await.unwrap_err();
    assert!(matches!(err, herald::Error::Misuse(_)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn peer_that_never_answers_close_is_dropped_after_the_close_timeout() {
    let config = Config::default().close_timeout(Duration::from_secs(3));
    let (mut ws, _silent_peer) = common::duplex_pair(config, 64 << 10).await;
    let started = tokio::time::Instant::now();
    let closed = ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(closed.code(), CloseCode::ABNORMAL);
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn silent_peer_fails_keepalive_after_interval_plus_timeout() {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(5)))
        .keepalive_timeout(Duration::from_secs(5));
    let (mut ws, _silent_peer) = common::duplex_pair(config, 64 << 10).await;
    let started = tokio::time::Instant::now();
    let err = ws.recv().await.unwrap().unwrap_err();
    assert!(matches!(err, herald::Error::KeepaliveTimeout), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert!(ws.recv().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_a_quiet_peer_that_stays_alive() {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(5)))
        .keepalive_timeout(Duration::from_secs(5));
    let (a, b) = tokio::io::duplex(64 << 10);
    let server = tokio::spawn(async move {
        let mut ws = herald::accept_with(a, &config, |_| Ok(Default::default()))
            .await
            .unwrap();
        let mut pongs = 0;
        while pongs < 3 {
            if let Message::Pong(_) = ws.recv().await.unwrap().unwrap() {
                pongs += 1;
            }
        }
        pongs
    });
    let quiet = Config::default()
        .keepalive_interval(None)
        .keepalive_timeout(Duration::from_secs(1));
    let (mut client, _) = herald::ClientBuilder::new("ws://x/")
        .unwrap()
        .config(quiet)
        .connect_on(b)
        .await
        .unwrap();
    let reader = tokio::spawn(async move { while client.recv().await.is_some() {} });
    assert_eq!(server.await.unwrap(), 3);
    reader.abort();
}
