//! A `herald.v1` connection: commands with their replies, pushes in arrival order, and the
//! close code it ended with.

use herald::{Message, WebSocket};
use herald_hub_protocol::SUBPROTOCOL;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// How long any single step (connect, one reply) may take before the connection counts as
/// stuck.
pub(crate) const STEP: Duration = Duration::from_secs(5);

/// Why a command got no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gone {
    /// The connection ended with this close code (1006: without a Close frame).
    Closed(u16),
    /// No reply within the wait.
    Timeout,
}

/// What `next` saw.
#[derive(Debug)]
pub(crate) enum Next {
    Message(Value),
    Ended(u16),
    Quiet,
}

pub(crate) struct Conn {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    pushes: VecDeque<Value>,
    /// The client id from the `connected` push.
    pub(crate) client: String,
}

/// A TCP connection to `addr`; `recv_buffer` shrinks the socket's receive buffer (set before
/// connecting, so the window the server sees is small too).
pub(crate) async fn tcp(addr: SocketAddr, recv_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = tokio::time::timeout(STEP, socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Connects to `/ws` with `herald.v1` and reads the `connected` push.
    pub(crate) async fn open(addr: SocketAddr, recv_buffer: Option<u32>) -> Result<Self, String> {
        let stream = tcp(addr, recv_buffer).await.map_err(|e| e.to_string())?;
        let (ws, _) = herald::ClientBuilder::new(&format!("ws://{addr}/ws"))
            .map_err(|e| e.to_string())?
            .subprotocol(SUBPROTOCOL)
            .config(herald::Config::default().handshake_timeout(STEP))
            .connect_on(stream)
            .await
            .map_err(|e| e.to_string())?;
        let mut conn = Self {
            ws,
            next_id: 1,
            pushes: VecDeque::new(),
            client: String::new(),
        };
        match conn.read(Instant::now() + STEP).await {
            Next::Message(v) if v["push"] == "connected" => {
                conn.client = v["client"].as_str().unwrap_or_default().to_owned();
                Ok(conn)
            }
            other => Err(format!("expected the connected push, got {other:?}")),
        }
    }

    /// Sends a command without waiting; returns its id.
    pub(crate) async fn send(&mut self, method: &str, params: Value) -> Result<u64, Gone> {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({"id": id, "method": method, "params": params});
        match self.ws.send(Message::text(command.to_string())).await {
            Ok(()) => Ok(id),
            Err(_) => Err(Gone::Closed(self.code())),
        }
    }

    /// Sends a command and returns its reply (with `result` or `error`); pushes that arrive
    /// meanwhile wait in order for `next`.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Result<Value, Gone> {
        let id = self.send(method, params).await?;
        let deadline = Instant::now() + STEP;
        loop {
            match self.read(deadline).await {
                Next::Message(v) if v["id"] == id => return Ok(v),
                Next::Message(v) if v.get("push").is_some() => self.pushes.push_back(v),
                Next::Message(_) => {}
                Next::Ended(code) => return Err(Gone::Closed(code)),
                Next::Quiet => return Err(Gone::Timeout),
            }
        }
    }

    /// The next push or reply, waiting at most `wait`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Next {
        match self.pushes.pop_front() {
            Some(v) => Next::Message(v),
            None => self.read(Instant::now() + wait).await,
        }
    }

    async fn read(&mut self, deadline: Instant) -> Next {
        loop {
            match tokio::time::timeout_at(deadline, self.ws.recv()).await {
                Err(_) => return Next::Quiet,
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(v) = serde_json::from_str(&text) {
                        return Next::Message(v);
                    }
                }
                // `None`: the connection ended without a Close frame.
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Next::Ended(frame.map_or(1006, |f| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return Next::Ended(self.code()),
            }
        }
    }

    /// The code the connection ended with: the peer's Close, else 1006.
    fn code(&self) -> u16 {
        self.ws
            .closed()
            .and_then(|c| c.received.as_ref())
            .map_or(1006, |f| u16::from(f.code))
    }

    /// Closes with 1000, waiting at most a moment for the server.
    pub(crate) async fn close(mut self) {
        let closing = self.ws.close(herald::CloseCode::NORMAL, "");
        let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    }
}

/// The error code of a reply, if it is an error.
pub(crate) fn error_code(reply: &Value) -> Option<i64> {
    reply["error"]["code"].as_i64()
}
