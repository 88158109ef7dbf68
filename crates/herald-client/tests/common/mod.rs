//! A real hub on 127.0.0.1:0, a TCP relay in front of it that tests can cut, and helpers to
//! read a client's events.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use herald_client::{Client, ClientConfig, Event};
use herald_hub::{Hub, HubConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(10);
pub const SECRET: &str = "test-secret";

/// A hub serving on a listener until stopped.
pub struct Server {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(config: HubConfig) -> Self {
        Self::on("127.0.0.1:0".parse().unwrap(), config).await
    }

    /// A hub on `addr` (a port an earlier hub of the test had).
    pub async fn on(addr: SocketAddr, config: HubConfig) -> Self {
        let hub = Hub::new(config).unwrap();
        let listener = TcpListener::bind(addr).await.unwrap();
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

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the hub (its sessions close with 1001) and waits for `run` to return.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

/// A hub that verifies HS256 tokens signed with [`SECRET`].
pub fn with_tokens() -> HubConfig {
    let mut config = HubConfig::default();
    config.auth.hs256_secret = Some(SECRET.into());
    config
}

/// A token for `user`, valid on every channel for `ttl`.
pub fn token(user: &str, ttl: Duration) -> String {
    sign(&serde_json::json!({"sub": user, "exp": expiry(ttl), "channels": ["*"]}))
}

/// `ttl` from now, in seconds since the Unix epoch.
pub fn expiry(ttl: Duration) -> u64 {
    (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + ttl).as_secs()
}

/// A token with these claims, signed with [`SECRET`]: from JSON, so that a test can give it
/// any claim the hub reads.
pub fn sign(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A TCP relay to a hub: `cut` ends every relayed connection at once (the client sees the
/// TCP connection end without a close frame), `refuse` turns new connections away, and
/// `stall` stops forwarding bytes without closing anything (a dead path).
pub struct Relay {
    pub addr: SocketAddr,
    cut: watch::Sender<u64>,
    refusing: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
}

impl Relay {
    pub async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let (cuts, refuse, stall) = (cut.clone(), refusing.clone(), stalled.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let cut = cuts.subscribe();
                tokio::spawn(relay(client, target, cut, stall.clone()));
            }
        });
        Self {
            addr,
            cut,
            refusing,
            stalled,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    target: SocketAddr,
    mut cut: watch::Receiver<u64>,
    stalled: Arc<AtomicBool>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = pump(&mut client_read, &mut server_write, &stalled);
    let down = pump(&mut server_read, &mut client_write, &stalled);
    tokio::select! {
        _ = cut.changed() => {}
        _ = async { tokio::join!(up, down) } => {}
    }
}

/// Copies bytes one way; while stalled, reads and drops them.
async fn pump(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    stalled: &AtomicBool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if !stalled.load(Ordering::SeqCst) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

/// A client of `url` with `config`'s settings and fast reconnects.
pub fn client(config: ClientConfig) -> (Client, mpsc::Receiver<Event>) {
    let config = config.backoff(herald_client::Backoff {
        min: Duration::from_millis(20),
        max: Duration::from_millis(200),
    });
    Client::connect(config).unwrap()
}

/// Events up to and including the first that `stop` accepts; panics after [`WAIT`].
pub async fn until(
    events: &mut mpsc::Receiver<Event>,
    stop: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(event) = events.recv().await {
            let done = stop(&event);
            seen.push(event);
            if done {
                return true;
            }
        }
        false
    };
    let found = tokio::time::timeout(WAIT, read).await;
    assert!(
        matches!(found, Ok(true)),
        "the awaited event never came; saw {seen:#?}"
    );
    seen
}

pub fn is_connected(event: &Event) -> bool {
    matches!(event, Event::Connected(_))
}

pub fn is_disconnected(event: &Event) -> bool {
    matches!(event, Event::Disconnected(_))
}

pub fn is_subscribed(channel: &str) -> impl Fn(&Event) -> bool + '_ {
    move |event| matches!(event, Event::Subscribed(s) if s.channel == channel)
}

/// The data of every publication among `events`, as JSON text.
pub fn data(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Publication(p) => Some(p.data.get().to_owned()),
            _ => None,
        })
        .collect()
}

/// The offsets of every publication among `events`.
pub fn offsets(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Publication(p) => Some(p.offset),
            _ => None,
        })
        .collect()
}

/// Waits until the hub counts `n` subscriptions.
pub async fn subscriptions_reach(hub: &Hub, n: i64) {
    for _ in 0..1000 {
        if hub.metrics().subscriptions.get() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} subscriptions never appeared");
}
