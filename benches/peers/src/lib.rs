//! What the raw TCP peers (`tcp-fanout`, `tcp-echo`) share: answering the opening handshake
//! and turning complete masked client frames into server frames, with no other WebSocket logic.

pub mod floor;

use anyhow::Context as _;
use std::io::Write as _;
use tokio::net::TcpListener;

/// Binds `addr` and prints `listening on ADDR` (the bound address) on stdout, flushed: the
/// benchmark scripts start every peer on port 0 and read its port from that line.
///
/// # Errors
/// The address could not be bound, or stdout could not be written.
pub async fn listen(addr: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {local}")?;
    out.flush()?;
    Ok(listener)
}
