//! Hostile pattern 5, subscribe churn: one connection subscribes to the busy channel with
//! `join_leave: true` and unsubscribes again, paced at `rate` cycles per second.
//!
//! Expected: the well-behaved subscribers that asked for join/leave pushes get no more than
//! the channel's `presence.join_leave_rate` budget allows, however fast the churn.

use crate::Target;
use crate::check::Section;
use crate::conn::{Conn, Gone, error_code};
use crate::run::{Run, due};
use crate::steady::{BUSY, Seen};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    rate: u32,
    cycles: u64,
    errors: BTreeMap<i64, u64>,
    closes: BTreeMap<u16, u32>,
    timeouts: u32,
    connections: u32,
}

pub(crate) async fn soak(target: Arc<Target>, run: Arc<Run>, rate: u32) -> Outcome {
    let mut out = Outcome {
        rate,
        ..Outcome::default()
    };
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
            out.cycles += 1;
            let subscribe = json!({"channel": BUSY, "join_leave": true});
            if let Err(gone) = step(&mut conn, &mut out, "subscribe", subscribe).await {
                out.record(gone);
                break;
            }
            if let Err(gone) =
                step(&mut conn, &mut out, "unsubscribe", json!({"channel": BUSY})).await
            {
                out.record(gone);
                break;
            }
        }
        run.sleep(Duration::from_millis(100)).await;
    }
    out
}

async fn step(
    conn: &mut Conn,
    out: &mut Outcome,
    method: &str,
    params: serde_json::Value,
) -> Result<(), Gone> {
    let reply = conn.call(method, params).await?;
    if let Some(code) = error_code(&reply) {
        *out.errors.entry(code).or_default() += 1;
    }
    Ok(())
}

impl Outcome {
    fn record(&mut self, gone: Gone) {
        match gone {
            Gone::Closed(code) => *self.closes.entry(code).or_default() += 1,
            Gone::Timeout => self.timeouts += 1,
        }
    }
}

/// Seconds in the window the join/leave bound is checked over: long enough that pushes a
/// loaded machine delivers a second late still fall inside it.
const WINDOW: usize = 5;

/// Expected: no subscriber that asked for join/leave pushes gets more than the channel's
/// budget allows. The budget is a token bucket of `join_leave_rate` per second with a burst
/// of the same size, so any `WINDOW` seconds carry at most `rate × (WINDOW + 1) + burst`
/// (one more second of refill for the window's unaligned edges). One second alone may
/// legitimately see the burst and a second's refill together, so single seconds are reported,
/// not judged.
pub(crate) fn judge(
    out: &Outcome,
    join_leave_rate: u32,
    subscribers: &[&Seen],
    load: (usize, usize),
) -> Section {
    let mut s = Section::new("hostile 5: subscribe churn (busy channel, join_leave: true)");
    s.line(format!(
        "{} subscribe/unsubscribe cycles at {}/s on {} connections: errors by code {:?}, closes by code {:?}, {} unanswered",
        out.cycles, out.rate, out.connections, out.errors, out.closes, out.timeouts
    ));
    let mut max = 0;
    let mut max_window = 0u32;
    let mut total = 0u64;
    for sub in subscribers {
        let seconds: Vec<u32> = sub
            .join_leave_per_second
            .iter()
            .take(load.1)
            .skip(load.0)
            .copied()
            .collect();
        for &n in &seconds {
            max = max.max(n);
            total += u64::from(n);
        }
        for window in seconds.windows(WINDOW.min(seconds.len()).max(1)) {
            max_window = max_window.max(window.iter().sum());
        }
    }
    let secs = load.1.saturating_sub(load.0).max(1) as f64;
    let mean = total as f64 / subscribers.len().max(1) as f64 / secs;
    s.line(format!(
        "join/leave pushes at the {} subscribers that asked for them: {mean:.0}/s each on average, \
         at most {max} in one second, at most {max_window} in {WINDOW} seconds",
        subscribers.len()
    ));
    let burst = join_leave_rate;
    let allowed = join_leave_rate * (WINDOW as u32 + 1) + burst;
    s.check(
        format!(
            "join/leave pushes limited to join_leave_rate ({join_leave_rate}/s, burst {burst}): \
             at most {allowed} in any {WINDOW} seconds"
        ),
        join_leave_rate == 0 || max_window <= allowed,
        format!("at most {max_window} in {WINDOW} seconds"),
    );
    s
}
