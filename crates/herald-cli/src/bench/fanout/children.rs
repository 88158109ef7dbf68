//! Subscribers spread over several processes: the parent runs `herald bench fanout
//! --subscriber-process` once per share and talks to each over its standard streams.
//!
//! A child prints `ready` once its subscribers are subscribed, waits for a line
//! `done O1 O2 …` (the last offset of each channel), drains, and prints one JSON line with
//! its counts and its latency histogram (HDR V2, base64).

use super::Args;
use super::subscribers::{Group, Tally};
use anyhow::{Context as _, bail};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

#[derive(Serialize, Deserialize)]
struct ChildTally {
    delivered: u64,
    bytes: u64,
    losses: u64,
    errors: u64,
    latency: String,
    duplicates: u64,
    reconnects: u64,
    not_recovered: u64,
    start_retries: u64,
    back: String,
}

/// The child side.
pub(super) async fn serve_parent(args: &Args) -> anyhow::Result<()> {
    let group = Group::start(args, args.first, args.subscribers)?;
    group.ready(args.common.timeout * 4).await?;
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let line = stdin.next_line().await?.context("parent went away")?;
    let targets = parse_done(&line)?;
    let tally = group.finish(&targets).await;
    let line = serde_json::to_string(&ChildTally {
        delivered: tally.delivered,
        bytes: tally.bytes,
        losses: tally.losses,
        errors: tally.errors,
        latency: encode(&tally.latency)?,
        duplicates: tally.duplicates,
        reconnects: tally.reconnects,
        not_recovered: tally.not_recovered,
        start_retries: tally.start_retries,
        back: encode(&tally.back)?,
    })?;
    stdout.write_all(format!("{line}\n").as_bytes()).await?;
    stdout.flush().await?;
    Ok(())
}

/// A histogram as HDR V2, base64.
fn encode(histogram: &hdrhistogram::Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A histogram from [`encode`].
fn decode(text: &str) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("histogram: {e:?}"))
}

fn parse_done(line: &str) -> anyhow::Result<Vec<u64>> {
    let mut words = line.split_whitespace();
    if words.next() != Some("done") {
        bail!("expected `done`, got {line:?}");
    }
    words
        .map(|w| w.parse().context("offset"))
        .collect::<anyhow::Result<_>>()
}

/// The parent side: the running children.
pub(super) struct Children {
    children: Vec<(Child, ChildStdin, Lines<BufReader<ChildStdout>>)>,
}

impl Children {
    /// Starts `--processes` children sharing `--subscribers`, and waits until each is ready.
    pub(super) async fn spawn(args: &Args) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the herald binary")?;
        let mut children = Vec::new();
        let mut first = 0;
        for p in 0..args.processes {
            let share = args.subscribers / args.processes
                + u64::from(p < args.subscribers % args.processes);
            let mut command = tokio::process::Command::new(&exe);
            command.args(["bench", "fanout", &args.common.url, "--subscriber-process"]);
            for url in &args.also {
                command.args(["--also", url]);
            }
            if args.recover {
                command.arg("--recover");
            }
            if !args.source.is_empty() {
                let turn = usize::try_from(p).unwrap_or(0) % args.source.len();
                command.args(["--source", &args.source[turn].to_string()]);
            }
            let mut child = command
                .args([
                    "--subscribers",
                    &share.to_string(),
                    "--first",
                    &first.to_string(),
                ])
                .args(["--channels", &args.channels.to_string()])
                .args(["--transport", &args.transport])
                .args(["--threads", &args.common.threads.to_string()])
                .args(["--timeout", &args.common.timeout.as_secs_f64().to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting a subscriber process")?;
            let stdin = child.stdin.take().context("child stdin")?;
            let stdout = child.stdout.take().context("child stdout")?;
            children.push((child, stdin, BufReader::new(stdout).lines()));
            first += share;
        }
        for (_, _, lines) in &mut children {
            match lines.next_line().await? {
                Some(line) if line == "ready" => {}
                other => bail!("a subscriber process failed to start: {other:?}"),
            }
        }
        Ok(Self { children })
    }

    /// Sends each child the channels' last offsets and collects their counts.
    pub(super) async fn finish(self, targets: &[u64]) -> anyhow::Result<Tally> {
        let done: Vec<String> = targets.iter().map(u64::to_string).collect();
        let line = format!("done {}\n", done.join(" "));
        let mut total = Tally::default();
        for (mut child, mut stdin, mut lines) in self.children {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await?;
            let report = lines
                .next_line()
                .await?
                .context("a subscriber process died")?;
            let tally: ChildTally = serde_json::from_str(&report)?;
            total.merge(Tally {
                delivered: tally.delivered,
                bytes: tally.bytes,
                losses: tally.losses,
                errors: tally.errors,
                latency: decode(&tally.latency)?,
                duplicates: tally.duplicates,
                reconnects: tally.reconnects,
                not_recovered: tally.not_recovered,
                start_retries: tally.start_retries,
                back: decode(&tally.back)?,
            });
            let _ = child.wait().await;
        }
        Ok(total)
    }
}
