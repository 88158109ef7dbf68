//! `herald bench fanout --plain`: the same fan-out against any plain WebSocket broadcast server
//! (every message from one client goes to every other client on the URL), so that Herald's hub
//! and other servers are measured by one generator.
//!
//! Every connection, the publisher's too, opens the same URL. Each binary message carries, in
//! its first 16 bytes, a sequence number and the send time (microseconds since the Unix epoch,
//! both big-endian), padded to `--size`. Before measuring, the publisher sends probes (sequence
//! `u64::MAX`) until every subscriber got one, so a server that joins a connection to its room
//! after the handshake loses nothing to the start. Probing starts only once every subscriber
//! finished its handshake: probes fanned out to thousands while the rest still connect keep a
//! one-threaded server from accepting, and connections dropped from its full accept queue
//! would never reach the room. Each subscriber counts losses, duplicates and
//! gaps by sequence; each publication's "last subscriber" latency is the longest of its
//! deliveries.

use super::Args;
use crate::bench::progress::Progress;
use crate::bench::report::{Latency, Report, histogram, micros};
use crate::bench::system::{self, CpuSample};
use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use herald::{ClientBuilder, CloseCode, Config, MaybeTlsStream, Message};

type WebSocket = herald::WebSocket<MaybeTlsStream>;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The sequence number of a probe, which is not counted.
const PROBE: u64 = u64::MAX;
/// Handshakes in progress at once.
const CONCURRENT_HANDSHAKES: usize = 256;
/// Latency shards: subscribers record into one of these, picked by their index.
const SHARDS: usize = 16;
/// Time between probes while waiting for every subscriber to be in the room.
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// Microseconds since the Unix epoch.
fn now_us() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_micros()).unwrap_or(u64::MAX)
}

/// One publication's payload: `seq`, the send time, then `x` up to `size` bytes.
fn payload(seq: u64, size: usize) -> Bytes {
    let mut data = Vec::with_capacity(size);
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(&now_us().to_be_bytes());
    data.resize(size.max(16), b'x');
    data.into()
}

/// Sequence number and send time of a payload, if it has them.
fn parse(data: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(data.get(..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

/// What one subscriber saw, by sequence number.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sequence {
    /// The next sequence number expected.
    next: u64,
    received: u64,
    /// Publications skipped over (counted when a later one arrives, or missing at the end).
    lost: u64,
    /// Places where the stream jumped forward.
    gaps: u64,
    /// Publications received again, or after a later one.
    duplicates: u64,
}

impl Sequence {
    fn record(&mut self, seq: u64) {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.gaps += 1;
            self.lost += seq - self.next;
            self.next = seq + 1;
        } else {
            self.duplicates += 1;
        }
    }

    /// Counts what never came of `published` publications.
    fn end(&mut self, published: u64) {
        if published > self.next {
            self.gaps += 1;
            self.lost += published - self.next;
            self.next = published;
        }
    }
}

struct Shared {
    /// Per publication, the longest publish-to-receive time so far (µs).
    slowest: Vec<AtomicU64>,
    latency: Vec<Mutex<Histogram<u64>>>,
    /// Subscribers that finished their handshake or failed it.
    connected: Semaphore,
    /// The first subscriber handshake that failed, if one did.
    failed: Mutex<Option<String>>,
    /// Subscribers that got a probe.
    ready: Semaphore,
    /// Subscribers that stopped counting (got the last publication, gave up waiting for it,
    /// or failed), before they close: the measured window ends when all have.
    finished: Semaphore,
    /// Publications sent, once the publisher is done.
    published: AtomicU64,
    totals: Mutex<(Sequence, u64)>,
}

pub(super) async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.rate == 0 {
        bail!("--plain needs a --rate above 0: a plain server sends no acknowledgement to pace by");
    }
    if args.processes > 1 || args.channels > 1 {
        bail!("--plain runs one room in one process: leave --processes and --channels at 1");
    }
    system::ensure_open_files(args.subscribers + 1)?;
    let count = args.rate * args.duration.as_secs_f64().ceil() as u64;
    let shared = Arc::new(Shared {
        slowest: (0..count).map(|_| AtomicU64::new(0)).collect(),
        latency: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        connected: Semaphore::new(0),
        failed: Mutex::new(None),
        ready: Semaphore::new(0),
        finished: Semaphore::new(0),
        published: AtomicU64::new(0),
        totals: Mutex::new((Sequence::default(), 0)),
    });
    let progress = Progress::new(args.subscribers, "subscribers");
    let (done_tx, done) = watch::channel(false);
    let handshakes = Arc::new(Semaphore::new(CONCURRENT_HANDSHAKES));
    let mut tasks = JoinSet::new();
    for i in 0..args.subscribers {
        let (url, timeout) = (args.common.url.clone(), args.common.timeout);
        let sub = subscribe(
            url,
            timeout,
            i,
            shared.clone(),
            handshakes.clone(),
            done.clone(),
        );
        tasks.spawn(sub);
    }
    let mut publisher = connect(&args.common.url, args.common.timeout).await?;
    wait_for_room(&mut publisher, args, &shared).await?;
    progress.restart(count, "publications");
    let cpu_before = CpuSample::take(args.common.server_pid);
    let started = Instant::now();
    publish(&mut publisher, args, count, &progress).await?;
    shared.published.store(count, Ordering::Release);
    let _ = done_tx.send(true);
    // The window ends once every subscriber counted its last publication: the closing
    // handshakes that follow are not deliveries, and would charge the server's teardown of
    // each connection to them.
    let all = u32::try_from(args.subscribers).context("too many subscribers")?;
    shared.finished.acquire_many(all).await?.forget();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuSample::take(args.common.server_pid).since(&cpu_before);
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        if !matches!(joined, Ok(Ok(()))) {
            errors += 1;
        }
    }
    progress.finish();
    let _ = publisher.close(CloseCode::NORMAL, "").await;
    Ok(report(args, &shared, errors, seconds, cpu))
}

