//! Handshakes over loopback: refusals as the client sees them, malformed requests, headers.
#![allow(clippy::unwrap_used)]

mod common;

use herald::handshake::{Accept, Response};
use herald::http::{StatusCode, header};
use herald::proto::HandshakeError;
use herald::{Config, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server whose `decide` needs a token and an allowed Origin, and offers `chat.v1`.
async fn guarded_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let result = herald::accept_with(tcp, &Config::default(), |request| {
                    if request.origin() != Some("https://good.example") {
                        return Err(Response::text(StatusCode::FORBIDDEN, "origin not allowed"));
                    }
                    if !request
                        .cookies()
                        .any(|(k, v)| k == "token" && v == "s3cret")
                    {
                        return Err(Response::text(StatusCode::UNAUTHORIZED, "token required"));
                    }
                    let mut accept = Accept::default();
                    if request.subprotocols().iter().any(|p| p == "chat.v1") {
                        accept.subprotocol = Some("chat.v1".into());
                    }
                    accept
                        .headers
                        .insert(header::SET_COOKIE, "seen=1".parse().unwrap());
                    Ok(accept)
                })
                .await;
                if let Ok(mut ws) = result {
                    let _ = ws.send(Message::text("welcome")).await;
                    while ws.recv().await.is_some() {}
                }
            });
        }
    });
    addr
}

fn builder(addr: std::net::SocketAddr) -> herald::ClientBuilder {
    herald::ClientBuilder::new(&format!("ws://{addr}/chat?groupId=1234")).unwrap()
}

#[tokio::test]
async fn refusal_reaches_the_client_with_status_and_body() {
    let addr = guarded_server().await;
    let err = builder(addr)
        .origin("https://good.example")
        .connect()
        .await
        .unwrap_err();
    let herald::Error::Handshake(HandshakeError::Rejected(response)) = err else {
        panic!("{err}")
    };
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(&response.body[..], b"token required\n");
}

#[tokio::test]
async fn foreign_origin_is_refused_with_403() {
    let addr = guarded_server().await;
    let err = builder(addr)
        .origin("https://evil.example")
        .connect()
        .await
        .unwrap_err();
    let herald::Error::Handshake(HandshakeError::Rejected(response)) = err else {
        panic!("{err}")
    };
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn accepted_client_gets_subprotocol_and_extra_headers() {
    let addr = guarded_server().await;
    let (mut ws, accepted) = builder(addr)
        .origin("https://good.example")
        .header("Cookie", "a=b; token=s3cret")
        .unwrap()
        .subprotocol("chat.v2")
        .subprotocol("chat.v1")
        .connect()
        .await
        .unwrap();
    assert_eq!(accepted.subprotocol.as_deref(), Some("chat.v1"));
    assert_eq!(accepted.headers.get(header::SET_COOKIE).unwrap(), "seen=1");
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("welcome"));
}

async fn raw_exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn plain_http_get_is_answered_426_with_upgrade_header() {
    let addr = common::echo_server().await;
    let response = raw_exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{response}"
    );
    assert!(
        response
            .to_ascii_lowercase()
            .contains("upgrade: websocket\r\n")
    );
}

#[tokio::test]
async fn post_is_answered_405_with_allow_get() {
    let addr = common::echo_server().await;
    let response = raw_exchange(
        addr,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{response}"
    );
    assert!(response.to_ascii_lowercase().contains("allow: get\r\n"));
}

#[tokio::test]
async fn oversized_request_head_is_answered_431() {
    let addr = common::echo_server().await;
    let filler = "X-Filler: ".to_owned() + &"a".repeat(20_000) + "\r\n";
    let response = raw_exchange(addr, &format!("GET / HTTP/1.1\r\nHost: x\r\n{filler}\r\n")).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
}

#[tokio::test]
async fn wrong_version_is_answered_426_with_supported_version() {
    let addr = common::echo_server().await;
    let response = raw_exchange(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n")
    );
}

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: chat\r\n\r\n";

