//! RFC 8441: WebSockets over HTTP/2, herald's client against herald's server (axum routes
//! served by `herald::h2::server()`), on h2c and on h2 over TLS.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "http2")]

mod common;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use herald::h2::Http2Connection;
use herald::http::{Method, StatusCode, Version, header};
use herald::{ClientBuilder, CloseCode, Config, DeflateConfig, Error, Message};
use herald_proto::HandshakeError;
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const ALLOWED_ORIGIN: &str = "https://chat.example";

fn ws_route<H, T>(handler: H) -> axum::routing::MethodRouter
where
    H: axum::handler::Handler<T, ()>,
    T: 'static,
{
    on(MethodFilter::GET.or(MethodFilter::CONNECT), handler)
}

/// Echoes, after a first message naming the HTTP version the handshake came over.
async fn echo(upgrade: herald::upgrade::WebSocketUpgrade) -> Response {
    let version = if upgrade.is_http2() { "h2" } else { "http/1.1" };
    let upgrade = upgrade.protocols(["chat"]).config(
        Config::default()
            .max_message_size(64 << 10)
            .deflate(Some(DeflateConfig::default())),
    );
    upgrade.on_upgrade(move |mut ws| async move {
        let _ = ws.send(Message::text(version)).await;
        while let Some(Ok(message)) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
}

/// Refuses every Origin but one, with 403, before accepting.
async fn guarded(upgrade: herald::upgrade::WebSocketUpgrade) -> Response {
    if upgrade.request().origin() != Some(ALLOWED_ORIGIN) {
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    echo(upgrade).await
}

fn app() -> Router {
    Router::new()
        .route("/plain", get(|| async { "plain route" }))
        .route("/ws", ws_route(echo))
        .route("/guarded", ws_route(guarded))
        .fallback(echo)
}

/// Serves `app()` with `builder` on 127.0.0.1:0, over TLS when `tls` is set.
async fn serve(
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    tls: Option<Arc<herald::tls::ServerConfig>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let builder = Arc::new(builder);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let builder = builder.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper_util::service::TowerToHyperService::new(app());
                match tls {
                    Some(tls) => {
                        let stream = herald::tls::TlsAcceptor::from(tls)
                            .accept(tcp)
                            .await
                            .unwrap();
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = builder.serve_connection_with_upgrades(io, service).await;
                    }
                    None => {
                        let io = hyper_util::rt::TokioIo::new(tcp);
                        let _ = builder.serve_connection_with_upgrades(io, service).await;
                    }
                }
            });
        }
    });
    addr
}

async fn h2c() -> SocketAddr {
    serve(herald::h2::server(), None).await
}

fn client(addr: SocketAddr, path: &str) -> ClientBuilder {
    ClientBuilder::new(&format!("ws://{addr}{path}"))
        .unwrap()
        .subprotocol("chat")
}

