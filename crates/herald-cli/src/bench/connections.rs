//! `herald bench connections`: opens idle connections at a steady rate, holds them, and
//! reports handshake latency and what they cost the server in memory.
//!
//! Connections are herald clients (so `wss://` works, and Pings from the server are
//! answered) with keepalive off: the server sees idle connections.

use super::progress::Progress;
use super::report::{Latency, Report, histogram, micros};
use super::system::{self, CpuSample, CpuUse, rss_kib};
use super::{Common, secs};
use herald::{ClientBuilder, CloseCode, Config};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Options of `herald bench connections`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Connections to open.
    #[arg(short, long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    connections: u64,
    /// Connections started per second.
    #[arg(long, default_value_t = 1000.0, value_parser = rate)]
    rate: f64,
    /// Seconds to hold the connections once every one was attempted.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = secs)]
    hold: Duration,
}

fn rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.001 => Ok(rate),
        _ => Err("expected connections per second, at least 0.001".into()),
    }
}

/// What each connection reports.
enum Event {
    Opened(Duration),
    Failed(herald::Error),
    /// The server ended an open connection before the hold was over.
    Dropped,
}

/// The figures as the run goes.
struct Tally {
    opened: u64,
    failed: u64,
    dropped: u64,
    latency: hdrhistogram::Histogram<u64>,
    first_error: Option<herald::Error>,
}

impl Tally {
    fn add(&mut self, event: Event) {
        match event {
            Event::Opened(took) => {
                self.opened += 1;
                self.latency.saturating_record(micros(took));
            }
            Event::Failed(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
            Event::Dropped => self.dropped += 1,
        }
    }
}

/// What was measured around the connections: the server's memory, both processes' CPU.
struct Measures {
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    cpu: CpuUse,
    /// How long opening took, and the whole run until the close began.
    opening: Duration,
    duration: Duration,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Report> {
    system::ensure_open_files(args.connections)?;
    ClientBuilder::new(&args.common.url)?;
    let pid = args.common.server_pid;
    let rss_before = pid.and_then(rss_kib);
    let cpu_start = CpuSample::take(pid);
    let started = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut tally = Tally {
        opened: 0,
        failed: 0,
        dropped: 0,
        latency: histogram(),
        first_error: None,
    };
    let mut held = JoinSet::new();
    open_all(args, &mut held, &mut tally, &mut events, events_tx, stopped).await;
    let opening = started.elapsed();
    let hold_until = tokio::time::Instant::now() + args.hold;
    while let Ok(Some(event)) = tokio::time::timeout_at(hold_until, events.recv()).await {
        tally.add(event);
    }
    let measures = Measures {
        rss_before,
        rss_after: pid.and_then(rss_kib),
        cpu: CpuSample::take(pid).since(&cpu_start),
        opening,
        duration: started.elapsed(),
    };
    let _ = stop.send(true);
    let closing = async { while held.join_next().await.is_some() {} };
    if tokio::time::timeout(args.common.timeout, closing)
        .await
        .is_err()
    {
        held.abort_all();
    }
    if let Some(e) = &tally.first_error {
        let failed = tally.failed;
        eprintln!("herald bench: {failed} connection(s) failed; the first: {e}");
    }
    Ok(report(args, &tally, &measures))
}

/// Starts a connection every `1 / rate` seconds until each one opened or failed.
async fn open_all(
    args: &Args,
    held: &mut JoinSet<()>,
    tally: &mut Tally,
    events: &mut mpsc::UnboundedReceiver<Event>,
    events_tx: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
) {
    let progress = Progress::new(args.connections, "connections");
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let url: Arc<str> = args.common.url.as_str().into();
    let mut spawned = 0;
    while tally.opened + tally.failed < args.connections {
        tokio::select! {
            _ = pace.tick(), if spawned < args.connections => {
                let one = hold(url.clone(), args.common.timeout, events_tx.clone(), stop.clone());
                held.spawn(one);
                spawned += 1;
            }
            Some(event) = events.recv() => tally.add(event),
        }
        let done = tally.opened + tally.failed;
        progress.set(done, format!("{} failed", tally.failed));
    }
    progress.finish();
}

fn report(args: &Args, tally: &Tally, measures: &Measures) -> Report {
    let mut report = Report::new("connections", args.connections);
    report.duration_s = measures.duration.as_secs_f64();
    report.latency_us = Latency::of(&tally.latency);
    report.latency_label = "TCP connect + handshake";
    report.errors = tally.failed + tally.dropped;
    report.losses = tally.dropped;
    report.generator_cpu_pct = measures.cpu.generator_pct;
    report.server_cpu_pct = measures.cpu.server_pct;
    report.add("opened", "opened", tally.opened);
    report.add("failed", "failed", tally.failed);
    report.add("dropped", "dropped while held", tally.dropped);
    let rate = tally.opened as f64 / measures.opening.as_secs_f64();
    report.add("open_rate_per_s", "opened per second", rate.round());
    report.add(
        "rss_before_kib",
        "server RSS before, KiB",
        measures.rss_before,
    );
    report.add("rss_after_kib", "server RSS after, KiB", measures.rss_after);
    let per_conn = match (measures.rss_before, measures.rss_after) {
        (Some(before), Some(after)) if tally.opened > 0 => {
            let grown = (after as f64 - before as f64) * 1024.0;
            Some((grown / tally.opened as f64).round())
        }
        _ => None,
    };
    report.add("rss_per_conn_bytes", "server RSS per conn, B", per_conn);
    report
}

/// Opens one connection, reports how long it took, and holds it until `stop`, answering the
/// server's Pings; then closes with 1000.
async fn hold(
    url: Arc<str>,
    timeout: Duration,
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let config = Config::default()
        .keepalive_interval(None)
        .keepalive_timeout(timeout)
        .handshake_timeout(timeout)
        .close_timeout(timeout);
    let connecting = async {
        let builder = ClientBuilder::new(&url)?;
        builder
            .config(config)
            .connect_timeout(timeout)
            .connect()
            .await
    };
    let mut ws = match connecting.await {
        Ok((ws, _)) => {
            let _ = events.send(Event::Opened(started.elapsed()));
            ws
        }
        Err(e) => {
            let _ = events.send(Event::Failed(e));
            return;
        }
    };
    let dropped = tokio::select! {
        _ = stop.wait_for(|stop| *stop) => false,
        () = async { while let Some(Ok(_)) = ws.recv().await {} } => true,
    };
    if dropped {
        let _ = events.send(Event::Dropped);
    } else {
        let _ = ws.close(CloseCode::NORMAL, "").await;
    }
}
