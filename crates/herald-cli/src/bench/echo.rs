//! `herald bench echo`: closed-loop echo throughput and round-trip latency.
//!
//! Every connection writes `--in-flight` copies of one pre-built masked frame, then one more
//! for each echo. Echoes are counted from frame headers without touching payloads, so the
//! generator stays cheaper per message than the server it measures (compare the two CPU
//! figures). At the end of the window no new copies are written; the copies in flight must
//! all come back (the drain), else they count as losses.

use super::exchange::{Exchange, Stats, Window};
use super::handshake::{self, Target};
use super::progress::{Progress, REFRESH};
use super::report::{Latency, Report, histogram};
use super::system::{self, CpuSample, CpuUse};
use super::{Common, positive_secs, secs};
use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Handshakes in progress at once while connecting.
const CONCURRENT_HANDSHAKES: usize = 256;
/// The longest wait for the server's answer to each connection's final Close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Options of `herald bench echo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Connections.
    #[arg(short, long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    connections: u64,
    /// Payload bytes per message.
    #[arg(short, long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    size: u64,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    in_flight: u64,
    /// Measured seconds.
    #[arg(short, long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    duration: Duration,
    /// Seconds of load before measuring.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = secs)]
    warmup: Duration,
    /// Send text messages (the default).
    #[arg(long, conflicts_with = "binary")]
    text: bool,
    /// Send binary messages.
    #[arg(long)]
    binary: bool,
    /// The server is a raw TCP echo: accept the client's own (masked) frames coming back.
    #[arg(long)]
    raw_echo: bool,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Report> {
    system::ensure_open_files(args.connections)?;
    let target = Target::resolve(&args.common.url).await?;
    let mut key = [0u8; 4];
    handshake::random(&mut key);
    let size = usize::try_from(args.size).context("--size")?;
    let frame = super::frame::client_frame(size, args.binary, key);
    let progress = Progress::new(args.connections, "connections");
    let (streams, failed) = connect_all(&target, args, &progress).await?;

    let from = Instant::now() + args.warmup;
    let window = Window {
        from,
        until: from + args.duration,
    };
    let echoes = Arc::new(AtomicU64::new(0));
    let mut running = JoinSet::new();
    for (stream, leftover) in streams {
        let mut exchange = Exchange::new(frame.clone(), args.in_flight, window, echoes.clone());
        if args.raw_echo {
            exchange.accept_masked();
        }
        let drain = args.common.timeout;
        running.spawn(exchange_then_close(exchange, stream, leftover, drain, key));
    }
    let cpu = tokio::spawn(sample_cpu(window, args.common.server_pid));
    let ticker = tokio::spawn(show_progress(progress.clone(), window, echoes));
    let mut total = Totals::default();
    while let Some(joined) = running.join_next().await {
        total.add(joined.context("a connection panicked")?)?;
    }
    ticker.abort();
    progress.finish();
    let cpu = cpu.await.unwrap_or_default();
    if let Some(e) = &total.first_error {
        eprintln!(
            "herald bench: {} connection(s) failed; the first: {e:#}",
            total.errors
        );
    }
    Ok(report(args, &total, failed, cpu))
}

/// Opens every connection before the run, so that setup never lands in the window.
async fn connect_all(
    target: &Target,
    args: &Args,
    progress: &Progress,
) -> anyhow::Result<(Vec<(TcpStream, BytesMut)>, u64)> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_HANDSHAKES));
    let mut connecting = JoinSet::new();
    for _ in 0..args.connections {
        let (target, permits, timeout) = (target.clone(), permits.clone(), args.common.timeout);
        connecting.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            handshake::open(&target, timeout).await
        });
    }
    let (mut open, mut failed, mut first_error) = (Vec::new(), 0, None);
    while let Some(joined) = connecting.join_next().await {
        match joined.context("a connection panicked")? {
            Ok(stream) => open.push(stream),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        progress.set(open.len() as u64 + failed, String::new());
    }
    match first_error {
        Some(e) if open.is_empty() => Err(e.context("every connection failed")),
        Some(e) => {
            eprintln!("herald bench: {failed} connection(s) failed to open; the first: {e:#}");
            Ok((open, failed))
        }
        None => Ok((open, failed)),
    }
}

