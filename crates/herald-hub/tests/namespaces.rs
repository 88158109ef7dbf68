//! Namespaces over real sockets: each `[namespaces.NAME]` rule in protocol mode, plain mode
//! and the HTTP API, and `latest` while another client publishes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald::Message;
use herald_hub::HubConfig;
use herald_hub::config::{NamespaceConfig, PlainRoute};
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "X-API-Key: k3y\r\n";

/// A hub with one namespace per rule, the HTTP API on, and a plain route into each of
/// `chat` and `feed`.
fn namespaced() -> HubConfig {
    let mut c = config();
    c.api.key = Some("k3y".into());
    // With a key configured, anonymous connections need an explicit policy.
    c.auth.allow_anonymous = Some(true);
    c.auth.anonymous_subscribe = Some(vec!["*".into()]);
    c.auth.anonymous_publish = Some(vec!["*".into()]);
    let tables = [
        (
            "chat",
            NamespaceConfig {
                history_size: Some(3),
                ..NamespaceConfig::default()
            },
        ),
        (
            "brief",
            NamespaceConfig {
                history_ttl: Some(Duration::from_millis(300)),
                ..NamespaceConfig::default()
            },
        ),
        (
            "feed",
            NamespaceConfig {
                publish: Some(false),
                ..NamespaceConfig::default()
            },
        ),
        (
            "quiet",
            NamespaceConfig {
                presence: Some(false),
                ..NamespaceConfig::default()
            },
        ),
        (
            "nojl",
            NamespaceConfig {
                join_leave: Some(false),
                ..NamespaceConfig::default()
            },
        ),
        (
            "live",
            NamespaceConfig {
                recover: Some(false),
                ..NamespaceConfig::default()
            },
        ),
        (
            "public",
            NamespaceConfig {
                anonymous_publish: Some(vec![]),
                ..NamespaceConfig::default()
            },
        ),
        (
            "prices",
            NamespaceConfig {
                history_size: Some(10),
                latest: Some(3),
                ..NamespaceConfig::default()
            },
        ),
    ];
    for (name, table) in tables {
        c.namespaces.insert(name.into(), table);
    }
    c.plain.routes.push(PlainRoute {
        path: "/feed".into(),
        params: vec!["id".into()],
    });
    c
}

