//! The publisher: one protocol-mode connection, pipelined `publish` commands.

use super::Args;
use super::number_after;
use crate::bench::progress::Progress;
use anyhow::Context as _;
use herald::{ClientBuilder, CloseCode, Message};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, watch};

/// Unacknowledged publishes at most, when publishing as fast as possible.
const IN_FLIGHT: usize = 256;

/// What the publisher did.
pub(super) struct Published {
    /// Publishes the server acknowledged.
    pub(super) acknowledged: u64,
    /// The last offset acknowledged, per channel.
    pub(super) last_offsets: Vec<u64>,
    /// Publishes refused with a temporary error (the broker slow or away): not counted in
    /// any channel's last offset.
    pub(super) refused: u64,
}

/// Publishes for the duration, at `--rate` per second or (rate 0) as fast as the server
/// acknowledges.
pub(super) async fn run(args: &Args, progress: &Progress) -> anyhow::Result<Published> {
    let builder = ClientBuilder::new(&args.common.url)?.subprotocol("herald.v1");
    let (ws, _) = builder.connect().await.context("publisher connect")?;
    let (mut reader, mut writer) = ws.split();
    let channels = args.channels;
    let window = Arc::new(Semaphore::new(IN_FLIGHT));
    let (sent_tx, mut sent_rx) = watch::channel(None::<u64>);
    let acks = async {
        let mut last_offsets = vec![0u64; usize::try_from(channels).unwrap_or(1)];
        let mut acknowledged = 0u64;
        let mut refused = 0u64;
        loop {
            if sent_rx
                .borrow()
                .is_some_and(|sent| acknowledged + refused >= sent)
            {
                break;
            }
            let message = tokio::select! {
                message = reader.recv() => message,
                _ = sent_rx.changed() => continue,
            };
            let Some(Ok(Message::Text(text))) = message else {
                anyhow::bail!("publisher connection ended");
            };
            if text.contains("\"error\"") {
                if !text.contains("\"temporary\":true") {
                    anyhow::bail!("publish refused: {text} (run the server with --publish-rate 0)");
                }
                // Counted, and the run goes on: with outcome unknown (111) the publication may
                // still have its offset, which subscribers then count like any other.
                refused += 1;
                if sent_rx
                    .borrow()
                    .is_some_and(|sent| acknowledged + refused >= sent)
                {
                    break;
                }
                window.add_permits(1);
                continue;
            }
            let id = number_after(&text, "\"id\":");
            if let (Some(id), Some(offset)) = (id, number_after(&text, "\"offset\":")) {
                let slot = usize::try_from((id - 1) % channels).unwrap_or(0);
                last_offsets[slot] = last_offsets[slot].max(offset);
                acknowledged += 1;
                window.add_permits(1);
            }
        }
        Ok(Published {
            acknowledged,
            last_offsets,
            refused,
        })
    };
    let sends = async {
        let pad = "x".repeat(usize::try_from(args.size).unwrap_or(18) - 18);
        let period = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let count = args.rate * args.duration.as_secs_f64().ceil() as u64;
        let started = Instant::now();
        let mut id = 0u64;
        loop {
            if args.rate > 0 {
                if id == count {
                    break;
                }
                tick.tick().await;
            } else {
                if started.elapsed() >= args.duration {
                    break;
                }
                window.acquire().await?.forget();
            }
            id += 1;
            let channel = (id - 1) % channels;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let command = format!(
                "{{\"id\":{id},\"method\":\"publish\",\"params\":{{\"channel\":\"bench:{channel}\",\"data\":\"{:016}{pad}\"}}}}",
                now.as_micros(),
            );
            writer.send(Message::text(command)).await?;
            if id.is_multiple_of(64) {
                progress.set(id, String::new());
            }
        }
        let _ = sent_tx.send(Some(id));
        anyhow::Ok(())
    };
    let (published, sent) = tokio::join!(acks, sends);
    sent?;
    let published = published?;
    let _ = writer.close(CloseCode::NORMAL, "").await;
    Ok(published)
}
