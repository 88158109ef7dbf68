//! Herald's client against another implementation's echo server, compression on: sends text
//! and binary messages of 0 B, 10 B, 64 KiB and 4 MiB and checks each echo byte for byte
//! (`scripts/interop`; the messages match `compliance/interop/messages.py`).
//!
//! `cargo run --release -p herald --example interop-client -- ws://127.0.0.1:PORT/ NAME [h2]`;
//! with `h2` (and the `http2` feature) over HTTP/2 by extended CONNECT (RFC 8441).
#![allow(clippy::print_stdout)]

use herald::{ClientBuilder, Config, DeflateConfig, Message};

const SIZES: [usize; 4] = [0, 10, 64 << 10, 4 << 20];

fn payload(size: usize, seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut i = 0;
    while out.len() < size {
        out.extend_from_slice(format!("herald interop {seed} line {i}; ").as_bytes());
        i += 1;
    }
    out.truncate(size);
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: interop-client URL [PEER-NAME]")?;
    let peer = args.next().unwrap_or_else(|| "peer".into());
    let config = Config::default().deflate(Some(DeflateConfig::default()));
    let builder = ClientBuilder::new(&url)?.config(config);
    let (mut ws, accepted) = match args.next().as_deref() {
        #[cfg(feature = "http2")]
        Some("h2") => builder.connect_h2().await?,
        Some(other) => return Err(format!("unknown transport {other}").into()),
        None => builder.connect().await?,
    };
    let params = ws
        .protocol()
        .deflate()
        .copied()
        .ok_or("permessage-deflate was not negotiated")?;
    let mut count = 0;
    for (n, size) in SIZES.into_iter().enumerate() {
        let text = String::from_utf8(payload(size, n))?;
        let binary = payload(size, n + 100);
        for message in [Message::text(text.clone()), Message::binary(binary)] {
            ws.send(message.clone()).await?;
            let echo = loop {
                match ws.recv().await.ok_or("connection ended")?? {
                    m if m.is_data() => break m,
                    _ => {}
                }
            };
            if echo != message {
                return Err(format!("echo of {size} bytes differs").into());
            }
            count += 1;
        }
    }
    ws.close(herald::CloseCode::NORMAL, "").await?;
    println!(
        "herald client -> {peer} server: {count} messages echoed byte for byte ({})",
        accepted
            .extensions
            .first()
            .map_or(String::new(), |_| params.to_header())
    );
    Ok(())
}
