//! WebSockets over HTTP/2 (RFC 8441): h2c with prior knowledge and h2 by ALPN, through the
//! same origin policy, credentials and limits as the HTTP/1.1 upgrade, counted by version.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use herald::ClientBuilder;
use herald::h2::Http2Connection;
use herald::http::StatusCode;
use herald_hub::HubConfig;
use herald_hub_protocol::SUBPROTOCOL;
use serde_json::json;

fn builder(server: &Server, path: &str) -> ClientBuilder {
    ClientBuilder::new(&server.url(path))
        .unwrap()
        .subprotocol(SUBPROTOCOL)
}

fn refused(error: herald::Error) -> (StatusCode, String) {
    match error {
        herald::Error::Handshake(herald_proto::HandshakeError::Rejected(response)) => (
            response.status,
            String::from_utf8(response.body.to_vec()).unwrap(),
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn metric(server: &Server, line: &str) -> bool {
    server.hub.metrics().render().lines().any(|l| l == line)
}

#[tokio::test]
async fn websockets_and_api_requests_share_one_h2c_connection_counted_as_http_2() {
    let mut server = Server::start(config()).await;
    let connection = Http2Connection::open(&builder(&server, "/ws"))
        .await
        .unwrap();
    let (ws, _) = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap();
    let mut alice = Client::from_ws(ws).await;
    let (ws, _) = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap();
    let mut bob = Client::from_ws(ws).await;
    bob.subscribe("news").await;
    alice.publish("news", json!({"text": "over h2"})).await;
    assert_eq!(bob.next_pub().await["data"]["text"], "over h2");

    let health = http::Request::get(format!("http://{}/healthz", server.addr))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = connection.send_request(health).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);

    let _over_http1 = Client::connect(&server).await;
    assert!(metric(&server, "herald_ws_upgrades_total{http=\"2\"} 2"));
    assert!(metric(&server, "herald_ws_upgrades_total{http=\"1.1\"} 1"));
    server.stop().await;
}

#[tokio::test]
async fn foreign_origin_over_h2_gets_403_and_an_allowed_one_opens() {
    let mut cfg = config();
    cfg.origins.allowed = vec!["https://*.example.com".into()];
    cfg.origins.allow_missing = false;
    let mut server = Server::start(cfg).await;
    let connection = Http2Connection::open(&builder(&server, "/ws"))
        .await
        .unwrap();
    let error = connection
        .websocket(&builder(&server, "/ws").origin("https://evil.test"))
        .await
        .unwrap_err();
    assert_eq!(
        refused(error),
        (StatusCode::FORBIDDEN, "origin not allowed\n".into())
    );
    let (ws, _) = connection
        .websocket(&builder(&server, "/ws").origin("https://chat.example.com"))
        .await
        .unwrap();
    Client::from_ws(ws).await;
    // The same-host rule sees :authority as the Host.
    let own = format!("http://{}", server.addr);
    let error = connection
        .websocket(&builder(&server, "/ws").origin(&own))
        .await;
    assert!(
        error.is_ok(),
        "the server's own pages are allowed: {error:?}"
    );
    assert!(metric(
        &server,
        "herald_handshake_rejections_total{status=\"403\"} 1"
    ));
    server.stop().await;
}

#[tokio::test]
async fn missing_or_invalid_tokens_over_h2_get_401_and_a_token_or_cookie_connects() {
    let mut cfg = config();
    cfg.auth.hs256_secret = Some("s3cret".into());
    let mut server = Server::start(cfg).await;
    let connection = Http2Connection::open(&builder(&server, "/ws"))
        .await
        .unwrap();
    let error = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap_err();
    assert_eq!(refused(error).0, StatusCode::UNAUTHORIZED);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = herald_hub::auth::Claims {
        sub: "ann".into(),
        exp,
        channels: vec![],
        subscribe: vec![],
        publish: vec![],
        subs: vec![],
    };
    let token = herald_hub::auth::issue_hs256("s3cret", &claims).unwrap();
    let forged = builder(&server, "/ws")
        .header("authorization", "Bearer not-a-token")
        .unwrap();
    let error = connection.websocket(&forged).await.unwrap_err();
    assert_eq!(refused(error).0, StatusCode::UNAUTHORIZED);
    let with_token = builder(&server, "/ws")
        .header("authorization", &format!("Bearer {token}"))
        .unwrap();
    let (ws, _) = connection.websocket(&with_token).await.unwrap();
    Client::from_ws(ws).await;
    let with_cookie = builder(&server, "/ws")
        .header("cookie", &format!("theme=dark; herald_token={token}"))
        .unwrap();
    let (ws, _) = connection.websocket(&with_cookie).await.unwrap();
    Client::from_ws(ws).await;
    assert!(metric(
        &server,
        "herald_handshake_rejections_total{status=\"401\"} 2"
    ));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_websockets_on_h2_streams_with_1001() {
    let mut server = Server::start(config()).await;
    let connection = Http2Connection::open(&builder(&server, "/ws"))
        .await
        .unwrap();
    let (ws, _) = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap();
    let mut client = Client::from_ws(ws).await;
    server.stop().await;
    assert_eq!(client.closed_with().await, 1001);
}

#[tokio::test]
async fn each_websocket_on_an_h2_connection_takes_a_connection_slot() {
    let mut cfg = config();
    // The HTTP/2 connection takes one slot, its first WebSocket the other.
    cfg.limits.max_connections = 2;
    let mut server = Server::start(cfg).await;
    let connection = Http2Connection::open(&builder(&server, "/ws"))
        .await
        .unwrap();
    let (first, _) = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap();
    let first = Client::from_ws(first).await;
    let error = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap_err();
    assert_eq!(
        refused(error),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections\n".into()
        )
    );
    assert!(metric(
        &server,
        "herald_handshake_rejections_total{status=\"503\"} 1"
    ));
    drop(first);
    wait_for(|| metric(&server, "herald_connections{mode=\"protocol\"} 0")).await;
    let (again, _) = connection
        .websocket(&builder(&server, "/ws"))
        .await
        .unwrap();
    Client::from_ws(again).await;
    server.stop().await;
}

#[tokio::test]
async fn plain_mode_rooms_work_over_h2_by_alpn_when_tls_is_configured() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let dir = std::env::temp_dir().join(format!("herald-hub-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut cfg = config();
    cfg.tls.cert = Some(cert);
    cfg.tls.key = Some(key);
    let mut server = Server::start(cfg).await;
    let roots = herald::tls::certificates_from_pem(cert_pem.as_bytes()).unwrap();
    let tls = herald::tls::client_config(&roots).unwrap();
    let url = format!("wss://localhost:{}/chat?groupId=7", server.addr.port());
    let room = ClientBuilder::new(&url).unwrap().tls_config(tls);
    let connection = Http2Connection::open(&room).await.unwrap();
    let (mut alice, _) = connection.websocket(&room).await.unwrap();
    let (mut bob, _) = connection.websocket(&room).await.unwrap();
    wait_for(|| server.hub.metrics().subscriptions.get() == 2).await;
    futures_util::SinkExt::send(&mut alice, herald::Message::text("secret"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut bob).await, "secret");
    assert!(metric(&server, "herald_ws_upgrades_total{http=\"2\"} 2"));
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn with_http2_off_an_h2c_client_gets_no_http2() {
    let cfg = HubConfig {
        http2: false,
        ..config()
    };
    let mut server = Server::start(cfg).await;
    let error = Http2Connection::open(&builder(&server, "/ws"))
        .await
        .unwrap_err();
    assert!(matches!(error, herald::Error::Http2(_)), "{error:?}");
    server.stop().await;
}
