//! The client that the Autobahn TestSuite's fuzzing server tests (`scripts/autobahn`): asks
//! for the case count, runs every case as an echo client, then asks for the reports.
//!
//! `AUTOBAHN_URL=ws://127.0.0.1:9001 AUTOBAHN_AGENT=herald-client \
//!  cargo run --release -p herald --example autobahn-client`
#![allow(clippy::print_stdout)]

use herald::{ClientBuilder, Config, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> herald::Result<()> {
    let base = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("AUTOBAHN_URL").ok())
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let base = base.trim_end_matches('/');
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "herald-client".into());
    let count = case_count(base).await?;
    println!("running {count} cases against {base} as {agent}");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(e) = echo(&url).await {
            println!("case {case}: {e}");
        }
    }
    let (mut ws, _) = herald::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    ws.close(herald::CloseCode::NORMAL, "").await?;
    Ok(())
}

async fn case_count(base: &str) -> herald::Result<u32> {
    let (mut ws, _) = herald::connect(&format!("{base}/getCaseCount")).await?;
    let mut count = 0;
    while let Some(message) = ws.recv().await {
        if let Message::Text(text) = message? {
            count = text.parse().unwrap_or(0);
        }
    }
    Ok(count)
}

async fn echo(url: &str) -> herald::Result<()> {
    let config = Config::default()
        .max_frame_size(64 << 20)
        .max_message_size(64 << 20)
        .keepalive_interval(None)
        .keepalive_timeout(std::time::Duration::from_secs(20))
        .deflate(Some(herald::proto::DeflateConfig::default()));
    let (mut ws, _) = ClientBuilder::new(url)?.config(config).connect().await?;
    while let Some(message) = ws.recv().await {
        let message = message?;
        if message.is_data() {
            ws.feed(message).await?;
        }
    }
    Ok(())
}