fn report(args: &Args, shared: &Shared, errors: u64, seconds: f64, cpu: system::CpuUse) -> Report {
    let (seq, damaged) = *shared.totals.lock().unwrap_or_else(|e| e.into_inner());
    let mut latency = histogram();
    for shard in &shared.latency {
        let _ = latency.add(&*shard.lock().unwrap_or_else(|e| e.into_inner()));
    }
    let mut last = histogram();
    for slowest in &shared.slowest {
        let us = slowest.load(Ordering::Relaxed);
        if us > 0 {
            last.saturating_record(us);
        }
    }
    let mut report = Report::new("fanout-plain", args.subscribers);
    report.duration_s = seconds;
    report.messages = seq.received;
    report.msgs_per_s = seq.received as f64 / seconds;
    report.bytes_per_s = (seq.received * args.size) as f64 / seconds;
    report.latency_us = Latency::of(&latency);
    report.latency_label = "publish to receive";
    report.errors = errors;
    report.losses = seq.lost;
    report.generator_cpu_pct = cpu.generator_pct;
    report.server_cpu_pct = cpu.server_pct;
    let last = Latency::of(&last);
    report.add("last_p50_us", "last subscriber p50 µs", last.p50);
    report.add("last_p99_us", "last subscriber p99 µs", last.p99);
    let per_delivery = cpu.server_pct.filter(|_| seq.received > 0).map(|pct| {
        let us = pct / 100.0 * seconds * 1e6 / seq.received as f64;
        (us * 1000.0).round() / 1000.0
    });
    report.add(
        "server_us_per_delivery",
        "server µs per delivery",
        per_delivery,
    );
    report.add(
        "published",
        "publications",
        shared.published.load(Ordering::Relaxed),
    );
    report.add("duplicates", "duplicates", seq.duplicates);
    report.add("gaps", "gaps", seq.gaps);
    report.add("subscribers_with_loss", "subscribers with a loss", damaged);
    report.add("rate", "publish rate (/s)", args.rate);
    report.add("size", "data size (bytes)", args.size);
    report
}

async fn connect(url: &str, timeout: Duration) -> anyhow::Result<WebSocket> {
    let config = Config::default()
        .keepalive_interval(None)
        .keepalive_timeout(Duration::from_secs(60));
    let builder = ClientBuilder::new(url)?
        .config(config)
        .connect_timeout(timeout);
    Ok(builder.connect().await?.0)
}

/// Waits for every subscriber's handshake, then sends probes until every subscriber received
/// one.
async fn wait_for_room(ws: &mut WebSocket, args: &Args, shared: &Shared) -> anyhow::Result<()> {
    let count = u32::try_from(args.subscribers).context("too many subscribers")?;
    shared.connected.acquire_many(count).await?.forget();
    if let Some(error) = shared
        .failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        bail!("a subscriber could not connect: {error}");
    }
    let deadline = Instant::now() + args.common.timeout * 4;
    loop {
        ws.send(Message::binary(payload(PROBE, 16))).await?;
        let all = tokio::time::timeout(PROBE_EVERY, shared.ready.acquire_many(count));
        if let Ok(permits) = all.await {
            permits?.forget();
            return Ok(());
        }
        if Instant::now() > deadline {
            let missing = count as usize - shared.ready.available_permits();
            bail!("{missing} subscriber(s) never received a probe: not all are in the room");
        }
    }
}

