//! The echo server that the Autobahn TestSuite's fuzzing client tests (`scripts/autobahn`).
//!
//! `cargo run --release -p herald --example autobahn-server -- [ADDR]` (default 127.0.0.1:9001).
//! Limits are raised to the suite's largest messages (16 MiB); keepalive is off;
//! permessage-deflate is on with the default settings (sections 12 and 13).
#![allow(clippy::print_stdout)]

use herald::Config;
use std::io::Write;
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let config = Config::default()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .keepalive_interval(None)
        .keepalive_timeout(std::time::Duration::from_secs(20))
        .deflate(Some(herald::proto::DeflateConfig::default()));
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let config = config.clone();
        tokio::spawn(async move {
            let accepted = herald::accept_with(tcp, &config, |_| Ok(Default::default())).await;
            let Ok(mut ws) = accepted else { return };
            while let Some(Ok(message)) = ws.recv().await {
                if message.is_data() && ws.feed(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
