//! A real hub on 127.0.0.1:0 and real Herald clients.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use futures_util::StreamExt;
use herald::{MaybeTlsStream, Message, WebSocket};
use herald_hub::{Hub, HubConfig};
use herald_hub_protocol::{Push, SUBPROTOCOL};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod events;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(config: HubConfig) -> Self {
        let hub = Hub::new(config).expect("hub");
        Self::with_hub(hub).await
    }

    pub async fn with_hub(hub: Arc<Hub>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(herald_hub::run(listener, hub.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            hub,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Stops the server and waits for `run` to return.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("run returns")
                .unwrap()
                .unwrap();
        }
    }

    /// A raw HTTP/1.1 request; returns status code and the whole response text.
    pub async fn http(&self, request: &str) -> (u16, String) {
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = async {
            let mut chunk = [0u8; 4096];
            loop {
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&chunk[..n]),
                }
                // A 101 keeps the connection open: its head is the whole answer.
                if out.starts_with(b"HTTP/1.1 101") && out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(WAIT, read).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    pub async fn get(&self, path: &str, headers: &str) -> (u16, String) {
        self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
            self.addr
        ))
        .await
    }

    pub async fn post(&self, path: &str, headers: &str, body: &str) -> (u16, String) {
        self.http(&format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        ))
        .await
    }
}

/// The JSON body of an HTTP response.
pub fn body_json(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

pub type Ws = WebSocket<MaybeTlsStream>;

pub async fn plain(server: &Server, path: &str) -> Ws {
    let (ws, _) = herald::connect(&server.url(path))
        .await
        .expect("plain connect");
    ws
}

/// A protocol-mode client: sends commands, matches replies, keeps pushes.
pub struct Client {
    pub ws: Ws,
    next_id: u64,
    pub pushes: Vec<Value>,
    pub client_id: String,
}

impl Client {
    pub async fn connect(server: &Server) -> Self {
        Self::connect_url(&server.url("/ws")).await
    }

    pub async fn connect_url(url: &str) -> Self {
        let builder = herald::ClientBuilder::new(url)
            .unwrap()
            .subprotocol(SUBPROTOCOL);
        let (ws, accepted) = builder.connect().await.expect("protocol connect");
        assert_eq!(accepted.subprotocol.as_deref(), Some(SUBPROTOCOL));
        Self::from_ws(ws).await
    }

    /// A client on a connection opened elsewhere (over HTTP/2, say), once `connected` came.
    pub async fn from_ws(ws: Ws) -> Self {
        let mut client = Self {
            ws,
            next_id: 1,
            pushes: Vec::new(),
            client_id: String::new(),
        };
        let connected = client.next_push().await;
        assert_eq!(connected["push"], "connected");
        client.client_id = connected["client"].as_str().unwrap().to_owned();
        client
    }

    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("connection open")
                .expect("no error");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// The next push (queued or from the socket).
    pub async fn next_push(&mut self) -> Value {
        if !self.pushes.is_empty() {
            return self.pushes.remove(0);
        }
        let value = self.next_json().await;
        assert!(value.get("push").is_some(), "unexpected reply {value}");
        value
    }

    /// The next publication push on `channel`, skipping presence events.
    pub async fn next_pub(&mut self) -> Value {
        loop {
            let push = self.next_push().await;
            if push["push"] == "pub" {
                return push;
            }
        }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let value = self.next_json().await;
            if value.get("push").is_some() {
                // Pushes check they parse with the protocol crate too.
                Push::parse(&value.to_string()).expect("a known push");
                self.pushes.push(value);
                continue;
            }
            assert_eq!(value["id"], id, "reply ids match");
            return value;
        }
    }

    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.call(method, params).await;
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.ok("subscribe", json!({ "channel": channel })).await
    }

    pub async fn publish(&mut self, channel: &str, data: Value) -> Value {
        self.ok("publish", json!({ "channel": channel, "data": data }))
            .await
    }

    /// Waits for the server's close and returns its code.
    pub async fn closed_with(&mut self) -> u16 {
        closed_with(&mut self.ws).await
    }
}

/// Reads until the connection ends; returns the close code received (1006 if none).
pub async fn closed_with(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                return ws
                    .closed()
                    .and_then(|c| c.received.as_ref())
                    .map_or(1006, |f| u16::from(f.code));
            }
        }
    }
}

/// The next text message on a plain connection.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        if let Message::Text(text) = message {
            return text.to_string();
        }
    }
}

/// A default config for tests: no rate limit unless a test sets one.
pub fn config() -> HubConfig {
    let mut config = HubConfig::default();
    config.limits.publish_rate = 0;
    config
}

/// Polls a condition for up to ten seconds.
pub async fn wait_for(mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met in time");
}

/// An HS256 token under `secret` for `user` on every channel, valid for ten minutes, with
/// the server-side subscriptions `subs`.
pub fn user_token(secret: &str, user: &str, subs: &[&str]) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = herald_hub::auth::Claims {
        sub: user.into(),
        exp,
        channels: vec!["*".into()],
        subscribe: vec![],
        publish: vec![],
        subs: subs.iter().map(|s| (*s).to_owned()).collect(),
    };
    herald_hub::auth::issue_hs256(secret, &claims).unwrap()
}