async fn publish(
    ws: &mut WebSocket,
    args: &Args,
    count: u64,
    progress: &Progress,
) -> anyhow::Result<()> {
    let size = usize::try_from(args.size).context("--size")?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..count {
        tick.tick().await;
        ws.send(Message::binary(payload(seq, size))).await?;
        if seq % 64 == 63 {
            progress.set(seq + 1, String::new());
        }
    }
    Ok(())
}

/// One subscriber: connects, counts every publication, and after the end waits (up to the
/// timeout) for the last one.
async fn subscribe(
    url: String,
    timeout: Duration,
    index: u64,
    shared: Arc<Shared>,
    handshakes: Arc<Semaphore>,
    mut done: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let shard = usize::try_from(index).unwrap_or(0) % SHARDS;
    let permit = handshakes.acquire().await?;
    let connected = connect(&url, timeout).await;
    drop(permit);
    let mut ws = match connected {
        Ok(ws) => ws,
        Err(e) => {
            let mut failed = shared.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.get_or_insert_with(|| format!("{e:#}"));
            drop(failed);
            shared.connected.add_permits(1);
            return Err(e);
        }
    };
    shared.connected.add_permits(1);
    // Whichever way this subscriber stops counting, the window may close without it.
    let finished = Finished(&shared.finished);
    let mut seen = Sequence::default();
    let mut probed = false;
    let mut draining: Option<Instant> = None;
    loop {
        if let Some(since) = draining {
            let published = shared.published.load(Ordering::Acquire);
            if seen.next >= published || since.elapsed() > timeout {
                seen.end(published);
                break;
            }
        }
        let message = tokio::select! {
            message = ws.recv() => message,
            _ = done.changed(), if draining.is_none() => {
                draining = Some(Instant::now());
                continue;
            }
            () = tokio::time::sleep(PROBE_EVERY), if draining.is_some() => continue,
        };
        let Some(message) = message else {
            bail!("server closed the connection");
        };
        let Message::Binary(data) = message? else {
            continue;
        };
        let Some((seq, sent)) = parse(&data) else {
            continue;
        };
        if seq == PROBE {
            if !probed {
                probed = true;
                shared.ready.add_permits(1);
            }
            continue;
        }
        seen.record(seq);
        let took = micros(Duration::from_micros(now_us().saturating_sub(sent)));
        if let Some(slowest) = usize::try_from(seq)
            .ok()
            .and_then(|s| shared.slowest.get(s))
        {
            slowest.fetch_max(took, Ordering::Relaxed);
        }
        let _ = shared.latency[shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(took);
    }
    add(&shared, &seen);
    drop(finished);
    let _ = ws.close(CloseCode::NORMAL, "").await;
    Ok(())
}

/// Adds a permit to `finished` when dropped: on every way out of a subscriber's counting loop.
struct Finished<'a>(&'a Semaphore);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

/// Adds one subscriber's counts to the totals.
fn add(shared: &Shared, seen: &Sequence) {
    let mut totals = shared.totals.lock().unwrap_or_else(|e| e.into_inner());
    totals.0.received += seen.received;
    totals.0.lost += seen.lost;
    totals.0.gaps += seen.gaps;
    totals.0.duplicates += seen.duplicates;
    totals.1 += u64::from(seen.lost > 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_sequence_and_send_time_padded_to_size() {
        let before = now_us();
        let data = payload(7, 20);
        assert_eq!(data.len(), 20);
        let (seq, sent) = parse(&data).unwrap();
        assert_eq!(seq, 7);
        assert!(sent >= before && sent <= now_us());
        assert!(data[16..].iter().all(|&b| b == b'x'));
        assert_eq!(parse(&data[..15]), None);
    }

    #[test]
    fn losses_gaps_and_duplicates_are_counted_by_sequence() {
        let mut s = Sequence::default();
        for seq in [0, 1, 2, 5, 6, 6, 3, 9] {
            s.record(seq);
        }
        s.end(12);
        let want = Sequence {
            next: 12,
            received: 8,
            lost: 2 + 2 + 2,
            gaps: 3,
            duplicates: 2,
        };
        assert_eq!(s, want);
    }

    #[test]
    fn a_complete_stream_has_no_loss() {
        let mut s = Sequence::default();
        (0..100).for_each(|seq| s.record(seq));
        s.end(100);
        assert_eq!((s.lost, s.gaps, s.duplicates, s.received), (0, 0, 0, 100));
    }
}
