//! Hostile pattern 1, ping flood: a raw TCP WebSocket client (plain mode, so the idle timer
//! does not apply) that writes masked Ping frames as fast as it can and never reads.
//!
//! Expected once `limits.write_timeout` lands: the server stops reading from the client while
//! its Pongs cannot leave, so the client's writes stall; `write_timeout` after its writes
//! stopped making progress the server drops it (4004, in `herald_disconnects_total`), which
//! the client sees as a reset socket. It reconnects and repeats.
//!
//! Each connection sends at most `budget` bytes: a server that keeps reading (queuing a Pong
//! for every Ping) would grow without bound otherwise, so the budget ends such a cycle and
//! the report says so.

use crate::Target;
use crate::check::Section;
use crate::conn::{STEP, tcp};
use crate::run::Run;
use crate::server::Metrics;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A client's writes that make no progress this long count as stalled.
const STALL: Duration = Duration::from_secs(1);
/// Ping payload: the largest a control frame may carry (RFC 6455 §5.5).
const PAYLOAD: usize = 125;

/// How a flood connection ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    /// The server dropped it: a write failed.
    Reset(String),
    /// It sent its whole budget without the server pushing back.
    Budget,
    /// The run ended first.
    RunOver,
    /// The handshake failed.
    Refused(String),
}

#[derive(Debug)]
pub(crate) struct Cycle {
    sent: u64,
    /// Seconds from the 101 to the last write before the first stall.
    stalled_at: Option<f64>,
    /// Seconds since the last write that made progress, when the cycle ended.
    idle_at_end: f64,
    end: End,
}

/// `n` masked Ping frames, each with its own masking key.
fn frames(n: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    for i in 0..n {
        let key = i.wrapping_mul(0x9E37_79B9).to_be_bytes();
        buf.extend_from_slice(&[0x89, 0x80 | PAYLOAD as u8]);
        buf.extend_from_slice(&key);
        buf.extend((0..PAYLOAD).map(|j| b'p' ^ key[j % 4]));
    }
    buf
}

/// Opens a plain-mode WebSocket and reads nothing after the 101's head.
async fn handshake(target: &Target) -> std::io::Result<TcpStream> {
    // A small receive buffer: the Pongs back up into the server sooner.
    let mut stream = tcp(target.addr, Some(4096)).await?;
    let request = format!(
        "GET /chat?groupId=soak-flood HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: c29hay1mbG9vZC1rZXkhIQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        target.addr
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        let read = tokio::time::timeout(STEP, stream.read(&mut byte)).await;
        match read.map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            _ => head.push(byte[0]),
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();
        return Err(std::io::Error::other(format!("refused: {line}")));
    }
    Ok(stream)
}

/// Floods connection after connection until the run ends.
pub(crate) async fn soak(
    target: std::sync::Arc<Target>,
    run: std::sync::Arc<Run>,
    budget: u64,
) -> Vec<Cycle> {
    let frames = frames(512);
    let mut cycles = Vec::new();
    while !run.is_over() {
        let cycle = match run.until(handshake(&target)).await {
            None => break,
            Some(Ok(mut stream)) => flood(&mut stream, &frames, budget, &run).await,
            Some(Err(e)) => {
                run.sleep(Duration::from_secs(1)).await;
                Cycle {
                    sent: 0,
                    stalled_at: None,
                    idle_at_end: 0.0,
                    end: End::Refused(e.to_string()),
                }
            }
        };
        cycles.push(cycle);
    }
    cycles
}

async fn flood(stream: &mut TcpStream, frames: &[u8], budget: u64, run: &Run) -> Cycle {
    let start = Instant::now();
    let mut last_progress = start;
    let (mut sent, mut pos) = (0u64, 0usize);
    let mut stalled_at = None;
    let end = loop {
        if sent >= budget {
            break End::Budget;
        }
        if run.is_over() {
            break End::RunOver;
        }
        match tokio::time::timeout(Duration::from_millis(250), stream.write(&frames[pos..])).await {
            Ok(Ok(0)) => break End::Reset("write returned 0".into()),
            Ok(Ok(n)) => {
                sent += n as u64;
                pos = (pos + n) % frames.len();
                last_progress = Instant::now();
            }
            Ok(Err(e)) => break End::Reset(format!("{:?}", e.kind())),
            Err(_) => {
                if stalled_at.is_none() && last_progress.elapsed() >= STALL {
                    stalled_at = Some((last_progress - start).as_secs_f64());
                }
            }
        }
    };
    Cycle {
        sent,
        stalled_at,
        idle_at_end: last_progress.elapsed().as_secs_f64(),
        end,
    }
}

fn range(values: impl Iterator<Item = f64>, unit: &str) -> String {
    let v: Vec<f64> = values.collect();
    match (
        v.iter().copied().reduce(f64::min),
        v.iter().copied().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) => format!("{lo:.1}–{hi:.1} {unit}"),
        _ => "none".into(),
    }
}

/// Expected: the server ends every flood connection, with 1008 once its Pings have spent the
/// command budget, or by the write timeout (4004) when its writes stall.
pub(crate) fn judge(
    cycles: &[Cycle],
    _write_timeout: Duration,
    budget: u64,
    metrics: &Metrics,
) -> Section {
    let mut s = Section::new("hostile 1: ping flood (raw client, masked Pings, never reads)");
    let count = |f: &dyn Fn(&Cycle) -> bool| cycles.iter().filter(|c| f(c)).count();
    let resets = count(&|c| matches!(c.end, End::Reset(_)));
    let budgets = count(&|c| c.end == End::Budget);
    let refused: Vec<_> = cycles
        .iter()
        .filter_map(|c| match &c.end {
            End::Refused(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    s.line(format!(
        "{} connections: {resets} dropped by the server, {budgets} sent their {} MiB budget unhindered, \
         {} open at the end, {} refused {refused:?}",
        cycles.len(),
        budget >> 20,
        count(&|c| c.end == End::RunOver),
        refused.len()
    ));
    let mib = |c: &Cycle| c.sent as f64 / f64::from(1 << 20);
    s.line(format!(
        "sent per connection: {}",
        range(cycles.iter().map(mib), "MiB")
    ));
    let stalled: Vec<&Cycle> = cycles.iter().filter(|c| c.stalled_at.is_some()).collect();
    s.line(format!(
        "writes stalled on {} connections, after {}; stall to drop: {}",
        stalled.len(),
        range(stalled.iter().filter_map(|c| c.stalled_at), "s"),
        range(
            stalled
                .iter()
                .filter(|c| matches!(c.end, End::Reset(_)))
                .map(|c| c.idle_at_end),
            "s"
        )
    ));
    let errors: Vec<_> = cycles
        .iter()
        .filter_map(|c| match &c.end {
            End::Reset(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    if !errors.is_empty() {
        s.line(format!("client-side errors at the drop: {errors:?}"));
    }
    // Each Ping costs a unit of the command budget, so a flood is closed with 1008 once it
    // has been refused a whole burst; a flood under a budget that allows it meets the write
    // timeout instead (the server stops reading while the Pongs it owes are queued).
    let ended = metrics
        .by("herald_limit_hits_total", "limit")
        .get("ping")
        .copied()
        .unwrap_or(0.0)
        + metrics.disconnects(4004);
    let finished = cycles.len() - count(&|c| c.end == End::RunOver);
    s.check(
        "the server ends every flood connection: 1008 at the command budget or 4004 at the write timeout",
        ended >= finished as f64 && finished > 0,
        format!("{ended} ended by the server (limit_hits{{limit=\"ping\"}} + 4004), {finished} connections finished"),
    );
    s
}
