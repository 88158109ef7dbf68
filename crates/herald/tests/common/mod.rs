//! Servers on 127.0.0.1:0 for the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use herald::{Config, Message, WebSocket};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// Runs `handler` for every accepted WebSocket; returns the address.
pub async fn serve<F, Fut>(config: Config, handler: F) -> SocketAddr
where
    F: Fn(WebSocket<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = std::sync::Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(ws) = herald::accept_with(tcp, &config, |_| Ok(Default::default())).await
                {
                    handler(ws).await;
                }
            });
        }
    });
    addr
}

/// An echo server with large limits.
pub async fn echo_server() -> SocketAddr {
    serve(big_config(), |mut ws| async move {
        while let Some(Ok(message)) = ws.recv().await {
            if message.is_data() && ws.send(message).await.is_err() {
                break;
            }
        }
    })
    .await
}

pub fn big_config() -> Config {
    Config::default()
        .max_frame_size(32 << 20)
        .max_message_size(32 << 20)
}

pub async fn client(addr: SocketAddr) -> WebSocket<herald::MaybeTlsStream> {
    herald::ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(big_config())
        .connect()
        .await
        .unwrap()
        .0
}

/// The next data message, skipping control frames.
pub async fn next_data<S>(ws: &mut WebSocket<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = ws.recv().await.unwrap().unwrap();
        if message.is_data() {
            return message;
        }
    }
}

/// A server on an in-memory pipe of `buffer` bytes each way, and the raw client end (after
/// the handshake). Under paused time the timers run on the virtual clock.
pub async fn duplex_pair(
    server: Config,
    buffer: usize,
) -> (
    herald::WebSocket<tokio::io::DuplexStream>,
    tokio::io::DuplexStream,
) {
    let (a, b) = tokio::io::duplex(buffer);
    let accept =
        tokio::spawn(
            async move { herald::accept_with(a, &server, |_| Ok(Default::default())).await },
        );
    let (mut raw, key) = (b, "dGhlIHNhbXBsZSBub25jZQ==");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let ws = accept.await.unwrap().unwrap();
    let mut response = vec![0u8; 129];
    raw.read_exact(&mut response).await.unwrap();
    assert!(response.starts_with(b"HTTP/1.1 101"));
    (ws, raw)
}
