//! `herald-loadgen`: a minimal WebSocket echo load generator.
//!
//! Every connection keeps a fixed number of messages in flight: it sends
//! `--inflight` copies of one pre-built masked frame, then sends one more copy
//! for each complete echo it receives. Server frames are parsed by header
//! only and their payloads are skipped without copying, so the generator
//! stays much cheaper per message than the server it measures.
//!
//! Output is one line, either human-readable or JSON (`--json`):
//! `herald-loadgen: conns=N size=S inflight=K duration=D msgs=M
//! msgs_per_sec=X p50_us=A p99_us=B errors=E`.

#![allow(clippy::print_stdout)]

mod conn;
mod frame;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::conn::{Exchange, Stats, Target};

/// How long connecting and the opening handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Grace period on top of warmup and duration before giving up entirely.
const OVERALL_GRACE: Duration = Duration::from_secs(5);

/// WebSocket echo load generator.
#[derive(Debug, Parser)]
#[command(name = "herald-loadgen", version)]
struct Args {
    /// Server URL; only `ws://host:port` and the path are used.
    #[arg(long, default_value = "ws://127.0.0.1:9002/")]
    url: String,
    /// Number of concurrent connections.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Payload size of every message, in bytes.
    #[arg(long, default_value_t = 20)]
    size: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    inflight: u32,
    /// Measured duration in seconds (after warmup).
    #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
    duration: f64,
    /// Warmup in seconds; messages completed during it are not counted.
    #[arg(long, default_value_t = 1.0, value_parser = parse_secs)]
    warmup: f64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// Send binary messages instead of text.
    #[arg(long)]
    binary: bool,
    /// Print one JSON object instead of the human-readable line.
    #[arg(long)]
    json: bool,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("must be a non-negative number of seconds".to_owned())
    }
}

/// Splits `ws://host:port/path` into connect authority and request path.
fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = if let Some(rest) = url.strip_prefix("ws://") {
        rest
    } else if url.starts_with("wss://") {
        bail!("wss:// is not supported");
    } else if url.contains("://") {
        bail!("unsupported URL scheme in {url:?}");
    } else {
        url
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        bail!("missing host in {url:?}");
    }
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        authority,
        path: path.to_owned(),
    })
}

/// Aggregated result of a run.
struct Report {
    msgs: u64,
    p50_us: u64,
    p99_us: u64,
    errors: usize,
    failed_all: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(&args) {
        Ok(report) => {
            let duration = args.duration;
            let rate = if duration > 0.0 {
                report.msgs as f64 / duration
            } else {
                0.0
            };
            if args.json {
                println!(
                    "{{\"conns\":{},\"size\":{},\"inflight\":{},\"duration\":{},\"msgs\":{},\
                     \"msgs_per_sec\":{:.1},\"p50_us\":{},\"p99_us\":{},\"errors\":{}}}",
                    args.connections,
                    args.size,
                    args.inflight,
                    duration,
                    report.msgs,
                    rate,
                    report.p50_us,
                    report.p99_us,
                    report.errors,
                );
            } else {
                println!(
                    "herald-loadgen: conns={} size={} inflight={} duration={} msgs={} \
                     msgs_per_sec={:.1} p50_us={} p99_us={} errors={}",
                    args.connections,
                    args.size,
                    args.inflight,
                    duration,
                    report.msgs,
                    rate,
                    report.p50_us,
                    report.p99_us,
                    report.errors,
                );
            }
            if report.msgs == 0 {
                eprintln!("herald-loadgen: no message completed in the measurement window");
                ExitCode::FAILURE
            } else if report.failed_all {
                eprintln!("herald-loadgen: every connection failed");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("herald-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: &Args) -> anyhow::Result<Report> {
    let target = parse_url(&args.url)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build()
        .context("building the Tokio runtime")?
        .block_on(run(args, target))
}

async fn run(args: &Args, target: Target) -> anyhow::Result<Report> {
    let frame = frame::build_client_frame(args.size, args.binary);
    let conns = args.connections as usize;
    let inflight = args.inflight as usize;
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);

    // Open every connection first so setup cost never lands in the window.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut connecting = JoinSet::new();
    for i in 0..conns {
        let target = target.clone();
        connecting.spawn(async move {
            let key_seed = seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
            tokio::time::timeout(CONNECT_TIMEOUT, conn::connect(&target, key_seed))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("handshake timed out")))
        });
    }
    let mut ready = Vec::with_capacity(conns);
    let mut errors = 0usize;
    let mut first_error: Option<anyhow::Error> = None;
    while let Some(joined) = connecting.join_next().await {
        match joined.context("a connection panicked")? {
            Ok(conn) => ready.push(conn),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if ready.is_empty() {
        let e = first_error.unwrap_or_else(|| anyhow::anyhow!("no connection"));
        return Err(e.context(format!("all {conns} connections failed")));
    }

    let start = Instant::now();
    let measure_from = (start + warmup).into_std();
    let end = start + warmup + duration;
    let mut running = JoinSet::new();
    for (stream, leftover) in ready {
        let frame = frame.clone();
        running.spawn(async move {
            let mut exchange = Exchange::new(frame, inflight, measure_from);
            let outcome = tokio::select! {
                biased;
                () = tokio::time::sleep_until(end) => Ok(()),
                result = exchange.run(stream, &leftover) => result,
            };
            let mut stats = exchange.stats;
            if let Err(e) = outcome {
                stats.error = Some(e);
            }
            stats
        });
    }

    let mut total = Stats::new();
    let hard_stop = end + OVERALL_GRACE;
    loop {
        match tokio::time::timeout_at(hard_stop, running.join_next()).await {
            Ok(Some(joined)) => {
                let stats = joined.context("a connection panicked")?;
                total
                    .hist
                    .add(&stats.hist)
                    .context("merging latency histograms")?;
                total.msgs += stats.msgs;
                if let Some(e) = stats.error {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            Ok(None) => break,
            Err(_) => {
                errors += running.len();
                running.abort_all();
                first_error.get_or_insert_with(|| anyhow::anyhow!("connections did not stop"));
                break;
            }
        }
    }
    if let Some(e) = &first_error {
        eprintln!("herald-loadgen: {errors} connection error(s), first: {e:#}");
    }

    Ok(Report {
        msgs: total.msgs,
        p50_us: total.hist.value_at_quantile(0.50),
        p99_us: total.hist.value_at_quantile(0.99),
        errors,
        failed_all: errors >= conns,
    })
}
