//! Hostile pattern 5, subscribe churn: one connection subscribes to the busy channel with
//! `join_leave: true` and unsubscribes again, paced at `rate` cycles per second.
//!
//! Expected once `presence.join_leave_rate` lands: the well-behaved subscribers that asked
//! for join/leave pushes get at most about that many per second, however fast the churn.

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

/// Expected: no subscriber that asked for join/leave pushes gets more than
/// `join_leave_rate` + a little in any one second.
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
    let mut total = 0u64;
    for sub in subscribers {
        let seconds = sub.join_leave_per_second.iter().take(load.1).skip(load.0);
        for &n in seconds {
            max = max.max(n);
            total += u64::from(n);
        }
    }
    let secs = load.1.saturating_sub(load.0).max(1) as f64;
    let mean = total as f64 / subscribers.len().max(1) as f64 / secs;
    s.line(format!(
        "join/leave pushes at the {} subscribers that asked for them: {mean:.0}/s each on average, \
         at most {max} in one second",
        subscribers.len()
    ));
    let allowed = join_leave_rate + (join_leave_rate / 2).max(5);
    s.check(
        format!("join/leave pushes limited to about join_leave_rate ({join_leave_rate}/s; at most {allowed} in a second)"),
        join_leave_rate == 0 || max <= allowed,
        format!("at most {max} in a second"),
    );
    s
}
