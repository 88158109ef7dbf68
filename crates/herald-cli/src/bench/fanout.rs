//! `herald bench fanout`: M subscribers on a `herald serve` hub (protocol mode), one
//! publisher at a set rate; deliveries per second, publish-to-receive latency and losses by
//! offset.
//!
//! The publisher puts its send time (microseconds since the Unix epoch) at the front of each
//! publication's data, a JSON string of exactly `--size` bytes; subscribers read it, and the
//! offset, with a byte scan instead of a JSON parse, so the generator stays cheap per
//! delivery. The server must allow the publish rate (`herald serve --publish-rate 0`).

use super::progress::Progress;
use super::report::{Latency, Report, histogram, micros};
use super::system::{self, CpuSample};
use super::{Common, positive_secs};
use anyhow::Context as _;
use hdrhistogram::Histogram;
use herald::{ClientBuilder, CloseCode, Config, Message};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;

/// Options of `herald bench fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Subscriber connections.
    #[arg(short, long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    subscribers: u64,
    /// Channels the subscribers spread over (round robin); the publisher cycles through them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    channels: u64,
    /// Publications per second.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Size of each publication's data in bytes (a JSON string, at least 18).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(18..))]
    size: u64,
    /// Seconds of publishing.
    #[arg(short, long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    duration: Duration,
}

/// Latency shards: subscribers record into one of these, picked by their index.
const SHARDS: usize = 16;