fn offsets(publications: &Value) -> Vec<u64> {
    publications
        .as_array()
        .map(|a| a.iter().map(|p| p["offset"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

fn refusals(server: &Server, rule: &str) -> u64 {
    let labels = vec![("rule".to_owned(), rule.to_owned())];
    let metrics = server.hub.metrics();
    metrics.namespace_refusals.get_or_create(&labels).get()
}

#[tokio::test]
async fn an_unknown_namespace_is_refused_with_112_and_http_400() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    for (method, params) in [
        ("subscribe", json!({"channel": "news:1"})),
        ("publish", json!({"channel": "news:1", "data": 1})),
        ("history", json!({"channel": "news:1"})),
        ("presence", json!({"channel": "news:1"})),
    ] {
        let reply = a.call(method, params).await;
        assert_eq!(reply["error"]["code"], 112, "{method}: {reply}");
    }
    assert_eq!(refusals(&server, "unknown_namespace"), 4);
    // A channel without `:` is in the default namespace, which always exists.
    a.subscribe("lobby").await;
    a.publish("lobby", json!(1)).await;

    let (status, text) = server
        .post("/api/publish", KEY, r#"{"channel":"news:1","data":1}"#)
        .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(body_json(&text)["code"], 112);
    let (status, _) = server.get("/api/history/news:1", KEY).await;
    assert_eq!(status, 400);
    let (status, _) = server.get("/api/presence/news:1", KEY).await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn without_namespaces_every_prefix_is_the_default_namespace() {
    let mut server = Server::start(config()).await;
    let mut a = Client::connect(&server).await;
    a.subscribe("news:1").await;
    a.publish("news:1", json!(1)).await;
    assert_eq!(a.next_pub().await["offset"], 1);
    server.stop().await;
}

#[tokio::test]
async fn each_namespace_keeps_its_own_history_size() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    for n in 1..=5 {
        a.publish("chat:1", json!(n)).await;
        a.publish("lobby", json!(n)).await;
    }
    let chat = a.ok("history", json!({"channel": "chat:1"})).await;
    assert_eq!(offsets(&chat["publications"]), [3, 4, 5]);
    let lobby = a.ok("history", json!({"channel": "lobby"})).await;
    assert_eq!(offsets(&lobby["publications"]), [1, 2, 3, 4, 5]);
    // A plain-mode room in `chat` follows the same rule.
    let mut plain_client = plain(&server, "/chat?groupId=9").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 1).await;
    for n in 1..=4 {
        plain_client
            .send(Message::text(format!("m{n}")))
            .await
            .unwrap();
    }
    let mut watcher = Client::connect(&server).await;
    let mut seen = 0;
    while seen < 4 {
        let reply = watcher.ok("history", json!({"channel": "chat:9"})).await;
        seen = reply["offset"].as_u64().unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, text) = server.get("/api/history/chat:9", KEY).await;
    assert_eq!(status, 200);
    assert_eq!(offsets(&body_json(&text)["publications"]), [2, 3, 4]);
    server.stop().await;
}

#[tokio::test]
async fn each_namespace_keeps_history_for_its_own_ttl() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    a.publish("brief:1", json!(1)).await;
    a.publish("lobby", json!(1)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let brief = a.ok("history", json!({"channel": "brief:1"})).await;
    assert_eq!(offsets(&brief["publications"]), Vec::<u64>::new());
    let lobby = a.ok("history", json!({"channel": "lobby"})).await;
    assert_eq!(offsets(&lobby["publications"]), [1]);
    server.stop().await;
}

#[tokio::test]
async fn where_only_the_server_publishes_clients_get_103_and_the_api_publishes() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    a.subscribe("feed:1").await;
    let reply = a
        .call("publish", json!({"channel": "feed:1", "data": 1}))
        .await;
    assert_eq!(reply["error"]["code"], 103, "{reply}");
    assert_eq!(refusals(&server, "publish"), 1);
    let (status, text) = server
        .post("/api/publish", KEY, r#"{"channel":"feed:1","data":"news"}"#)
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(a.next_pub().await["data"], "news");

    // Plain mode: the room is readable, but a message from the client is a policy violation.
    let mut reader = plain(&server, "/feed?id=1").await;
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    server
        .post("/api/publish", KEY, r#"{"channel":"feed:1","data":"more"}"#)
        .await;
    assert_eq!(next_text(&mut reader).await, "\"more\"");
    reader.send(Message::text("mine")).await.unwrap();
    assert_eq!(closed_with(&mut reader).await, 1008);
    server.stop().await;
}

#[tokio::test]
async fn where_presence_is_off_presence_answers_107_and_nobody_joins() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.ok(
        "subscribe",
        json!({"channel": "quiet:1", "join_leave": true}),
    )
    .await;
    b.subscribe("quiet:1").await;
    let reply = a.call("presence", json!({"channel": "quiet:1"})).await;
    assert_eq!(reply["error"]["code"], 107, "{reply}");
    assert_eq!(refusals(&server, "presence"), 1);
    let (status, _) = server.get("/api/presence/quiet:1", KEY).await;
    assert_eq!(status, 400);
    b.publish("quiet:1", json!("after")).await;
    // The next push is the publication: no join came before it.
    let push = a.next_push().await;
    assert_eq!(push["push"], "pub", "{push}");
    server.stop().await;
}

#[tokio::test]
async fn where_join_leave_is_off_presence_works_but_no_join_is_pushed() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    a.ok(
        "subscribe",
        json!({"channel": "nojl:1", "join_leave": true}),
    )
    .await;
    b.subscribe("nojl:1").await;
    let present = a.ok("presence", json!({"channel": "nojl:1"})).await;
    assert_eq!(present["clients"].as_array().unwrap().len(), 2);
    b.publish("nojl:1", json!("after")).await;
    assert_eq!(a.next_push().await["push"], "pub");
    // The same in a namespace that allows them: the join comes first.
    a.ok(
        "subscribe",
        json!({"channel": "chat:j", "join_leave": true}),
    )
    .await;
    b.subscribe("chat:j").await;
    let join = a.next_push().await;
    assert_eq!(join["push"], "join", "{join}");
    assert_eq!(join["channel"], "chat:j");
    server.stop().await;
}

#[tokio::test]
async fn where_recovery_is_off_a_recover_answers_recovered_false() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    for channel in ["live:1", "chat:r"] {
        let first = a.publish(channel, json!(1)).await;
        a.publish(channel, json!(2)).await;
        let reply = a
            .ok(
                "subscribe",
                json!({"channel": channel, "recover": {"offset": 1, "epoch": first["epoch"]}}),
            )
            .await;
        let recovers = channel.starts_with("chat");
        assert_eq!(reply["recovered"], recovers, "{channel}: {reply}");
        let expected: Vec<u64> = if recovers { vec![2] } else { vec![] };
        assert_eq!(offsets(&reply["publications"]), expected);
        assert_eq!(reply["offset"], 2);
    }
    assert_eq!(refusals(&server, "recover"), 1);
    // History itself stays readable.
    let history = a.ok("history", json!({"channel": "live:1"})).await;
    assert_eq!(offsets(&history["publications"]), [1, 2]);
    server.stop().await;
}

#[tokio::test]
async fn anonymous_connections_get_each_namespaces_patterns() {
    let mut server = Server::start(namespaced()).await;
    let mut anonymous = Client::connect(&server).await;
    anonymous.subscribe("public:1").await;
    let reply = anonymous
        .call("publish", json!({"channel": "public:1", "data": 1}))
        .await;
    assert_eq!(reply["error"]["code"], 103, "{reply}");
    // Unset in `chat`: the top-level `auth.anonymous_publish`.
    anonymous.publish("chat:1", json!(1)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_subscribe_returns_the_latest_publications_oldest_first() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    for n in 1..=5 {
        a.publish("prices:eur", json!(n)).await;
        a.publish("lobby", json!(n)).await;
    }
    let mut b = Client::connect(&server).await;
    let reply = b.subscribe("prices:eur").await;
    assert_eq!(offsets(&reply["publications"]), [3, 4, 5]);
    assert_eq!(reply["publications"][2]["data"], 5);
    assert!(reply.get("recovered").is_none(), "{reply}");
    let cases = [(1, vec![5]), (50, vec![3, 4, 5]), (0, vec![])];
    for (latest, expected) in cases {
        let mut c = Client::connect(&server).await;
        let params = json!({"channel": "prices:eur", "latest": latest});
        let reply = c.ok("subscribe", params).await;
        assert_eq!(offsets(&reply["publications"]), expected, "latest {latest}");
    }
    // The default namespace's `latest` is 0.
    let lobby = b.subscribe("lobby").await;
    assert_eq!(offsets(&lobby["publications"]), Vec::<u64>::new());
    server.stop().await;
}

/// Subscribers arriving while another client publishes see every offset from their first
/// latest publication on exactly once, in order: the reply and live delivery meet without a
/// gap or a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_and_live_delivery_meet_without_gap_or_duplicate_while_publishing() {
    const TOTAL: u64 = 300;
    let mut server = Server::start(namespaced()).await;
    let mut publisher = Client::connect(&server).await;
    publisher.publish("prices:usd", json!(0)).await;
    let publishing = tokio::spawn(async move {
        for n in 1..TOTAL {
            publisher.publish("prices:usd", json!(n)).await;
        }
        publisher
    });
    let mut subscribers = Vec::new();
    for _ in 0..6 {
        let mut c = Client::connect(&server).await;
        let reply = c.subscribe("prices:usd").await;
        subscribers.push((c, reply));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _publisher = publishing.await.unwrap();
    for (mut c, reply) in subscribers {
        let mut seen = offsets(&reply["publications"]);
        assert!(!seen.is_empty() && seen.len() <= 3, "{reply}");
        assert_eq!(seen.last().copied(), reply["offset"].as_u64());
        while seen.last().copied() < Some(TOTAL) {
            seen.push(c.next_pub().await["offset"].as_u64().unwrap());
        }
        let first = seen[0];
        assert_eq!(seen, (first..=TOTAL).collect::<Vec<_>>());
    }
    server.stop().await;
}

#[tokio::test]
async fn history_reverse_with_limit_returns_the_newest_first() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    let mut epoch = Value::Null;
    for n in 1..=8 {
        epoch = a.publish("prices:gbp", json!(n)).await["epoch"].clone();
    }
    let read = |params: Value| {
        let mut p = json!({"channel": "prices:gbp"});
        p.as_object_mut()
            .unwrap()
            .extend(params.as_object().unwrap().clone());
        p
    };
    let newest = a
        .ok("history", read(json!({"reverse": true, "limit": 2})))
        .await;
    assert_eq!(offsets(&newest["publications"]), [8, 7]);
    assert_eq!(newest["offset"], 8);
    let oldest = a.ok("history", read(json!({"limit": 2}))).await;
    assert_eq!(offsets(&oldest["publications"]), [1, 2]);
    let since = json!({"offset": 5, "epoch": epoch});
    let after = a
        .ok(
            "history",
            read(json!({"reverse": true, "since": since, "limit": 10})),
        )
        .await;
    assert_eq!(offsets(&after["publications"]), [8, 7, 6]);
    let cut = a
        .ok(
            "history",
            read(json!({"reverse": true, "since": since, "limit": 1})),
        )
        .await;
    assert_eq!(offsets(&cut["publications"]), [8]);
    // A position from another epoch is not reachable.
    let stale = json!({"offset": 1, "epoch": "not-this-one"});
    let reply = a
        .call("history", read(json!({"reverse": true, "since": stale})))
        .await;
    assert_eq!(reply["error"]["code"], 110, "{reply}");

    let (status, text) = server
        .get("/api/history/prices:gbp?reverse=true&limit=3", KEY)
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(offsets(&body_json(&text)["publications"]), [8, 7, 6]);
    server.stop().await;
}

#[tokio::test]
async fn history_reverse_since_a_trimmed_position_is_110() {
    let mut server = Server::start(namespaced()).await;
    let mut a = Client::connect(&server).await;
    let mut epoch = Value::Null;
    for n in 1..=6 {
        epoch = a.publish("chat:t", json!(n)).await["epoch"].clone();
    }
    // `chat` keeps 3: offsets 4-6. From 2, offset 3 is gone.
    let params = json!({
        "channel": "chat:t", "reverse": true, "limit": 1,
        "since": {"offset": 2, "epoch": epoch},
    });
    let reply = a.call("history", params).await;
    assert_eq!(reply["error"]["code"], 110, "{reply}");
    let params = json!({
        "channel": "chat:t", "reverse": true, "limit": 1,
        "since": {"offset": 3, "epoch": epoch},
    });
    let reply = a.ok("history", params).await;
    assert_eq!(offsets(&reply["publications"]), [6]);
    server.stop().await;
}

#[tokio::test]
async fn a_route_into_an_unknown_namespace_is_a_configuration_error() {
    let mut c = config();
    c.namespaces
        .insert("news".into(), NamespaceConfig::default());
    let e = herald_hub::Hub::new(c).unwrap_err();
    assert!(e.to_string().contains("plain.routes"), "{e}");
}
