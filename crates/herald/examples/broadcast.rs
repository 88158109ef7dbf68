//! A chat-style broadcast server: every message a client sends goes to every connected client.
//!
//! `cargo run -p herald --example broadcast -- 127.0.0.1:9002`, then connect several clients
//! (e.g. `cargo run -p herald --example client -- ws://127.0.0.1:9002`).
#![allow(clippy::print_stdout)]

use herald::Message;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    // A bounded channel: a client that falls 1024 messages behind skips what it missed.
    let (tx, _) = broadcast::channel::<Message>(1024);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(ws) = herald::accept(tcp).await else {
                return;
            };
            let (mut reader, mut writer) = ws.split();
            let mut rx = tx.subscribe();
            let forward = tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(message) => {
                            if writer.send(message).await.is_err() {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            println!("{peer} lagged behind by {n} messages");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
            while let Some(Ok(message)) = reader.recv().await {
                if message.is_data() {
                    // Text payloads are `Bytes`: every recipient shares one buffer.
                    let _ = tx.send(message);
                }
            }
            forward.abort();
        });
    }
}