async fn body_text(response: http::Response<hyper::body::Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn rejected_status(error: Error) -> (StatusCode, String) {
    match error {
        Error::Handshake(HandshakeError::Rejected(response)) => (
            response.status,
            String::from_utf8(response.body.to_vec()).unwrap(),
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

mod settings {
    //! RFC 8441 §3: SETTINGS_ENABLE_CONNECT_PROTOCOL.
    use super::*;

    #[tokio::test]
    async fn client_waits_for_the_setting_and_opens_after_it() {
        let addr = h2c().await;
        let connection = Http2Connection::open(&client(addr, "/ws")).await.unwrap();
        let (mut ws, accepted) = connection.websocket(&client(addr, "/ws")).await.unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
        assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
    }

    #[tokio::test]
    async fn server_without_the_setting_gets_no_extended_connect() {
        let mut builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        builder.http2().max_concurrent_streams(10);
        let addr = serve(builder, None).await;
        let config = Config::default().handshake_timeout(Duration::from_millis(300));
        let error = client(addr, "/ws")
            .config(config)
            .connect_h2()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::HandshakeTimeout), "{error:?}");
    }
}

mod extended_connect {
    //! RFC 8441 §4 and §5: the extended CONNECT, answered 200, then the WebSocket on the
    //! stream.
    use super::*;

    #[tokio::test]
    async fn websocket_over_h2c_echoes_text_and_binary_and_closes_cleanly() {
        let addr = h2c().await;
        let (mut ws, accepted) = client(addr, "/ws").connect_h2().await.unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
        assert!(accepted.headers.get(header::SEC_WEBSOCKET_ACCEPT).is_none());
        assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
        ws.send(Message::text("over a stream")).await.unwrap();
        assert_eq!(
            common::next_data(&mut ws).await,
            Message::text("over a stream")
        );
        let big = Message::binary(vec![5u8; 60 << 10]);
        ws.send(big.clone()).await.unwrap();
        assert_eq!(common::next_data(&mut ws).await, big);
        assert!(ws.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
    }

    #[tokio::test]
    async fn many_websockets_and_plain_requests_share_one_connection() {
        let addr = h2c().await;
        let connection = Http2Connection::open(&client(addr, "/ws")).await.unwrap();
        let mut sockets = Vec::new();
        for _ in 0..8 {
            let (mut ws, _) = connection.websocket(&client(addr, "/ws")).await.unwrap();
            assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
            sockets.push(ws);
        }
        for round in 0..3 {
            let request = http::Request::get(format!("http://{addr}/plain"))
                .body(axum::body::Body::empty())
                .unwrap();
            let response = connection.send_request(request).await.unwrap();
            assert_eq!(response.version(), Version::HTTP_2);
            assert_eq!(body_text(response).await, "plain route");
            for (i, ws) in sockets.iter_mut().enumerate() {
                let text = format!("socket {i} round {round}");
                ws.send(Message::text(text.clone())).await.unwrap();
                assert_eq!(common::next_data(ws).await, Message::text(text));
            }
        }
        // One WebSocket closing leaves the others and the connection open.
        let first = sockets.remove(0);
        let mut first = first;
        assert!(first.close(CloseCode::NORMAL, "").await.unwrap().is_clean());
        for ws in &mut sockets {
            ws.send(Message::text("still here")).await.unwrap();
            assert_eq!(common::next_data(ws).await, Message::text("still here"));
        }
    }

    #[tokio::test]
    async fn connect_without_protocol_is_refused_with_400() {
        let addr = h2c().await;
        let connection = Http2Connection::open(&client(addr, "/ws")).await.unwrap();
        let request = http::Request::builder()
            .method(Method::CONNECT)
            .uri(addr.to_string())
            .body(axum::body::Body::empty())
            .unwrap();
        let response = connection.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body_text(response).await,
            "extended CONNECT with :protocol websocket required\n"
        );
    }

    #[tokio::test]
    async fn extended_connect_with_another_version_is_refused_with_400_naming_13() {
        let addr = h2c().await;
        let connection = Http2Connection::open(&client(addr, "/ws")).await.unwrap();
        let mut request = http::Request::builder()
            .method(Method::CONNECT)
            .uri(format!("http://{addr}/ws"))
            .header(header::SEC_WEBSOCKET_VERSION, "8")
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let response = connection.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_VERSION], "13");
    }

    #[tokio::test]
    async fn get_over_h2_on_a_websocket_route_is_refused_with_405() {
        let addr = h2c().await;
        let connection = Http2Connection::open(&client(addr, "/ws")).await.unwrap();
        let request = http::Request::get(format!("http://{addr}/ws"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = connection.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "CONNECT");
    }

    #[tokio::test]
    async fn the_same_route_still_upgrades_http_1_1() {
        let addr = h2c().await;
        let (mut ws, _) = client(addr, "/ws").connect().await.unwrap();
        assert_eq!(common::next_data(&mut ws).await, Message::text("http/1.1"));
    }

    #[tokio::test]
    async fn websocket_over_h2_with_tls_and_alpn() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let server_tls =
            herald::tls::server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        let mut server_tls = (*server_tls).clone();
        server_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let addr = serve(herald::h2::server(), Some(Arc::new(server_tls))).await;
        let roots = herald::tls::certificates_from_pem(cert_pem.as_bytes()).unwrap();
        let url = format!("wss://localhost:{}/ws", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url)
            .unwrap()
            .tls_config(herald::tls::client_config(&roots).unwrap())
            .connect_h2()
            .await
            .unwrap();
        assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
        ws.send(Message::text("secure stream")).await.unwrap();
        assert_eq!(
            common::next_data(&mut ws).await,
            Message::text("secure stream")
        );
    }
}

mod deflate {
    //! RFC 8441 §5 with RFC 7692: permessage-deflate is negotiated as over HTTP/1.1.
    use super::*;

    #[tokio::test]
    async fn deflate_is_negotiated_and_compressed_messages_round_trip() {
        let addr = h2c().await;
        let config = Config::default().deflate(Some(DeflateConfig::default()));
        let (mut ws, accepted) = client(addr, "/ws")
            .config(config)
            .connect_h2()
            .await
            .unwrap();
        assert_eq!(accepted.extensions.len(), 1);
        assert_eq!(accepted.extensions[0].name, "permessage-deflate");
        assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
        let text = Message::text("compressible ".repeat(2000));
        ws.send(text.clone()).await.unwrap();
        assert_eq!(common::next_data(&mut ws).await, text);
    }
}

mod limits {
    //! RFC 6455 §7.4.1 over an HTTP/2 stream: the server's message limit closes with 1009.
    use super::*;

    #[tokio::test]
    async fn client_message_over_the_server_limit_is_closed_with_1009() {
        let addr = h2c().await;
        let (mut ws, _) = client(addr, "/ws").connect_h2().await.unwrap();
        assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
        ws.send(Message::binary(vec![1u8; 65 << 10])).await.unwrap();
        match ws.recv().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::MESSAGE_TOO_BIG),
            other => panic!("expected a Close, got {other:?}"),
        }
    }
}

mod origin {
    //! RFC 6455 §10.2 over HTTP/2: the server sees `Origin` and refuses with 403.
    use super::*;

    #[tokio::test]
    async fn disallowed_origin_is_refused_with_403_and_allowed_one_opens() {
        let addr = h2c().await;
        let connection = Http2Connection::open(&client(addr, "/guarded"))
            .await
            .unwrap();
        let refused = connection
            .websocket(&client(addr, "/guarded").origin("https://evil.example"))
            .await
            .unwrap_err();
        assert_eq!(
            rejected_status(refused),
            (StatusCode::FORBIDDEN, "origin not allowed\n".to_owned())
        );
        let (mut ws, _) = connection
            .websocket(&client(addr, "/guarded").origin(ALLOWED_ORIGIN))
            .await
            .unwrap();
        assert_eq!(common::next_data(&mut ws).await, Message::text("h2"));
    }
}
