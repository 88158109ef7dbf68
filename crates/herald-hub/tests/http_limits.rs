//! The HTTP bounds, played by an attacker with a raw TCP socket: slow API bodies, oversize
//! bodies, oversize heads, and connections past the per-IP limit.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn hub_with_key() -> herald_hub::HubConfig {
    let mut cfg = config();
    cfg.api.key = Some("k3y".into());
    cfg
}

/// Reads until the server closes (or `WAIT` passes); the bytes read and whether it closed.
async fn read_until_closed(tcp: &mut TcpStream) -> (String, bool) {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(WAIT, read).await.is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn publish_head(addr: SocketAddr, key: &str, length: usize) -> String {
    format!(
        "POST /api/publish HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

fn limit_hits(server: &Server, limit: &str) -> String {
    let text = server.hub.metrics().render();
    let needle = format!("herald_limit_hits_total{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle).map(str::to_owned))
        .unwrap_or_else(|| "0".into())
}

fn rejections(server: &Server, status: u16) -> String {
    let text = server.hub.metrics().render();
    let needle = format!("herald_handshake_rejections_total{{status=\"{status}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle).map(str::to_owned))
        .unwrap_or_else(|| "0".into())
}

mod api_bodies {
    //! `/api/*`: the key from the head first, then the body under `limits.request_timeout`
    //! and the body size limit.
    use super::*;

    #[tokio::test]
    async fn wrong_key_is_answered_401_before_the_body_and_the_connection_closes() {
        let mut server = Server::start(hub_with_key()).await;
        for key in ["wrong", ""] {
            let mut tcp = TcpStream::connect(server.addr).await.unwrap();
            // A body of 1000 bytes is announced and never sent.
            tcp.write_all(publish_head(server.addr, key, 1000).as_bytes())
                .await
                .unwrap();
            let started = Instant::now();
            let (response, closed) = read_until_closed(&mut tcp).await;
            assert_eq!(status(&response), 401, "{response}");
            assert!(closed, "the connection is not kept for the unread body");
            assert!(started.elapsed() < Duration::from_secs(2));
        }
        server.stop().await;

        let mut server = Server::start(config()).await;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(publish_head(server.addr, "k3y", 1000).as_bytes())
            .await
            .unwrap();
        let (response, closed) = read_until_closed(&mut tcp).await;
        assert_eq!(status(&response), 403, "no key configured: {response}");
        assert!(closed);
        server.stop().await;
    }

    #[tokio::test]
    async fn body_trickling_one_byte_at_a_time_gets_408_at_the_request_timeout_and_is_closed() {
        let mut cfg = hub_with_key();
        let timeout = Duration::from_millis(600);
        cfg.limits.request_timeout = timeout;
        let mut server = Server::start(cfg).await;
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let (mut read, mut write) = tcp.into_split();
        write
            .write_all(publish_head(server.addr, "k3y", 100).as_bytes())
            .await
            .unwrap();
        let started = Instant::now();
        let trickle = tokio::spawn(async move {
            for byte in br#"{"channel":"a","data":"#.iter().cycle().take(100) {
                if write.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut out = Vec::new();
        let ended = tokio::time::timeout(WAIT, read.read_to_end(&mut out)).await;
        let elapsed = started.elapsed();
        let response = String::from_utf8_lossy(&out);
        assert_eq!(status(&response), 408, "{response}");
        assert!(response.to_ascii_lowercase().contains("connection: close"));
        assert!(ended.is_ok(), "the server closed the connection");
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_secs(2),
            "answered after {elapsed:?}"
        );
        trickle.abort();
        assert_eq!(limit_hits(&server, "request_timeout"), "1");
        assert_eq!(rejections(&server, 408), "1");
        server.stop().await;
    }

    #[tokio::test]
    async fn body_sent_in_pieces_within_the_timeout_is_accepted() {
        let mut server = Server::start(hub_with_key()).await;
        let body = br#"{"channel":"a","data":{"n":1}}"#;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(publish_head(server.addr, "k3y", body.len()).as_bytes())
            .await
            .unwrap();
        for piece in body.chunks(7) {
            tcp.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut response = vec![0u8; 4096];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut response))
            .await
            .unwrap()
            .unwrap();
        let response = String::from_utf8_lossy(&response[..n]);
        assert_eq!(status(&response), 200, "{response}");
        assert_eq!(body_json(&response)["offset"], 1);
        server.stop().await;
    }

    #[tokio::test]
    async fn declared_body_over_the_limit_gets_413_before_it_is_sent() {
        let mut server = Server::start(hub_with_key()).await;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let over = (64 << 10) + 1;
        tcp.write_all(publish_head(server.addr, "k3y", over).as_bytes())
            .await
            .unwrap();
        let (response, closed) = read_until_closed(&mut tcp).await;
        assert_eq!(status(&response), 413, "{response}");
        assert!(closed);
        assert_eq!(limit_hits(&server, "api_body_size"), "1");
        assert_eq!(rejections(&server, 413), "1");
        server.stop().await;
    }

    #[tokio::test]
    async fn chunked_body_over_the_limit_gets_413() {
        let mut server = Server::start(hub_with_key()).await;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST /api/broadcast HTTP/1.1\r\nHost: {}\r\nX-API-Key: k3y\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            server.addr
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        for _ in 0..5 {
            if tcp.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        let (response, _) = read_until_closed(&mut tcp).await;
        assert_eq!(status(&response), 413, "{response}");
        server.stop().await;
    }

    #[tokio::test]
    async fn body_at_the_limit_is_read_and_judged_as_json() {
        let mut server = Server::start(hub_with_key()).await;
        let padding = "x".repeat((64 << 10) - 40);
        let body = format!(r#"{{"channel":"a","data":"{padding}"}}"#);
        assert!(body.len() <= 64 << 10);
        let (code, text) = server
            .post("/api/publish", "X-API-Key: k3y\r\n", &body)
            .await;
        assert_eq!(code, 200, "{text}");
        server.stop().await;
    }
}

mod heads {
    //! hyper with Herald's handshake limits: 16 KiB of head, 64 headers; 431 past either.
    use super::*;

    fn get_with(headers: &str) -> String {
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn head_over_16_kib_gets_431() {
        let mut server = Server::start(config()).await;
        let (code, text) = server
            .http(&get_with(&format!("X-Pad: {}\r\n", "a".repeat(17 << 10))))
            .await;
        assert_eq!(code, 431, "{text}");
        assert_eq!(limit_hits(&server, "head_size"), "1");
        assert_eq!(rejections(&server, 431), "1");
        // Just under the limit is fine.
        let (code, text) = server
            .http(&get_with(&format!("X-Pad: {}\r\n", "a".repeat(16_000))))
            .await;
        assert_eq!(code, 200, "{text}");
        server.stop().await;
    }

    #[tokio::test]
    async fn more_than_64_headers_get_431() {
        let mut server = Server::start(config()).await;
        // Host and Connection are two of them.
        let lines = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
        let (code, text) = server.http(&get_with(&lines(63))).await;
        assert_eq!(code, 431, "65 headers: {text}");
        let (code, text) = server.http(&get_with(&lines(62))).await;
        assert_eq!(code, 200, "64 headers: {text}");
        server.stop().await;
    }
}

mod head_timeouts {
    //! `limits.handshake_timeout`: from accept to the first head, then for each later head on
    //! a kept-alive connection, idle time included.
    use super::*;

    #[tokio::test]
    async fn a_kept_alive_connection_without_a_next_head_is_closed_at_the_handshake_timeout() {
        let mut cfg = config();
        let timeout = Duration::from_millis(500);
        cfg.limits.handshake_timeout = timeout;
        let mut server = Server::start(cfg).await;
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = vec![0u8; 4096];
        let n = tcp.read(&mut first).await.unwrap();
        assert_eq!(status(&String::from_utf8_lossy(&first[..n])), 200);
        let answered = Instant::now();
        let (rest, closed) = read_until_closed(&mut tcp).await;
        let elapsed = answered.elapsed();
        assert!(closed && rest.is_empty(), "{rest}");
        assert!(
            elapsed >= timeout - Duration::from_millis(50) && elapsed < timeout * 4,
            "closed after {elapsed:?}"
        );
        assert_eq!(limit_hits(&server, "handshake_timeout"), "1");
        server.stop().await;
    }
}

mod per_ip {
    //! `limits.max_connections_per_ip`, at accept, for every connection.
    use super::*;

    async fn connect_from(local: [u8; 4], server: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from((local, 0)))
            .expect("127.0.0.2 is on the loopback interface");
        socket.connect(server).await.unwrap()
    }

    #[tokio::test]
    async fn idle_connections_past_the_limit_get_429_while_another_ip_gets_in() {
        let mut cfg = config();
        cfg.limits.max_connections_per_ip = 3;
        let mut server = Server::start(cfg).await;
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(connect_from([127, 0, 0, 1], server.addr).await);
        }
        // The accept loop takes connections in order, so the fourth comes after the three.
        let mut fourth = connect_from([127, 0, 0, 1], server.addr).await;
        let started = Instant::now();
        let (response, closed) = read_until_closed(&mut fourth).await;
        assert_eq!(status(&response), 429, "{response}");
        assert!(response.to_ascii_lowercase().contains("connection: close"));
        assert!(closed && started.elapsed() < Duration::from_secs(2));
        // A WebSocket from the same address is refused the same way.
        assert!(
            herald::connect(&server.url("/chat?groupId=1"))
                .await
                .is_err()
        );

        let mut other = connect_from([127, 0, 0, 2], server.addr).await;
        other
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (response, _) = read_until_closed(&mut other).await;
        assert_eq!(status(&response), 200, "{response}");
        assert_eq!(limit_hits(&server, "per_ip"), "2");
        assert_eq!(rejections(&server, 429), "2");

        // A closed connection gives its slot back.
        drop(idle.pop());
        wait_for_slot(&server).await;
        server.stop().await;
    }

    #[tokio::test]
    async fn a_websocket_session_keeps_its_slot_after_the_upgrade() {
        let mut cfg = config();
        cfg.limits.max_connections_per_ip = 1;
        let mut server = Server::start(cfg).await;
        let ws = plain(&server, "/chat?groupId=1").await;
        // The HTTP task is gone after the 101; the session still holds the slot.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (code, _) = server.get("/healthz", "").await;
        assert_eq!(code, 429);
        drop(ws);
        wait_for_slot(&server).await;
        server.stop().await;
    }

    /// Retries until 127.0.0.1 gets a slot again.
    async fn wait_for_slot(server: &Server) {
        for _ in 0..100 {
            let (code, text) = server.get("/healthz", "").await;
            if code == 200 {
                return;
            }
            assert_eq!(code, 429, "{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the slot never came back");
    }
}
