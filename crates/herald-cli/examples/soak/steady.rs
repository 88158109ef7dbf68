//! Well-behaved clients: protocol-mode subscribers that read normally, and a steady
//! publisher on the HTTP API. Each subscriber counts deliveries per offset on each of its
//! channels; one that is disconnected reconnects and subscribes with `recover`, and its
//! disconnects are counted by close code. At the end every subscriber must hold every
//! publication exactly once.

use crate::Target;
use crate::conn::{Conn, Gone, Next};
use crate::http::Http;
use crate::run::{Run, due, raised};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The channel everyone subscribes to, and the hostile clients too.
pub(crate) const BUSY: &str = "soak:busy";
/// Quieter channels, one per subscriber beside the busy one.
pub(crate) const QUIET: [&str; 3] = ["soak:quiet:0", "soak:quiet:1", "soak:quiet:2"];

/// One channel as one subscriber saw it.
#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) epoch: String,
    /// The offset the first subscribe answered: the publications after it are expected.
    pub(crate) base: u64,
    /// The highest offset applied: where a recovery starts.
    pub(crate) last: u64,
    /// Deliveries of each offset after `base`.
    pub(crate) counts: Vec<u16>,
    /// Deliveries of offsets at or before `base`, or of another epoch.
    pub(crate) strays: u64,
}

impl Track {
    fn new(epoch: &str, offset: u64) -> Self {
        Self {
            epoch: epoch.to_owned(),
            base: offset,
            last: offset,
            counts: Vec::new(),
            strays: 0,
        }
    }

    fn apply(&mut self, epoch: &str, offset: u64) {
        // A channel nobody had published to answers offset 0 in a vacant epoch; its first
        // stream starts at offset 1 in an epoch of its own (docs/protocol.md), as the hub's
        // live filter accepts too.
        if epoch != self.epoch && self.last == 0 && offset == 1 {
            self.epoch = epoch.to_owned();
        }
        if epoch != self.epoch || offset <= self.base {
            self.strays += 1;
            return;
        }
        let i = usize::try_from(offset - self.base - 1).unwrap_or(usize::MAX);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(1);
        self.last = self.last.max(offset);
    }
}

/// What one subscriber saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) tracks: HashMap<&'static str, Track>,
    pub(crate) disconnects: BTreeMap<u16, u32>,
    pub(crate) recovered: u32,
    pub(crate) unrecovered: u32,
    pub(crate) refused: u32,
    pub(crate) connect_failures: u32,
    /// Whether it asked for join/leave pushes on the busy channel.
    pub(crate) join_leave: bool,
    /// Join and leave pushes it got, per second since the soak started.
    pub(crate) join_leave_per_second: Vec<u32>,
}

pub(crate) type Shared = Arc<Mutex<Seen>>;

pub(crate) fn lock(seen: &Shared) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `n` subscribers (the first `join_leave` of them ask for join/leave pushes) and
/// waits until each has subscribed. They run until `stop` is raised.
pub(crate) async fn start_subscribers(
    target: &Arc<Target>,
    n: usize,
    join_leave: usize,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<(Shared, tokio::task::JoinHandle<()>)>, String> {
    let (ready_tx, mut ready) = mpsc::channel(n.max(1));
    let subscribers: Vec<_> = (0..n)
        .map(|i| {
            let seen = Arc::new(Mutex::new(Seen {
                join_leave: i < join_leave,
                ..Seen::default()
            }));
            let channels = [BUSY, QUIET[i % QUIET.len()]];
            let task = subscriber(
                target.clone(),
                channels,
                seen.clone(),
                ready_tx.clone(),
                stop.clone(),
            );
            (seen, tokio::spawn(task))
        })
        .collect();
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(30), ready.recv())
            .await
            .ok()
            .flatten()
            .ok_or("the well-behaved subscribers did not all subscribe within 30 s")?;
    }
    Ok(subscribers)
}

