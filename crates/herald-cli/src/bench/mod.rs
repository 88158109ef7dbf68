//! `herald bench`: load generation against a WebSocket server. One file per mode; what modes
//! share is here and in [`report`] (the table and the JSON line), [`progress`] (the bar),
//! [`system`] (CPU and memory of both processes, the open-file limit), [`frame`] (pre-built
//! frames, header-only parsing) and [`handshake`] (raw connections).

mod connections;
mod echo;
mod exchange;
mod fanout;
mod frame;
mod handshake;
mod progress;
mod report;
mod system;

use std::process::ExitCode;
use std::time::Duration;

/// Options of `herald bench`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Exit status: 0 when the run ended without connection errors or lost messages, 1 otherwise
(the report is printed either way), 2 for invalid options.

--json prints one line: mode, connections, duration_s, messages, msgs_per_s, bytes_per_s,
latency_us {p50, p99, p999, max}, errors, losses, generator_cpu_pct and server_cpu_pct (percent
of one core; null without --server-pid), then the mode's own fields (echo: size, in_flight,
sent, echoed; connections: opened, failed, dropped, open_rate_per_s, rss_before_kib,
rss_after_kib, rss_per_conn_bytes).

Run the server on its own core for figures that measure it rather than the machine, e.g.
  WORKERS=1 taskset -c 0 target/release/examples/echo-server 127.0.0.1:9001 &
  taskset -c 1 herald bench echo ws://127.0.0.1:9001/ --server-pid $!")]
pub(crate) struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Closed-loop echo: each connection keeps N messages in flight and sends one more per
    /// echo; reports throughput, round-trip latency and both processes' CPU.
    Echo(echo::Args),
    /// Opens N idle connections at a steady rate, holds them, and reports handshake latency
    /// and the server's memory per connection.
    Connections(connections::Args),
    /// Subscribers on a `herald serve` hub and one publisher at a set rate: deliveries per
    /// second, publish-to-receive latency and losses by offset. With `--plain`, against any
    /// plain WebSocket broadcast server, by sequence number.
    Fanout(fanout::Args),
}

/// Options every mode takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// The server's URL (`ws://`; `connections` also takes `wss://`).
    pub(crate) url: String,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: u16,
    /// The server's process id: its CPU time (and memory) are read from /proc.
    #[arg(long, value_name = "PID")]
    pub(crate) server_pid: Option<u32>,
    /// Print exactly one JSON line instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Limit for each connection's handshake, and for the drain and close at the end.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    pub(crate) timeout: Duration,
}

/// Parses a positive number of seconds.
pub(crate) fn positive_secs(value: &str) -> Result<Duration, String> {
    secs(value).and_then(|d| {
        if d.is_zero() {
            Err("must be more than 0".to_owned())
        } else {
            Ok(d)
        }
    })
}

/// Parses a number of seconds, 0 or more.
pub(crate) fn secs(value: &str) -> Result<Duration, String> {
    let secs: f64 = value.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| "expected a number of seconds, 0 or more".into())
}

pub(crate) fn main(args: Args) -> ExitCode {
    let common = match &args.mode {
        Mode::Echo(a) => &a.common,
        Mode::Connections(a) => &a.common,
        Mode::Fanout(a) => &a.common,
    };
    let json = common.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(common.threads))
        .enable_all()
        .build();
    let result = runtime.map_err(anyhow::Error::from).and_then(|runtime| {
        runtime.block_on(async {
            match &args.mode {
                Mode::Echo(a) => echo::run(a).await,
                Mode::Connections(a) => connections::run(a).await,
                Mode::Fanout(a) => fanout::run(a).await,
            }
        })
    });
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("herald bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = report.print(json) {
        eprintln!("herald bench: writing the report: {e}");
        return ExitCode::FAILURE;
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
