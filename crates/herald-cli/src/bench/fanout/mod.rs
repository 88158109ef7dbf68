//! `herald bench fanout`: M subscribers on a `herald serve` hub (protocol mode), one
//! publisher at a set rate or as fast as possible; deliveries per second, publish-to-receive
//! latency and losses by offset.
//!
//! The publisher puts its send time (microseconds since the Unix epoch) at the front of each
//! publication's data, a JSON string of exactly `--size` bytes; subscribers read it, and the
//! offset, with a byte scan instead of a JSON parse, so the generator stays cheap per
//! delivery. Subscribers can be spread over several processes (`--processes`), each under the
//! open-file limit. The server must allow the publish rate (`herald serve --publish-rate 0`).
//!
//! With `--plain`, the same against any plain WebSocket broadcast server ([`plain`]).

mod children;
mod plain;
mod publisher;
mod sse;
mod subscribers;

use super::report::{Latency, Report};
use super::system::CpuSample;
use super::{Common, positive_secs};
use std::time::Instant;
use subscribers::{Group, Tally};

/// Options of `herald bench fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Subscriber connections, in all.
    #[arg(short, long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    subscribers: u64,
    /// Channels the subscribers spread over (round robin); the publisher cycles through them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    channels: u64,
    /// Publications per second; 0 publishes as fast as the server acknowledges (at most 256
    /// unacknowledged).
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Size of each publication's data in bytes (a JSON string, at least 18).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(18..))]
    size: u64,
    /// Seconds of publishing.
    #[arg(short, long, value_name = "SECS", default_value = "10", value_parser = positive_secs)]
    duration: std::time::Duration,
    /// Processes the subscribers are spread over (each needs an open file per connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    processes: u64,
    /// How subscribers receive: `websocket` (herald.v1) or `sse` (`GET /sse`, an event
    /// stream per subscriber). The publisher always uses a WebSocket.
    #[arg(long, default_value = "websocket", value_parser = ["websocket", "sse"])]
    transport: String,
    /// Plain WebSocket broadcast: subscribers and the publisher open the one URL, every
    /// binary message carries a sequence number and its send time; works against any server
    /// that relays each message to every other connection (`herald serve` plain mode too).
    #[arg(long)]
    plain: bool,
    /// More nodes of the same cluster: subscribers spread round robin over the URL and these
    /// (the publisher stays on the URL).
    #[arg(long, value_name = "URL")]
    also: Vec<String>,
    /// A subscriber whose connection is lost (its node stopped) reconnects to the next node and
    /// resubscribes with `recover` from its last offset; reports reconnects and the time from
    /// the loss to the recovering reply. A `recovered: false` counts its gap as lost.
    #[arg(long)]
    recover: bool,
    /// Local addresses subscriber connections are made from, one per subscriber process in
    /// turn (e.g. 127.0.0.2, 127.0.0.3, …): each process then has its own ephemeral ports.
    #[arg(long, value_name = "IP")]
    source: Vec<std::net::IpAddr>,
    /// Run as one of the subscriber processes of a parent `herald bench fanout`.
    #[arg(long, hide = true)]
    subscriber_process: bool,
    /// The index of this process's first subscriber (subscriber processes only).
    #[arg(long, hide = true, default_value_t = 0)]
    first: u64,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.plain {
        return plain::run(args).await;
    }
    if args.subscriber_process {
        children::serve_parent(args).await?;
        // The parent prints the report; this process has said everything on stdout.
        std::process::exit(0);
    }
    let progress = super::progress::Progress::new(args.subscribers, "subscribers");
    let mut local = None;
    let mut remote = None;
    if args.processes > 1 {
        remote = Some(children::Children::spawn(args).await?);
    } else {
        let group = Group::start(args, 0, args.subscribers)?;
        group.ready(args.common.timeout * 4).await?;
        local = Some(group);
    }
    progress.restart(args.rate * args.duration.as_secs().max(1), "publications");
    let cpu_before = CpuSample::take(args.common.server_pid);
    let started = Instant::now();
    let published = publisher::run(args, &progress).await?;
    let mut tally = Tally::default();
    if let Some(group) = local {
        tally.merge(group.finish(&published.last_offsets).await);
    }
    if let Some(children) = remote {
        tally.merge(children.finish(&published.last_offsets).await?);
    }
    // Deliveries count until the last one arrived: a server that falls behind shows it.
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuSample::take(args.common.server_pid).since(&cpu_before);
    progress.finish();
    let mut report = Report::new("fanout", args.subscribers);
    report.duration_s = seconds;
    report.messages = tally.delivered;
    report.msgs_per_s = tally.delivered as f64 / seconds;
    report.bytes_per_s = tally.bytes as f64 / seconds;
    report.latency_us = Latency::of(&tally.latency);
    report.latency_label = "publish to receive";
    // A publication received twice is as wrong as one never received.
    report.errors = tally.errors + tally.duplicates;
    report.losses = tally.losses;
    report.generator_cpu_pct = cpu.generator_pct;
    report.server_cpu_pct = cpu.server_pct;
    report.add("published", "publications", published.acknowledged);
    report.add(
        "refused",
        "publishes refused (temporary)",
        published.refused,
    );
    report.add("channels", "channels", args.channels);
    let rate = if args.rate == 0 {
        serde_json::Value::from("max")
    } else {
        serde_json::Value::from(args.rate)
    };
    report.add("rate", "publish rate (/s)", rate);
    report.add("size", "data size (bytes)", args.size);
    report.add("processes", "subscriber processes", args.processes);
    report.add("duplicates", "duplicates", tally.duplicates);
    if args.recover {
        report.add("reconnects", "reconnects", tally.reconnects);
        report.add("not_recovered", "recovered: false", tally.not_recovered);
        report.add(
            "start_retries",
            "first connections retried",
            tally.start_retries,
        );
        let back = Latency::of(&tally.back);
        let ms = |us: u64| serde_json::Value::from(us as f64 / 1000.0);
        report.add("back_p50_ms", "back after a loss p50 (ms)", ms(back.p50));
        report.add("back_p99_ms", "back after a loss p99 (ms)", ms(back.p99));
        report.add("back_max_ms", "back after a loss max (ms)", ms(back.max));
    }
    Ok(report)
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