struct Shared {
    delivered: AtomicU64,
    bytes: AtomicU64,
    losses: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
    /// Offsets the publisher got back, per channel: the last one.
    last_published: Vec<AtomicU64>,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Report> {
    system::ensure_open_files(args.subscribers + 1)?;
    let shared = Arc::new(Shared {
        delivered: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        losses: AtomicU64::new(0),
        latency: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        last_published: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
    });
    let progress = Progress::new(args.subscribers, "subscribers");
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut subscribers = JoinSet::new();
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let handshakes = Arc::new(tokio::sync::Semaphore::new(256));
    for i in 0..args.subscribers {
        let channel = format!("bench:{}", i % args.channels);
        let (url, shared, ready, handshakes) = (
            args.common.url.clone(),
            shared.clone(),
            ready.clone(),
            handshakes.clone(),
        );
        let done = done_rx.clone();
        let index = usize::try_from(i).unwrap_or(0);
        let (timeout, slot) = (args.common.timeout, (i % args.channels) as usize);
        subscribers.spawn(async move {
            subscriber(
                url, channel, slot, index, shared, ready, handshakes, done, timeout,
            )
            .await
        });
    }
    let total = u32::try_from(args.subscribers).context("too many subscribers")?;
    let _all = tokio::time::timeout(args.common.timeout * 4, ready.acquire_many(total))
        .await
        .context("subscribers did not all subscribe in time")??;
    progress.restart(args.rate * args.duration.as_secs().max(1), "publications");

    let cpu_before = CpuSample::take(args.common.server_pid);
    let started = Instant::now();
    let published = publish(args, &shared, &progress).await?;
    // Drain: wait until every subscriber saw the last offset of its channel, or time out.
    let _ = done_tx.send(true);
    let mut errors = 0;
    while let Some(joined) = subscribers.join_next().await {
        if !matches!(joined, Ok(Ok(()))) {
            errors += 1;
        }
    }
    // Deliveries count until the last one arrived: a server that falls behind shows it.
    let elapsed = started.elapsed();
    let cpu = CpuSample::take(args.common.server_pid).since(&cpu_before);
    progress.finish();
    let mut merged = histogram();
    for shard in &shared.latency {
        let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        merged.add(&*shard).ok();
    }
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64();
    let mut report = Report::new("fanout", args.subscribers);
    report.duration_s = seconds;
    report.messages = delivered;
    report.msgs_per_s = delivered as f64 / seconds;
    report.bytes_per_s = shared.bytes.load(Ordering::Relaxed) as f64 / seconds;
    report.latency_us = Latency::of(&merged);
    report.latency_label = "publish to receive";
    report.errors = errors;
    report.losses = shared.losses.load(Ordering::Relaxed);
    report.generator_cpu_pct = cpu.generator_pct;
    report.server_cpu_pct = cpu.server_pct;
    report.add("published", "publications", published);
    report.add("channels", "channels", args.channels);
    report.add("rate", "publish rate (/s)", args.rate);
    report.add("size", "data size (bytes)", args.size);
    Ok(report)
}

/// Publishes `rate` per second for the duration; returns how many were acknowledged.
async fn publish(args: &Args, shared: &Shared, progress: &Progress) -> anyhow::Result<u64> {
    let builder = ClientBuilder::new(&args.common.url)?.subprotocol("herald.v1");
    let (ws, _) = builder.connect().await.context("publisher connect")?;
    let (mut reader, mut writer) = ws.split();
    let count = args.rate * args.duration.as_secs_f64().ceil() as u64;
    let channels = args.channels;
    let pad = usize::try_from(args.size).unwrap_or(18) - 18;
    let acks = async {
        let mut acknowledged = 0u64;
        while acknowledged < count {
            let Some(Ok(Message::Text(text))) = reader.recv().await else {
                anyhow::bail!("publisher connection ended");
            };
            if text.contains("\"error\"") {
                anyhow::bail!("publish refused: {text} (run the server with --publish-rate 0)");
            }
            if let (Some(id), Some(offset)) = (
                number_after(&text, "\"id\":"),
                number_after(&text, "\"offset\":"),
            ) {
                let slot = ((id - 1) % channels) as usize;
                shared.last_published[slot].fetch_max(offset, Ordering::Relaxed);
                acknowledged += 1;
            }
        }
        Ok(acknowledged)
    };
    let sends = async {
        let period = Duration::from_secs_f64(1.0 / args.rate as f64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for id in 1..=count {
            tick.tick().await;
            let channel = (id - 1) % channels;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let command = format!(
                "{{\"id\":{id},\"method\":\"publish\",\"params\":{{\"channel\":\"bench:{channel}\",\"data\":\"{:016}{}\"}}}}",
                now.as_micros(),
                "x".repeat(pad)
            );
            writer.send(Message::text(command)).await?;
            if id % 64 == 0 {
                progress.set(id, String::new());
            }
        }
        anyhow::Ok(())
    };
    let (acknowledged, sent) = tokio::join!(acks, sends);
    sent?;
    let acknowledged = acknowledged?;
    let _ = writer.close(CloseCode::NORMAL, "").await;
    Ok(acknowledged)
}

#[allow(clippy::too_many_arguments)]
async fn subscriber(
    url: String,
    channel: String,
    slot: usize,
    index: usize,
    shared: Arc<Shared>,
    ready: Arc<tokio::sync::Semaphore>,
    handshakes: Arc<tokio::sync::Semaphore>,
    mut done: tokio::sync::watch::Receiver<bool>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let config = Config::default().keepalive(None, Duration::from_secs(60));
    let permit = handshakes.acquire().await?;
    let builder = ClientBuilder::new(&url)?
        .subprotocol("herald.v1")
        .config(config)
        .connect_timeout(timeout);
    let (mut ws, _) = builder.connect().await?;
    drop(permit);
    let subscribe =
        format!("{{\"id\":1,\"method\":\"subscribe\",\"params\":{{\"channel\":\"{channel}\"}}}}");
    ws.send(Message::text(subscribe)).await?;
    // The `connected` push, then the reply with the starting offset.
    let mut last = loop {
        let Some(message) = ws.recv().await else {
            anyhow::bail!("closed before subscribing");
        };
        if let Message::Text(text) = message?
            && text.starts_with("{\"id\":1")
        {
            break number_after(&text, "\"offset\":").context("subscribe reply")?;
        }
    };
    ready.add_permits(1);
    let shard = &shared.latency[index % SHARDS];
    let mut draining: Option<Instant> = None;
    loop {
        let target = shared.last_published[slot].load(Ordering::Relaxed);
        if let Some(since) = draining
            && (last >= target || since.elapsed() > timeout)
        {
            shared
                .losses
                .fetch_add(target.saturating_sub(last), Ordering::Relaxed);
            break;
        }
        let message = tokio::select! {
            message = ws.recv() => message,
            _ = done.changed(), if draining.is_none() => {
                draining = Some(Instant::now());
                continue;
            }
            () = tokio::time::sleep(Duration::from_millis(50)), if draining.is_some() => continue,
        };
        let Some(message) = message else {
            anyhow::bail!("server closed the subscription");
        };
        let Message::Text(text) = message? else {
            continue;
        };
        let Some(offset) = number_after(&text, "\"offset\":") else {
            continue;
        };
        if offset > last + 1 {
            shared
                .losses
                .fetch_add(offset - last - 1, Ordering::Relaxed);
        }
        last = last.max(offset);
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        shared.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        if let Some(sent) = number_after(&text, "\"data\":\"") {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let took = Duration::from_micros(
                u64::try_from(now.as_micros())
                    .unwrap_or(0)
                    .saturating_sub(sent),
            );
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let _ = shard.record(micros(took));
        }
    }
    let _ = ws.close(CloseCode::NORMAL, "").await;
    Ok(())
}

/// The decimal number right after `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::number_after;

    #[test]
    fn numbers_are_read_after_their_key() {
        let push = r#"{"push":"pub","channel":"bench:0","offset":42,"epoch":"e","data":"1764000000000001xx"}"#;
        assert_eq!(number_after(push, "\"offset\":"), Some(42));
        assert_eq!(
            number_after(push, "\"data\":\""),
            Some(1_764_000_000_000_001)
        );
        assert_eq!(number_after(push, "\"nope\":"), None);
    }
}
