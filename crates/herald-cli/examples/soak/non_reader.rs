//! Hostile pattern 2, non-reader: a protocol-mode client subscribed to the busy channel that
//! never reads, with a small socket receive buffer.
//!
//! Expected: the server cuts it off, closing it with 4001 (its outgoing queue overflowed) or
//! dropping it at `limits.write_timeout` (4004). The client cannot read its Close frame, so
//! it watches its own entry in the busy channel's presence (`GET /api/presence`) vanish;
//! then it reads whatever reached it, reconnects and repeats.

use crate::Target;
use crate::check::Section;
use crate::conn::{Conn, Next};
use crate::http::Http;
use crate::run::Run;
use crate::server::Metrics;
use crate::steady::BUSY;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The socket receive buffer asked for (the kernel doubles it).
const RECV_BUFFER: u32 = 4096;

#[derive(Debug)]
pub(crate) struct Cycle {
    /// Seconds from its subscribe to its presence vanishing; `None` if it never did.
    cut_after: Option<f64>,
    held: f64,
    /// The close code it read after the cut (1006: the connection ended without one).
    code_seen: Option<u16>,
    drained: u32,
    failed: Option<String>,
}

/// Whether `client` is in the busy channel's presence; `None` when the API did not answer.
async fn present(http: &mut Http, client: &str) -> Option<bool> {
    let r = http
        .request("GET", &format!("/api/presence/{BUSY}"), "")
        .await
        .ok()?;
    let v: Value = serde_json::from_str(&r.body).ok()?;
    let clients = v["clients"].as_array()?;
    Some(clients.iter().any(|c| c["client"] == client))
}

pub(crate) async fn soak(target: Arc<Target>, run: Arc<Run>) -> Vec<Cycle> {
    let mut http = Http::new(target.addr, &target.key);
    let mut cycles = Vec::new();
    // A cycle that could not last a second would only churn connections.
    while run.deadline.saturating_duration_since(Instant::now()) > Duration::from_secs(1) {
        // Bounded by itself: each step has a timeout and the wait ends at the deadline.
        let cycle = cycle(&target, &run, &mut http).await;
        if cycle.failed.is_some() {
            run.sleep(Duration::from_secs(1)).await;
        }
        cycles.push(cycle);
    }
    cycles
}

async fn cycle(target: &Target, run: &Run, http: &mut Http) -> Cycle {
    let mut c = Cycle {
        cut_after: None,
        held: 0.0,
        code_seen: None,
        drained: 0,
        failed: None,
    };
    let mut conn = match Conn::open(target.addr, Some(RECV_BUFFER)).await {
        Ok(conn) => conn,
        Err(e) => {
            c.failed = Some(e);
            return c;
        }
    };
    match conn.call("subscribe", json!({"channel": BUSY})).await {
        Ok(reply) if reply.get("result").is_some() => {}
        other => {
            c.failed = Some(format!("subscribe: {other:?}"));
            return c;
        }
    }
    let start = Instant::now();
    // From here on it reads nothing until the server has let go of it.
    while Instant::now() + Duration::from_millis(250) < run.deadline && !run.aborted() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if present(http, &conn.client).await == Some(false) {
            c.cut_after = Some(start.elapsed().as_secs_f64());
            break;
        }
    }
    c.held = start.elapsed().as_secs_f64();
    if c.cut_after.is_none() {
        conn.close().await;
        return c;
    }
    let drain_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < drain_until {
        match conn.next(Duration::from_secs(2)).await {
            Next::Message(_) => c.drained += 1,
            Next::Ended(code) => {
                c.code_seen = Some(code);
                break;
            }
            Next::Quiet => break,
        }
    }
    c
}

/// Expected: every non-reader is cut off within `bound` of subscribing (so at least one is,
/// in a run longer than that), and the server counts it as 4001 or 4004. Holds today: a
/// full queue closes it with 4001.
pub(crate) fn judge(
    cycles: &[Cycle],
    bound: Duration,
    run: Duration,
    metrics: &Metrics,
) -> Section {
    let mut s = Section::new("hostile 2: non-reader (subscribed to the busy channel, never reads)");
    let cut: Vec<&Cycle> = cycles.iter().filter(|c| c.cut_after.is_some()).collect();
    let times: Vec<String> = cut
        .iter()
        .filter_map(|c| c.cut_after)
        .map(|t| format!("{t:.1}"))
        .collect();
    let codes: Vec<String> = cut
        .iter()
        .map(|c| c.code_seen.map_or("none".into(), |c| c.to_string()))
        .collect();
    let failed: Vec<&str> = cycles.iter().filter_map(|c| c.failed.as_deref()).collect();
    s.line(format!(
        "{} connections: {} cut off by the server, {} still open at the end, {} failed to start {failed:?}",
        cycles.len(),
        cut.len(),
        cycles.iter().filter(|c| c.cut_after.is_none() && c.failed.is_none()).count(),
        failed.len()
    ));
    s.line(format!(
        "seconds from subscribe to cut: [{}]",
        times.join(", ")
    ));
    s.line(format!(
        "after the cut it read {} messages in all, then close codes [{}] (1006: no Close frame reached it)",
        cut.iter().map(|c| c.drained).sum::<u32>(),
        codes.join(", ")
    ));
    let late = cycles
        .iter()
        .filter(|c| c.cut_after.unwrap_or(c.held) > bound.as_secs_f64())
        .count();
    s.check(
        format!("cut off within {:.0} s of subscribing", bound.as_secs_f64()),
        late == 0 && (!cut.is_empty() || run <= bound + Duration::from_secs(1)),
        format!("{} cut, {late} held longer", cut.len()),
    );
    let counted = metrics.disconnects(4001) + metrics.disconnects(4004);
    s.check(
        "each cut counted as 4001 (slow consumer) or 4004 (write timeout)",
        counted >= cut.len() as f64,
        format!(
            "4001: {}, 4004: {}",
            metrics.disconnects(4001),
            metrics.disconnects(4004)
        ),
    );
    s
}
