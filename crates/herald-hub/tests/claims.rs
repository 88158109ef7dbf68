//! A client choosing its own token claims (RFC 7519 §4.1) and coming without one: what the
//! handshake answers, and that no claim can take the server down.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
const SECRET: &str = "s3cret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token with exactly these claims, signed with the hub's secret.
fn token(claims: Value) -> String {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

async fn status(server: &Server, claims: Value) -> u16 {
    let path = format!("/chat?groupId=1&token={}", token(claims));
    server.get(&path, UPGRADE).await.0
}

fn rejections(server: &Server, status: u16) -> String {
    let metrics = server.hub.metrics().render();
    let prefix = format!("herald_handshake_rejections_total{{status=\"{status}\"}} ");
    let line = metrics.lines().find(|l| l.starts_with(&prefix));
    line.map_or("0", |l| &l[prefix.len()..]).to_owned()
}

#[tokio::test]
async fn a_token_from_another_issuer_or_for_another_audience_gets_401() {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some(SECRET.into());
    cfg.auth.issuer = Some("https://auth.example".into());
    cfg.auth.audience = Some("herald".into());
    let mut server = Server::start(cfg).await;
    let exp = now() + 60;
    let iss = "https://auth.example";
    let refused = [
        json!({"sub": "ann", "exp": exp, "iss": "https://evil.example", "aud": "herald"}),
        json!({"sub": "ann", "exp": exp, "aud": "herald"}),
        json!({"sub": "ann", "exp": exp, "iss": [iss], "aud": "herald"}),
        json!({"sub": "ann", "exp": exp, "iss": iss}),
        json!({"sub": "ann", "exp": exp, "iss": iss, "aud": "other"}),
        json!({"sub": "ann", "exp": exp, "iss": iss, "aud": ["other", "more"]}),
    ];
    for claims in &refused {
        assert_eq!(status(&server, claims.clone()).await, 401, "{claims}");
    }
    for aud in [json!("herald"), json!(["other", "herald"])] {
        let claims = json!({"sub": "ann", "exp": exp, "iss": iss, "aud": aud});
        assert_eq!(status(&server, claims.clone()).await, 101, "{claims}");
    }
    assert_eq!(rejections(&server, 401), refused.len().to_string());
    server.stop().await;
}

#[tokio::test]
async fn a_token_whose_nbf_has_not_come_gets_401() {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some(SECRET.into());
    let mut server = Server::start(cfg).await;
    let exp = now() + 600;
    for nbf in [json!(now() + 30), json!(u64::MAX), json!("later")] {
        let claims = json!({"sub": "ann", "exp": exp, "nbf": nbf});
        assert_eq!(status(&server, claims).await, 401, "nbf {nbf}");
    }
    let claims = json!({"sub": "ann", "exp": exp, "nbf": now() - 1});
    assert_eq!(status(&server, claims).await, 101);
    server.stop().await;
}

#[tokio::test]
async fn an_exp_at_the_end_of_time_is_admitted_and_the_server_keeps_serving() {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some(SECRET.into());
    let mut server = Server::start(cfg).await;
    let far = [
        json!(u64::MAX),
        json!(i64::MAX),
        json!(1e19),
        json!(u64::MAX - 1),
    ];
    let mut clients = Vec::new();
    for exp in far {
        let claims = json!({"sub": "ann", "exp": exp, "channels": ["chat:*"]});
        let url = format!("{}?token={}", server.url("/ws"), token(claims));
        let mut client = Client::connect_url(&url).await;
        // A reply means the session got past computing its expiry deadline.
        client.subscribe("chat:far").await;
        clients.push(client);
    }
    // Past the float range the JWT library takes for a NumericDate: refused, not a crash.
    assert_eq!(
        status(&server, json!({"sub": "ann", "exp": 1e300})).await,
        401
    );
    let published = clients[0].publish("chat:far", json!("still here")).await;
    assert_eq!(published["offset"], 1);
    for client in &mut clients {
        assert_eq!(client.next_pub().await["data"], "still here");
    }
    let mut late = Client::connect_url(&format!(
        "{}?token={}",
        server.url("/ws"),
        token(json!({"sub": "bob", "exp": now() + 60, "channels": ["*"]}))
    ))
    .await;
    late.subscribe("chat:far").await;
    server.stop().await;
}

mod anonymous {
    //! With a key configured, connections without a token get nothing unless told.
    use super::*;

    fn open_with_a_key() -> herald_hub::HubConfig {
        let mut cfg = config();
        cfg.auth.hs256_secret = Some(SECRET.into());
        cfg.auth.allow_anonymous = Some(true);
        cfg
    }

    #[tokio::test]
    async fn an_anonymous_client_connects_but_may_neither_subscribe_nor_publish() {
        let mut server = Server::start(open_with_a_key()).await;
        let mut anon = Client::connect(&server).await;
        for method in ["subscribe", "history", "presence"] {
            let reply = anon.call(method, json!({"channel": "chat:1"})).await;
            assert_eq!(reply["error"]["code"], 103, "{method}: {reply}");
        }
        let reply = anon
            .call("publish", json!({"channel": "chat:1", "data": "hi"}))
            .await;
        assert_eq!(reply["error"]["code"], 103, "{reply}");
        // Plain mode has no error replies: the room is refused with 1008.
        let mut plain_client = plain(&server, "/chat?groupId=1").await;
        assert_eq!(closed_with(&mut plain_client).await, 1008);
        server.stop().await;
    }

    #[tokio::test]
    async fn configured_patterns_still_grant_what_they_name() {
        let mut cfg = open_with_a_key();
        cfg.auth.anonymous_subscribe = Some(vec!["public:*".into()]);
        let mut server = Server::start(cfg).await;
        let mut anon = Client::connect(&server).await;
        anon.subscribe("public:news").await;
        let reply = anon
            .call("publish", json!({"channel": "public:news", "data": 1}))
            .await;
        assert_eq!(reply["error"]["code"], 103, "publish stays closed: {reply}");
        server.stop().await;
    }

    #[tokio::test]
    async fn without_a_key_anonymous_clients_keep_every_channel() {
        let mut server = Server::start(config()).await;
        let mut anon = Client::connect(&server).await;
        anon.subscribe("chat:1").await;
        anon.publish("chat:1", json!("hi")).await;
        server.stop().await;
    }
}