async fn subscriber(
    target: Arc<Target>,
    channels: [&'static str; 2],
    seen: Shared,
    ready: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut announced = false;
    while !*stop.borrow() {
        let mut conn = match Conn::open(target.addr, None).await {
            Ok(conn) => conn,
            Err(_) => {
                lock(&seen).connect_failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let code = match subscribe_all(&mut conn, &channels, &seen).await {
            Ok(()) => {
                if !announced {
                    announced = ready.send(()).await.is_ok();
                }
                match read_until_end(&mut conn, &seen, &target.origin, &mut stop).await {
                    Some(code) => code,
                    None => return conn.close().await,
                }
            }
            Err(Gone::Closed(code)) => code,
            Err(Gone::Timeout) => {
                conn.close().await;
                0
            }
        };
        *lock(&seen).disconnects.entry(code).or_default() += 1;
    }
}

/// Subscribes to each channel, with `recover` from the last offset applied after a
/// reconnect.
async fn subscribe_all(
    conn: &mut Conn,
    channels: &[&'static str],
    seen: &Shared,
) -> Result<(), Gone> {
    for &channel in channels {
        let mut params = json!({"channel": channel});
        let recover = lock(seen)
            .tracks
            .get(channel)
            .map(|t| json!({"offset": t.last, "epoch": t.epoch}));
        if let Some(recover) = recover {
            params["recover"] = recover;
        }
        if channel == BUSY && lock(seen).join_leave {
            params["join_leave"] = json!(true);
        }
        let reply = conn.call("subscribe", params).await?;
        if reply.get("error").is_some() {
            lock(seen).refused += 1;
            return Err(Gone::Timeout);
        }
        subscribed(&mut lock(seen), channel, &reply["result"]);
    }
    Ok(())
}

/// Applies a subscribe reply: the first one sets the base, a recovery applies what it holds.
fn subscribed(seen: &mut Seen, channel: &'static str, result: &Value) {
    let epoch = result["epoch"].as_str().unwrap_or_default();
    let offset = result["offset"].as_u64().unwrap_or(0);
    let Some(track) = seen.tracks.get_mut(channel) else {
        seen.tracks.insert(channel, Track::new(epoch, offset));
        return;
    };
    if result["recovered"] == true {
        for p in result["publications"].as_array().into_iter().flatten() {
            track.apply(epoch, p["offset"].as_u64().unwrap_or(0));
        }
        seen.recovered += 1;
    } else {
        // The gap stays unfilled: its offsets count as lost.
        if epoch == track.epoch {
            track.last = track.last.max(offset);
        }
        seen.unrecovered += 1;
    }
}

/// Reads pushes until the connection ends (its close code) or `stop` is raised (`None`).
async fn read_until_end(
    conn: &mut Conn,
    seen: &Shared,
    origin: &Instant,
    stop: &mut watch::Receiver<bool>,
) -> Option<u16> {
    loop {
        tokio::select! {
            () = raised(stop) => return None,
            next = conn.next(Duration::from_secs(1)) => match next {
                Next::Message(v) => on_push(&mut lock(seen), &v, origin),
                Next::Ended(code) => return Some(code),
                Next::Quiet => {}
            },
        }
    }
}

fn on_push(seen: &mut Seen, v: &Value, origin: &Instant) {
    match v["push"].as_str() {
        Some("pub") => {
            let channel = v["channel"].as_str().unwrap_or_default();
            if let Some(track) = seen.tracks.get_mut(channel) {
                let epoch = v["epoch"].as_str().unwrap_or_default();
                track.apply(epoch, v["offset"].as_u64().unwrap_or(0));
            }
        }
        Some("join" | "leave") => {
            let second = usize::try_from(origin.elapsed().as_secs()).unwrap_or(0);
            let buckets = &mut seen.join_leave_per_second;
            if buckets.len() <= second {
                buckets.resize(second + 1, 0);
            }
            buckets[second] += 1;
        }
        _ => {}
    }
}

/// What the publisher did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub(crate) acked: BTreeMap<&'static str, u64>,
    pub(crate) failures: BTreeMap<String, u32>,
}

/// Four of every five publications go to the busy channel, the fifth to a quiet one.
fn channel_for(n: u64) -> &'static str {
    match n % 5 {
        4 => QUIET[usize::try_from(n / 5).unwrap_or(0) % QUIET.len()],
        _ => BUSY,
    }
}

/// Publishes at `rate` per second through `POST /api/publish` until the run ends; the busy
/// channel's publications carry `pad` bytes of padding.
pub(crate) async fn publisher(
    target: Arc<Target>,
    run: Arc<Run>,
    rate: u32,
    pad: usize,
) -> Published {
    let mut http = Http::new(target.addr, &target.key);
    let pad = "x".repeat(pad);
    let mut published = Published::default();
    for n in 0.. {
        if !run.sleep_until(due(run.start, n, rate)).await {
            break;
        }
        let channel = channel_for(n);
        let data = match channel {
            BUSY => format!(r#"{{"n":{n},"pad":"{pad}"}}"#),
            _ => format!(r#"{{"n":{n}}}"#),
        };
        let body = format!(r#"{{"channel":"{channel}","data":{data}}}"#);
        let failure = match http.request("POST", "/api/publish", &body).await {
            Ok(r) if r.status == 200 => {
                *published.acked.entry(channel).or_default() += 1;
                continue;
            }
            Ok(r) => format!("HTTP {}", r.status),
            Err(e) => e,
        };
        *published.failures.entry(failure).or_default() += 1;
    }
    published
}
