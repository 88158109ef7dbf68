//! `herald connect` against a real hub: `--hub subscribe`/`publish` in protocol mode, and
//! plain mode with nothing but lines.
#![allow(clippy::unwrap_used)]

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

async fn hub() -> (String, Arc<herald_hub::Hub>) {
    let hub = herald_hub::Hub::new(herald_hub::HubConfig::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(herald_hub::run(
        listener,
        hub.clone(),
        std::future::pending(),
    ));
    (format!("ws://{addr}"), hub)
}

fn herald(args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn output(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("herald connect ends by itself")
        .unwrap()
}

async fn subscriptions_reach(hub: &herald_hub::Hub, n: i64) {
    for _ in 0..500 {
        if hub.metrics().subscriptions.get() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} subscriptions never appeared");
}

#[tokio::test]
async fn hub_publish_reaches_a_hub_subscriber_and_shutdown_ends_it_cleanly() {
    let (base, hub) = hub().await;
    let url = format!("{base}/ws");
    let subscriber = herald(&["--hub", &url, "subscribe", "news"]);
    subscriptions_reach(&hub, 1).await;

    let published = output(herald(&["--hub", &url, "publish", "news", r#"{"n":1}"#])).await;
    assert_eq!(published.status.code(), Some(0));
    let reply: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    assert_eq!(reply["offset"], 1);

    // Let the publication arrive, then shut the hub down: 1001 is a clean end.
    tokio::time::sleep(Duration::from_millis(200)).await;
    hub.shutdown();
    let received = output(subscriber).await;
    assert_eq!(String::from_utf8_lossy(&received.stdout), "{\"n\":1}\n");
    assert_eq!(
        received.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&received.stderr)
    );
}

#[tokio::test]
async fn plain_mode_lines_reach_the_other_member_of_the_room() {
    let (base, hub) = hub().await;
    let room = format!("{base}/chat?groupId=42");
    let mut listener = herald(&[&room]);
    subscriptions_reach(&hub, 1).await;
    let mut talker = herald(&[&room]);
    subscriptions_reach(&hub, 2).await;
    let mut stdin = talker.stdin.take().unwrap();
    stdin.write_all(b"hello room\n").await.unwrap();
    drop(stdin);
    let talked = output(talker).await;
    assert_eq!(talked.status.code(), Some(0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(listener.stdin.take());
    let heard = output(listener).await;
    assert_eq!(String::from_utf8_lossy(&heard.stdout), "hello room\n");
    assert_eq!(heard.status.code(), Some(0));
}
