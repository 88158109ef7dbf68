//! The backend HTTP API, health and metrics.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

fn hub_with_key() -> herald_hub::HubConfig {
    let mut cfg = config();
    cfg.api.key = Some("k3y".into());
    cfg
}

#[tokio::test]
async fn api_publish_reaches_subscribers_and_returns_the_position() {
    let mut server = Server::start(hub_with_key()).await;
    let mut a = Client::connect(&server).await;
    a.subscribe("alerts").await;
    let mut room = plain(&server, "/chat?groupId=5").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;

    let (status, text) = server
        .post(
            "/api/publish",
            "X-API-Key: k3y\r\n",
            r#"{"channel":"alerts","data":{"level":"high"}}"#,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let body = body_json(&text);
    assert_eq!(body["offset"], 1);
    let push = a.next_pub().await;
    assert_eq!(push["data"], json!({"level": "high"}));
    assert_eq!(push["epoch"], body["epoch"]);

    let (status, text) = server
        .post(
            "/api/broadcast",
            "Authorization: apikey k3y\r\n",
            r#"{"channels":["alerts","chat:5"],"data":"all"}"#,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(body_json(&text)["results"].as_array().unwrap().len(), 2);
    assert_eq!(a.next_pub().await["data"], "all");
    assert_eq!(
        next_text(&mut room).await,
        "\"all\"",
        "plain clients get the JSON text"
    );
    server.stop().await;
}

#[tokio::test]
async fn api_needs_the_key() {
    let mut server = Server::start(hub_with_key()).await;
    let (status, _) = server
        .post("/api/publish", "", r#"{"channel":"a","data":1}"#)
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post(
            "/api/publish",
            "X-API-Key: wrong\r\n",
            r#"{"channel":"a","data":1}"#,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post("/api/publish", "X-API-Key: k3y\r\n", "{oops")
        .await;
    assert_eq!(status, 400);
    server.stop().await;
    let mut server = Server::start(config()).await;
    let (status, _) = server
        .post(
            "/api/publish",
            "X-API-Key: k3y\r\n",
            r#"{"channel":"a","data":1}"#,
        )
        .await;
    assert_eq!(status, 403, "no key configured: the API is off");
    server.stop().await;
}

#[tokio::test]
async fn api_history_and_presence() {
    let mut server = Server::start(hub_with_key()).await;
    let mut a = Client::connect(&server).await;
    a.subscribe("log").await;
    for i in 1..=3 {
        a.publish("log", json!(i)).await;
    }
    let (status, text) = server.get("/api/history/log", "X-API-Key: k3y\r\n").await;
    assert_eq!(status, 200, "{text}");
    let history = body_json(&text);
    assert_eq!(history["publications"].as_array().unwrap().len(), 3);
    let epoch = history["epoch"].as_str().unwrap();
    let (_, text) = server
        .get(
            &format!("/api/history/log?since=2&epoch={epoch}"),
            "X-API-Key: k3y\r\n",
        )
        .await;
    assert_eq!(body_json(&text)["publications"][0]["offset"], 3);
    let (status, _) = server
        .get("/api/history/log?since=2&epoch=zzz", "X-API-Key: k3y\r\n")
        .await;
    assert_eq!(status, 409);
    let (status, text) = server.get("/api/presence/log", "X-API-Key: k3y\r\n").await;
    assert_eq!(status, 200);
    assert_eq!(
        body_json(&text)["clients"][0]["client"],
        a.client_id.as_str()
    );
    server.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics_report_traffic() {
    let mut server = Server::start(hub_with_key()).await;
    let (status, text) = server.get("/healthz", "").await;
    assert_eq!(status, 200);
    assert_eq!(body_json(&text)["status"], "ok");
    let mut a = Client::connect(&server).await;
    a.subscribe("m").await;
    a.publish("m", json!("x")).await;
    a.next_pub().await;
    let _ = server.get("/ws", "").await; // 426
    let (status, text) = server.get("/metrics", "").await;
    assert_eq!(status, 200);
    for needle in [
        "herald_connections{mode=\"protocol\"} 1",
        "herald_subscriptions 1",
        "herald_messages_in_total 2",
        "herald_publications_total 1",
        "herald_handshake_rejections_total{status=\"426\"} 1",
        "herald_slow_consumer_drops_total 0",
        "herald_broker_latency_seconds_count{op=\"publish\"} 1",
        "herald_broker_up 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    a.ws.close(herald::CloseCode::NORMAL, "bye").await.unwrap();
    wait_for(|| {
        server
            .hub
            .metrics()
            .render()
            .contains("herald_disconnects_total{code=\"1000\"} 1")
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_demo_page_is_served_at_the_root() {
    let mut server = Server::start(config()).await;
    let (status, text) = server.get("/", "").await;
    assert_eq!(status, 200);
    assert!(text.contains("<title>Herald"));
    server.stop().await;
}
