//! Soak test of a running `herald serve`: well-behaved clients beside hostile ones, for a
//! fixed time, then a report with one section per client pattern and the server's RSS and
//! metrics. `scripts/soak [SECONDS]` builds the server, starts it with a config of small
//! bounds and runs this against it; see docs/performance.md, "Soak".
//!
//! ```sh
//! cargo run --release -p herald-cli --example soak -- \
//!     --addr 127.0.0.1:PORT --pid PID --config herald.toml --seconds 60 --max-rss-mib 256
//! ```
//!
//! `--config` is the file the server runs with: the limits the checks expect and the API
//! key come from it. Each hostile pattern is one module whose `judge` states what the server
//! should do to it. Exit status 0 when every check passed.
#![allow(clippy::print_stdout)]

mod check;
mod churn;
mod conn;
mod delivery;
mod flood;
mod http;
mod non_reader;
mod run;
mod server;
mod slow_body;
mod steady;
mod unique;

use clap::Parser;
use herald_hub::HubConfig;
use run::Run;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Parser)]
struct Args {
    /// The server's address.
    #[arg(long)]
    addr: SocketAddr,
    /// The server's process id (its RSS is read from /proc).
    #[arg(long)]
    pid: u32,
    /// The TOML file the server runs with.
    #[arg(long)]
    config: PathBuf,
    /// How long the load runs.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// The server's RSS must stay under this; past twice this the load stops early.
    #[arg(long)]
    max_rss_mib: u64,
    /// Well-behaved subscribers.
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    /// How many of them ask for join/leave pushes on the busy channel.
    #[arg(long, default_value_t = 10)]
    join_leave_subscribers: usize,
    /// Publications per second from the publisher.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Padding bytes in each publication to the busy channel.
    #[arg(long, default_value_t = 16384)]
    pad: usize,
    /// Commands per second from the unique-channel client.
    #[arg(long, default_value_t = 200)]
    unique_rate: u32,
    /// Subscribe/unsubscribe cycles per second from the churn client.
    #[arg(long, default_value_t = 200)]
    churn_rate: u32,
    /// Bytes of Pings one flood connection sends at most, MiB.
    #[arg(long, default_value_t = 32)]
    flood_budget_mib: u64,
    /// A non-reader must be cut off this many seconds after subscribing.
    #[arg(long, default_value_t = 20)]
    non_reader_bound: u64,
    /// The hostile patterns to run (all by default): flood, non-reader, unique, slow-body,
    /// churn. Running one alone shows what it costs the server.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flood,non-reader,unique,slow-body,churn"
    )]
    patterns: Vec<String>,
}

/// The server under test.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) key: String,
    pub(crate) config: HubConfig,
    /// When the soak started; join/leave pushes are counted per second from here.
    pub(crate) origin: Instant,
}