#[tokio::test]
async fn accepting_with_a_subprotocol_the_client_did_not_offer_is_misuse_and_writes_nothing() {
    let (server, mut client) = tokio::io::duplex(4096);
    client.write_all(REQUEST).await.unwrap();
    let pending = herald::read_request(server, &Config::default())
        .await
        .unwrap();
    let accept = Accept {
        subprotocol: Some("mqtt".into()),
        ..Accept::default()
    };
    let err = pending.accept(accept).await.unwrap_err();
    assert!(
        matches!(
            err,
            herald::Error::Misuse(herald::proto::MisuseError::SubprotocolNotOffered)
        ),
        "{err}"
    );
    let mut written = Vec::new();
    client.read_to_end(&mut written).await.unwrap();
    assert!(written.is_empty(), "{written:?}");
}

#[tokio::test]
async fn accepting_with_an_extension_header_of_its_own_is_misuse() {
    let (server, mut client) = tokio::io::duplex(4096);
    client.write_all(REQUEST).await.unwrap();
    let mut accept = Accept::default();
    accept.headers.insert(
        header::SEC_WEBSOCKET_EXTENSIONS,
        "permessage-deflate".parse().unwrap(),
    );
    let err = herald::accept_with(server, &Config::default(), |_| Ok(accept))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            herald::Error::Misuse(herald::proto::MisuseError::HandshakeHeader(ref name))
                if name == header::SEC_WEBSOCKET_EXTENSIONS
        ),
        "{err}"
    );
}

mod handshake_timeout {
    //! What `Config::handshake_timeout` bounds: the request head on a server, from the call on;
    //! the request and response on a client.
    use super::*;
    use std::time::Duration;

    fn config() -> Config {
        Config::default().handshake_timeout(Duration::from_secs(3))
    }

    #[tokio::test(start_paused = true)]
    async fn server_gives_up_on_a_request_head_that_does_not_arrive_in_time() {
        let (server, mut client) = tokio::io::duplex(4096);
        client.write_all(&REQUEST[..20]).await.unwrap();
        let started = tokio::time::Instant::now();
        let err = herald::read_request(server, &config()).await.unwrap_err();
        assert!(matches!(err, herald::Error::HandshakeTimeout), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn server_counts_from_the_call_not_from_the_connection() {
        // Time spent before `read_request` (a TLS handshake, a queue) is not counted.
        let (server, mut client) = tokio::io::duplex(4096);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let reading = tokio::spawn(async move { herald::read_request(server, &config()).await });
        tokio::time::sleep(Duration::from_secs(2)).await;
        client.write_all(REQUEST).await.unwrap();
        assert!(reading.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn client_gives_up_on_a_response_that_does_not_arrive_in_time() {
        let (io, _silent_server) = tokio::io::duplex(4096);
        let started = tokio::time::Instant::now();
        let err = herald::ClientBuilder::new("ws://h/")
            .unwrap()
            .config(config())
            .connect_on(io)
            .await
            .unwrap_err();
        assert!(matches!(err, herald::Error::HandshakeTimeout), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}

#[tokio::test]
async fn a_client_connects_from_the_local_address_it_is_given() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = tokio::spawn(async move {
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (tcp, peer) = listener.accept().await.unwrap();
            peers.push(peer.ip());
            let mut ws = herald::accept(tcp).await.unwrap();
            ws.send(Message::text("hi")).await.unwrap();
        }
        peers
    });
    for source in ["127.0.0.3", "127.0.0.4"] {
        let (mut ws, _) = herald::ClientBuilder::new(&format!("ws://{addr}/"))
            .unwrap()
            .local_address(source.parse().unwrap())
            .connect()
            .await
            .unwrap();
        assert_eq!(common::next_data(&mut ws).await, Message::text("hi"));
    }
    let peers = peers.await.unwrap();
    let expected: Vec<std::net::IpAddr> =
        vec!["127.0.0.3".parse().unwrap(), "127.0.0.4".parse().unwrap()];
    assert_eq!(peers, expected);

    // An IPv6 local address cannot reach an IPv4-only host: said before any socket is opened.
    let err = herald::ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .local_address("::1".parse().unwrap())
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, herald::Error::Io(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable),
        "{err:?}"
    );
}