async fn exchange_then_close(
    mut exchange: Exchange,
    mut stream: TcpStream,
    leftover: BytesMut,
    drain: Duration,
    key: [u8; 4],
) -> Stats {
    let deadline = tokio::time::Instant::from_std(exchange.window().until) + drain;
    match tokio::time::timeout_at(deadline, exchange.run(&mut stream, &leftover)).await {
        Ok(Ok(())) => {
            let close = super::frame::close_frame(1000, key);
            let _ = tokio::time::timeout(CLOSE_WAIT, close_politely(&mut stream, close)).await;
        }
        Ok(Err(e)) => exchange.stats.error = Some(e),
        Err(_) => {
            let e = anyhow::anyhow!("echoes still missing {drain:?} after the window");
            exchange.stats.error = Some(e);
        }
    }
    exchange.stats
}

/// RFC 6455 §7.1.2: sends a Close, then reads until the server closes the TCP connection.
async fn close_politely(stream: &mut TcpStream, close: Bytes) -> std::io::Result<()> {
    stream.write_all(&close).await?;
    let mut scratch = [0u8; 4096];
    while stream.read(&mut scratch).await? > 0 {}
    Ok(())
}

async fn sample_cpu(window: Window, server: Option<u32>) -> CpuUse {
    tokio::time::sleep_until(window.from.into()).await;
    let start = CpuSample::take(server);
    tokio::time::sleep_until(window.until.into()).await;
    CpuSample::take(server).since(&start)
}

async fn show_progress(progress: Progress, window: Window, echoes: Arc<AtomicU64>) {
    let start = Instant::now();
    let total = window.until.saturating_duration_since(start);
    progress.restart(total.as_secs_f64().ceil() as u64, "s");
    let mut last = (start, 0);
    loop {
        tokio::time::sleep(REFRESH).await;
        let (now, count) = (Instant::now(), echoes.load(Ordering::Relaxed));
        let rate = (count - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        let phase = if now < window.from {
            "warming up"
        } else {
            "measuring"
        };
        let elapsed = now.duration_since(start).min(total).as_secs_f64().round() as u64;
        progress.set(elapsed, format!("{phase}, {rate:.0} msgs/s"));
        last = (now, count);
    }
}

/// The connections' figures, added up.
#[derive(Default)]
struct Totals {
    latency: Option<hdrhistogram::Histogram<u64>>,
    messages: u64,
    sent: u64,
    echoed: u64,
    losses: u64,
    errors: u64,
    first_error: Option<anyhow::Error>,
}

impl Totals {
    fn add(&mut self, stats: Stats) -> anyhow::Result<()> {
        self.latency
            .get_or_insert_with(histogram)
            .add(&stats.latency)?;
        self.messages += stats.messages;
        self.sent += stats.sent;
        self.echoed += stats.echoed;
        self.losses += stats.sent.saturating_sub(stats.echoed);
        if let Some(e) = stats.error {
            self.errors += 1;
            self.first_error.get_or_insert(e);
        }
        Ok(())
    }
}

fn report(args: &Args, total: &Totals, failed: u64, cpu: CpuUse) -> Report {
    let mut report = Report::new("echo", args.connections);
    let secs = args.duration.as_secs_f64();
    report.duration_s = secs;
    report.messages = total.messages;
    report.msgs_per_s = total.messages as f64 / secs;
    report.bytes_per_s = report.msgs_per_s * args.size as f64;
    report.latency_us = total.latency.as_ref().map(Latency::of).unwrap_or_default();
    report.errors = total.errors + failed;
    report.losses = total.losses;
    report.generator_cpu_pct = cpu.generator_pct;
    report.server_cpu_pct = cpu.server_pct;
    report.add("size", "payload size", args.size);
    report.add("in_flight", "in flight", args.in_flight);
    report.add("sent", "sent (whole run)", total.sent);
    report.add("echoed", "echoed (whole run)", total.echoed);
    report
}
