//! Hostile pattern 3, unique channels: one connection sends `history`, then `subscribe` and
//! `unsubscribe`, each for a channel name never used before, paced at `rate` commands per
//! second. Beside it a canary publishes to a fresh channel every 5 s.
//!
//! Expected once the command budget lands: replies until the connection has spent
//! `limits.command_burst`, then error 108, then close 1008 if it keeps going; it reconnects
//! and continues. Reads create no channel state, so `herald_history_channels` counts only
//! the channels published to, and the canary's publishes keep succeeding (the reads never
//! use up `history.max_channels`).

use crate::Target;
use crate::check::Section;
use crate::conn::{Conn, Gone, error_code};
use crate::http::Http;
use crate::run::{Run, due};
use crate::server::Metrics;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    rate: u32,
    commands: u64,
    ok: u64,
    errors: BTreeMap<i64, u64>,
    closes: BTreeMap<u16, u32>,
    timeouts: u32,
    connections: u32,
    canary_ok: u32,
    canary_failed: BTreeMap<String, u32>,
}

pub(crate) async fn soak(target: Arc<Target>, run: Arc<Run>, rate: u32) -> Outcome {
    let canary = tokio::spawn(canary(target.clone(), run.clone()));
    let mut out = Outcome {
        rate,
        ..Outcome::default()
    };
    let mut name = 0u64;
    while !run.is_over() {
        let Some(Ok(mut conn)) = run.until(Conn::open(target.addr, None)).await else {
            run.sleep(Duration::from_millis(500)).await;
            continue;
        };
        out.connections += 1;
        let start = Instant::now();
        for k in 0.. {
            if !run.sleep_until(due(start, k, rate)).await {
                break;
            }
            let channel = format!("soak:unique:{}", name / 3);
            let (method, params) = match name % 3 {
                0 => ("history", json!({"channel": channel, "limit": 10})),
                1 => ("subscribe", json!({"channel": channel})),
                _ => ("unsubscribe", json!({"channel": channel})),
            };
            name += 1;
            out.commands += 1;
            match conn.call(method, params).await {
                Ok(reply) => match error_code(&reply) {
                    None => out.ok += 1,
                    Some(code) => *out.errors.entry(code).or_default() += 1,
                },
                Err(Gone::Closed(code)) => {
                    *out.closes.entry(code).or_default() += 1;
                    break;
                }
                Err(Gone::Timeout) => {
                    out.timeouts += 1;
                    break;
                }
            }
        }
        run.sleep(Duration::from_millis(100)).await;
    }
    if let Ok((ok, failed)) = canary.await {
        (out.canary_ok, out.canary_failed) = (ok, failed);
    }
    out
}

/// Publishes to a channel never used before every 5 s.
async fn canary(target: Arc<Target>, run: Arc<Run>) -> (u32, BTreeMap<String, u32>) {
    let mut http = Http::new(target.addr, &target.key);
    let (mut ok, mut failed) = (0, BTreeMap::new());
    for n in 0.. {
        if !run.sleep(Duration::from_secs(5)).await {
            break;
        }
        let body = format!(r#"{{"channel":"soak:canary:{n}","data":{n}}}"#);
        match http.request("POST", "/api/publish", &body).await {
            Ok(r) if r.status == 200 => ok += 1,
            Ok(r) => *failed.entry(format!("HTTP {}", r.status)).or_default() += 1,
            Err(e) => *failed.entry(e).or_default() += 1,
        }
    }
    (ok, failed)
}

/// Expected: answered or refused with 108, closed with 1008 past the budget, no channel
/// state from reads, and publishes to fresh channels still accepted.
pub(crate) fn judge(
    out: &Outcome,
    target: &Target,
    published_channels: u64,
    metrics: &Metrics,
) -> Section {
    let mut s =
        Section::new("hostile 3: unique channels (history, subscribe, unsubscribe on fresh names)");
    let limits = &target.config.limits;
    s.line(format!(
        "{} commands at {}/s on {} connections ({} fresh names): {} answered, errors by code {:?}, \
         closes by code {:?}, {} unanswered",
        out.commands,
        out.rate,
        out.connections,
        out.commands.div_ceil(3),
        out.ok,
        out.errors,
        out.closes,
        out.timeouts
    ));
    s.line(format!(
        "canary publishes to fresh channels: {} accepted, failed {:?}",
        out.canary_ok, out.canary_failed
    ));
    let channels = metrics.value("herald_history_channels");
    s.line(format!(
        "herald_history_channels at the end: {} ({published_channels} channels were published to)",
        channels.map_or("not exported".into(), |v| v.to_string())
    ));
    s.check(
        "every command answered",
        out.timeouts == 0,
        format!("{} unanswered", out.timeouts),
    );
    s.check(
        "publishes to fresh channels keep succeeding",
        out.canary_failed.is_empty(),
        format!("{} accepted, {:?} failed", out.canary_ok, out.canary_failed),
    );
    if out.rate > limits.command_rate && limits.command_rate > 0 {
        let refused = out.errors.get(&108).copied().unwrap_or(0);
        s.check(
            format!(
                "over the budget ({}/s > {}/s): error 108",
                out.rate, limits.command_rate
            ),
            refused > 0,
            format!("{refused} refused with 108"),
        );
        // Paced at a steady rate above the budget, every other command is allowed, so the
        // refusals never run a whole burst in a row: no 1008 is expected here (the unit tests
        // and tests/hostile.rs cover the escalation).
    }
    let v = channels.unwrap_or(0.0);
    s.check(
        format!(
            "herald_history_channels counts only channels published to (at most {published_channels}; they expire after history.ttl)"
        ),
        v <= published_channels as f64,
        format!("{v}"),
    );
    s
}

impl Outcome {
    /// Fresh channels the canary published to.
    pub(crate) fn canaries(&self) -> u64 {
        u64::from(self.canary_ok)
            + self
                .canary_failed
                .values()
                .map(|&n| u64::from(n))
                .sum::<u64>()
    }
}
