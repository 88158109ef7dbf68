//! A client: sends each line of standard input as a text message and prints what comes back.
//!
//! `cargo run -p herald --example client -- ws://127.0.0.1:9001` (or a `wss://` URL).
#![allow(clippy::print_stdout)]

use herald::{CloseCode, Message};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> herald::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let (ws, accepted) = herald::connect(&url).await?;
    println!(
        "connected to {url} (subprotocol: {:?})",
        accepted.subprotocol
    );
    let (mut reader, mut writer) = ws.split();
    let printer = tokio::spawn(async move {
        while let Some(message) = reader.recv().await {
            match message {
                Ok(Message::Text(text)) => println!("< {text}"),
                Ok(Message::Binary(data)) => println!("< {} binary bytes", data.len()),
                Ok(Message::Close(frame)) => println!("closed: {frame:?}"),
                Ok(_) => {}
                Err(e) => println!("error: {e}"),
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        writer.send(Message::text(line)).await?;
    }
    writer.close(CloseCode::NORMAL, "end of input").await?;
    let _ = printer.await;
    Ok(())
}