#[tokio::main]
async fn main() -> ExitCode {
    match soak(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn target(args: &Args) -> Result<Target, String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let config: HubConfig =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let key = config.api.key.clone().ok_or("the config needs api.key")?;
    Ok(Target {
        addr: args.addr,
        key,
        config,
        origin: Instant::now(),
    })
}

fn describe(args: &Args, c: &HubConfig) -> String {
    let (l, h) = (&c.limits, &c.history);
    format!(
        "soak: {} s against {} (pid {}): {} subscribers ({} with join/leave), {} publications/s \
         ({} B padding on the busy channel)\nsoak: bounds: write_timeout {:?}, queue_size {}, \
         command_rate {}/s burst {}, max_reply_size {}, request_timeout {:?}, history size {} ttl {:?} \
         max_channels {} max_bytes {}, join_leave_rate {}/s; server RSS bound {} MiB",
        args.seconds,
        args.addr,
        args.pid,
        args.subscribers,
        args.join_leave_subscribers,
        args.rate,
        args.pad,
        l.write_timeout,
        l.queue_size,
        l.command_rate,
        l.command_burst,
        l.max_reply_size,
        l.request_timeout,
        h.size,
        h.ttl,
        h.max_channels,
        h.max_bytes,
        c.presence.join_leave_rate,
        args.max_rss_mib
    )
}

/// What the hostile patterns saw; `None` for a pattern not run.
struct Hostile {
    flood: Option<Vec<flood::Cycle>>,
    non_reader: Option<Vec<non_reader::Cycle>>,
    unique: Option<unique::Outcome>,
    slow: Option<(Vec<slow_body::Attempt>, Vec<slow_body::Attempt>)>,
    churn: Option<churn::Outcome>,
}

/// Runs the publisher and the chosen hostile patterns until the run ends.
async fn load(
    args: &Args,
    t: &Arc<Target>,
    r: &Arc<Run>,
) -> Result<(steady::Published, Hostile), String> {
    let on = |name: &str| args.patterns.iter().any(|p| p == name);
    let publisher = tokio::spawn(steady::publisher(t.clone(), r.clone(), args.rate, args.pad));
    let flood = on("flood").then(|| {
        tokio::spawn(flood::soak(
            t.clone(),
            r.clone(),
            args.flood_budget_mib << 20,
        ))
    });
    let non_reader = on("non-reader").then(|| tokio::spawn(non_reader::soak(t.clone(), r.clone())));
    let unique =
        on("unique").then(|| tokio::spawn(unique::soak(t.clone(), r.clone(), args.unique_rate)));
    let slow = on("slow-body").then(|| tokio::spawn(slow_body::soak(t.clone(), r.clone())));
    let churn =
        on("churn").then(|| tokio::spawn(churn::soak(t.clone(), r.clone(), args.churn_rate)));
    let end = r.deadline;
    let published = join(publisher, end).await?;
    let hostile = Hostile {
        flood: join_opt(flood, end).await?,
        non_reader: join_opt(non_reader, end).await?,
        unique: join_opt(unique, end).await?,
        slow: join_opt(slow, end).await?,
        churn: join_opt(churn, end).await?,
    };
    Ok((published, hostile))
}

/// The hostile patterns, by the names `--patterns` takes.
const PATTERNS: [&str; 5] = ["flood", "non-reader", "unique", "slow-body", "churn"];

async fn soak(args: Args) -> Result<bool, String> {
    if let Some(p) = args
        .patterns
        .iter()
        .find(|p| !PATTERNS.contains(&p.as_str()))
    {
        return Err(format!(
            "unknown pattern {p:?}; the patterns are {PATTERNS:?}"
        ));
    }
    let target = Arc::new(target(&args)?);
    println!("{}", describe(&args, &target.config));
    let bound_kib = args.max_rss_mib * 1024;
    let (guard, abort) = watch::channel(false);
    let (stop_tx, stop) = watch::channel(false);
    let sampler = tokio::spawn(server::sample_rss(
        args.pid,
        bound_kib,
        target.origin,
        guard,
        stop.clone(),
    ));
    let subscribers = steady::start_subscribers(
        &target,
        args.subscribers,
        args.join_leave_subscribers,
        &stop,
    )
    .await?;
    let load_from = target.origin.elapsed().as_secs_f64();
    let run = Run::new(Duration::from_secs(args.seconds), abort);
    let progress = tokio::spawn(progress(run.clone(), args.seconds, args.pid));
    let (published, hostile) = load(&args, &target, &run).await?;
    progress.abort();
    let load_to = target.origin.elapsed().as_secs_f64();
    eprintln!(
        "soak: load over after {:.1} s; reading the final offsets",
        load_to - load_from
    );
    if run.aborted() {
        println!("soak: the load was stopped early: the server's RSS passed twice the bound");
    }

    let mut http = http::Http::new(target.addr, &target.key);
    let finals = delivery::finals(&mut http).await?;
    let shared: Vec<_> = subscribers.iter().map(|(s, _)| s.clone()).collect();
    let caught_up = delivery::catch_up(&shared, &finals, Duration::from_secs(15)).await;
    eprintln!(
        "soak: subscribers caught up: {caught_up}, at {:.1} s",
        target.origin.elapsed().as_secs_f64()
    );
    let metrics = server::Metrics::parse(&http.request("GET", "/metrics", "").await?.body);
    stop_tx.send_replace(true);
    let mut seen = Vec::new();
    for (shared, task) in subscribers {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        seen.push(std::mem::take(&mut *steady::lock(&shared)));
    }
    let rss = join(sampler, Instant::now()).await?;
    eprintln!(
        "soak: subscribers stopped at {:.1} s",
        target.origin.elapsed().as_secs_f64()
    );

    let mut sections = vec![delivery::judge(&seen, &finals, &published, caught_up)];
    judge_hostile(
        &mut sections,
        &args,
        &target,
        &hostile,
        &seen,
        &metrics,
        (load_from, load_to),
    );
    sections.push(server::judge_rss(&rss, bound_kib, (load_from, load_to)));
    sections.push(server::report_metrics(&metrics));
    let (report, ok) = check::render(&sections);
    print!("{report}");
    Ok(ok)
}

/// One section per hostile pattern that ran, each judged by its own module.
fn judge_hostile(
    sections: &mut Vec<check::Section>,
    args: &Args,
    target: &Target,
    hostile: &Hostile,
    seen: &[steady::Seen],
    metrics: &server::Metrics,
    load: (f64, f64),
) {
    let limits = &target.config.limits;
    if let Some(cycles) = &hostile.flood {
        sections.push(flood::judge(
            cycles,
            limits.write_timeout,
            args.flood_budget_mib << 20,
            metrics,
        ));
    }
    if let Some(cycles) = &hostile.non_reader {
        let bound = Duration::from_secs(args.non_reader_bound);
        let run = Duration::from_secs(args.seconds);
        sections.push(non_reader::judge(cycles, bound, run, metrics));
    }
    if let Some(out) = &hostile.unique {
        // The well-behaved channels, the slow-body channel and the canaries.
        let published = 1 + steady::QUIET.len() as u64 + 1 + out.canaries();
        sections.push(unique::judge(out, target, published, metrics));
    }
    if let Some((keyed, unkeyed)) = &hostile.slow {
        sections.push(slow_body::judge(keyed, unkeyed, limits.request_timeout));
    }
    if let Some(out) = &hostile.churn {
        let join_leave: Vec<&steady::Seen> = seen.iter().filter(|s| s.join_leave).collect();
        let seconds = (load.0.ceil() as usize, load.1.floor() as usize);
        sections.push(churn::judge(
            out,
            target.config.presence.join_leave_rate,
            &join_leave,
            seconds,
        ));
    }
}

/// Awaits a task; every one ends by itself at the run's deadline, or soon after.
async fn join<T>(task: tokio::task::JoinHandle<T>, deadline: Instant) -> Result<T, String> {
    match tokio::time::timeout_at(deadline + Duration::from_secs(60), task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("a client task failed: {e}")),
        Err(_) => Err("a client task did not stop within 60 s of the deadline".into()),
    }
}

async fn join_opt<T>(
    task: Option<tokio::task::JoinHandle<T>>,
    deadline: Instant,
) -> Result<Option<T>, String> {
    match task {
        Some(task) => join(task, deadline).await.map(Some),
        None => Ok(None),
    }
}

/// A line every 10 s on stderr, so a long run shows it is alive.
async fn progress(run: Arc<Run>, seconds: u64, pid: u32) {
    while run.sleep(Duration::from_secs(10)).await {
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = rss
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: ?");
        eprintln!(
            "soak: {:.0} s of {seconds} s, server {}",
            run.at(),
            rss.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
