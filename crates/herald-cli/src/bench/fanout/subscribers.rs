//! A group of subscriber connections in this process.

use super::Args;
use super::number_after;
use crate::bench::report::{histogram, micros};
use crate::bench::system;
use anyhow::Context as _;
use hdrhistogram::Histogram;
use herald::{ClientBuilder, CloseCode, Config, Message};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Latency shards: subscribers record into one of these, picked by their index.
const SHARDS: usize = 16;
/// Handshakes in progress at once.
const CONCURRENT_HANDSHAKES: usize = 256;

/// What subscribers count.
#[derive(Debug)]
pub(super) struct Tally {
    pub(super) delivered: u64,
    pub(super) bytes: u64,
    pub(super) losses: u64,
    pub(super) errors: u64,
    pub(super) latency: Histogram<u64>,
    /// Publications received twice (an offset at or below one already counted).
    pub(super) duplicates: u64,
    /// Connections lost and opened again (`--recover`).
    pub(super) reconnects: u64,
    /// Resubscribes the server answered with `recovered: false` (their gap is in `losses`).
    pub(super) not_recovered: u64,
    /// First connections tried again (`--recover`).
    pub(super) start_retries: u64,
    /// From a lost connection to the recovering subscribe reply, in microseconds.
    pub(super) back: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            delivered: 0,
            bytes: 0,
            losses: 0,
            errors: 0,
            latency: histogram(),
            duplicates: 0,
            reconnects: 0,
            not_recovered: 0,
            start_retries: 0,
            back: histogram(),
        }
    }
}

impl Tally {
    pub(super) fn merge(&mut self, other: Tally) {
        self.delivered += other.delivered;
        self.bytes += other.bytes;
        self.losses += other.losses;
        self.errors += other.errors;
        self.duplicates += other.duplicates;
        self.reconnects += other.reconnects;
        self.not_recovered += other.not_recovered;
        self.start_retries += other.start_retries;
        let _ = self.latency.add(&other.latency);
        let _ = self.back.add(&other.back);
    }
}

struct Shared {
    delivered: AtomicU64,
    bytes: AtomicU64,
    losses: AtomicU64,
    duplicates: AtomicU64,
    reconnects: AtomicU64,
    not_recovered: AtomicU64,
    start_retries: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
    back: Mutex<Histogram<u64>>,
    /// The last offset published per channel, known once publishing ended.
    targets: Vec<AtomicU64>,
}

/// Subscribers `first..first + count` (subscriber i is on channel i % channels).
pub(super) struct Group {
    tasks: JoinSet<anyhow::Result<()>>,
    shared: Arc<Shared>,
    ready: Arc<Semaphore>,
    count: u64,
    done: watch::Sender<bool>,
}

impl Group {
    pub(super) fn start(args: &Args, first: u64, count: u64) -> anyhow::Result<Self> {
        system::ensure_open_files(count + 1)?;
        let shared = Arc::new(Shared {
            delivered: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            losses: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            not_recovered: AtomicU64::new(0),
            start_retries: AtomicU64::new(0),
            latency: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
            back: Mutex::new(histogram()),
            targets: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        });
        let (done, done_rx) = watch::channel(false);
        let ready = Arc::new(Semaphore::new(0));
        let handshakes = Arc::new(Semaphore::new(CONCURRENT_HANDSHAKES));
        let mut tasks = JoinSet::new();
        let urls: Arc<[String]> = std::iter::once(args.common.url.clone())
            .chain(args.also.iter().cloned())
            .collect();
        if args.recover && args.transport == "sse" {
            anyhow::bail!("--recover is for WebSocket subscribers");
        }
        for i in first..first + count {
            let slot = usize::try_from(i % args.channels).unwrap_or(0);
            let subscriber = Subscriber {
                urls: urls.clone(),
                node: usize::try_from(i).unwrap_or(0) % urls.len(),
                index: usize::try_from(i).unwrap_or(0),
                recover: args.recover,
                source: args.source.first().copied(),
                epoch: String::new(),
                channel: format!("bench:{slot}"),
                slot,
                shard: usize::try_from(i).unwrap_or(0) % SHARDS,
                shared: shared.clone(),
                ready: ready.clone(),
                handshakes: handshakes.clone(),
                done: done_rx.clone(),
                timeout: args.common.timeout,
                sse: args.transport == "sse",
            };
            tasks.spawn(subscriber.run());
        }
        Ok(Self {
            tasks,
            shared,
            ready,
            count,
            done,
        })
    }

    /// Waits until every subscriber got its subscribe reply.
    pub(super) async fn ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let count = u32::try_from(self.count).context("too many subscribers")?;
        let _all = tokio::time::timeout(timeout, self.ready.acquire_many(count))
            .await
            .context("subscribers did not all subscribe in time")??;
        Ok(())
    }

    /// Tells the subscribers where each channel ended, waits until they got there (or
    /// timed out), and counts.
    pub(super) async fn finish(mut self, targets: &[u64]) -> Tally {
        for (slot, target) in self.shared.targets.iter().zip(targets) {
            slot.store(*target, Ordering::Relaxed);
        }
        let _ = self.done.send(true);
        let mut errors = 0;
        while let Some(joined) = self.tasks.join_next().await {
            if !matches!(joined, Ok(Ok(()))) {
                errors += 1;
            }
        }
        let mut latency = histogram();
        for shard in &self.shared.latency {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let _ = latency.add(&*shard);
        }
        let back = self
            .shared
            .back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Tally {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            losses: self.shared.losses.load(Ordering::Relaxed),
            errors,
            latency,
            duplicates: self.shared.duplicates.load(Ordering::Relaxed),
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
            not_recovered: self.shared.not_recovered.load(Ordering::Relaxed),
            start_retries: self.shared.start_retries.load(Ordering::Relaxed),
            back,
        }
    }
}

struct Subscriber {
    /// The nodes, in order; the subscriber starts on `urls[node]` and, after a lost
    /// connection, goes on to the next.
    urls: Arc<[String]>,
    node: usize,
    /// This subscriber's number among all of them.
    index: usize,
    /// Reconnect after a lost connection and resubscribe with `recover`.
    recover: bool,
    /// The local address connections are made from.
    source: Option<std::net::IpAddr>,
    /// The channel's epoch, from the last subscribe reply.
    epoch: String,
    channel: String,
    slot: usize,
    shard: usize,
    shared: Arc<Shared>,
    ready: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    done: watch::Receiver<bool>,
    timeout: Duration,
    /// Over `GET /sse` rather than a WebSocket.
    sse: bool,
}

/// Where a subscriber's publications come from.
enum Feed {
    Ws(Box<herald::WebSocket<herald::MaybeTlsStream>>),
    Sse(super::sse::Feed),
}

/// One message's text, without a copy on either transport.
enum Text {
    Ws(herald::Utf8Bytes),
    Sse(String),
    /// A message that is not text: counted as nothing.
    Other,
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            Self::Ws(text) => text.as_str(),
            Self::Sse(text) => text,
            Self::Other => "",
        }
    }
}

impl Feed {
    /// The next message; `None` once the server ended the feed.
    async fn next(&mut self) -> anyhow::Result<Option<Text>> {
        match self {
            Self::Ws(ws) => match ws.recv().await {
                Some(Ok(Message::Text(text))) => Ok(Some(Text::Ws(text))),
                Some(Ok(_)) => Ok(Some(Text::Other)),
                Some(Err(e)) => Err(e.into()),
                None => Ok(None),
            },
            Self::Sse(feed) => Ok(feed.next().await?.map(Text::Sse)),
        }
    }
}

impl Subscriber {
    async fn run(mut self) -> anyhow::Result<()> {
        let handshakes = self.handshakes.clone();
        let permit = handshakes.acquire().await?;
        let (mut feed, mut last) = if self.sse {
            let url = &self.urls[self.node];
            let (feed, offset) = super::sse::Feed::open(url, &self.channel).await?;
            (Feed::Sse(feed), offset)
        } else {
            self.first_websocket().await?
        };
        drop(permit);
        self.ready.add_permits(1);
        let mut draining: Option<Instant> = None;
        loop {
            if let Some(since) = draining {
                let target = self.shared.targets[self.slot].load(Ordering::Relaxed);
                if last >= target || since.elapsed() > self.timeout {
                    let missing = target.saturating_sub(last);
                    self.shared.losses.fetch_add(missing, Ordering::Relaxed);
                    break;
                }
            }
            let message = tokio::select! {
                message = feed.next() => message,
                _ = self.done.changed(), if draining.is_none() => {
                    draining = Some(Instant::now());
                    continue;
                }
                () = tokio::time::sleep(Duration::from_millis(50)), if draining.is_some() => continue,
            };
            let lost = match message {
                Ok(Some(text)) => {
                    last = self.count(text.as_str(), last);
                    if self.recover {
                        self.keep_epoch(text.as_str());
                    }
                    continue;
                }
                Ok(None) => anyhow::anyhow!("server closed the subscription"),
                Err(e) => e,
            };
            if !self.recover {
                return Err(lost);
            }
            match self.reconnect(last, &mut draining).await? {
                Some((again, offset)) => {
                    feed = again;
                    last = offset;
                }
                // Still away when the drain timed out: what it missed is counted.
                None => continue,
            }
        }
        if let Feed::Ws(ws) = &mut feed {
            let _ = ws.close(CloseCode::NORMAL, "").await;
        }
        Ok(())
    }

    /// The first subscription. With `--recover`, a refused or timed-out attempt (a node
    /// restarting, a full accept queue) is tried again on the next node, as a client would,
    /// until the timeout; counted in `start_retries`.
    async fn first_websocket(&mut self) -> anyhow::Result<(Feed, u64)> {
        let started = Instant::now();
        loop {
            match self.websocket(None).await {
                Ok(subscribed) => return Ok(subscribed),
                Err(e) if !self.recover || started.elapsed() > self.timeout => return Err(e),
                Err(_) => {
                    self.shared.start_retries.fetch_add(1, Ordering::Relaxed);
                    self.node = (self.node + 1) % self.urls.len();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// After a lost connection: the next node, then the one after, until a subscribe with
    /// `recover` from `last` is answered; `None` once draining lasted past the timeout.
    async fn reconnect(
        &mut self,
        last: u64,
        draining: &mut Option<Instant>,
    ) -> anyhow::Result<Option<(Feed, u64)>> {
        let lost_at = Instant::now();
        self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
        // The subscribers of one node spread over all the others, then try each in turn.
        let others = self.urls.len().saturating_sub(1).max(1);
        let mut step = 1 + self.index % others;
        loop {
            self.node = (self.node + step) % self.urls.len();
            step = 1;
            if draining.is_none() && *self.done.borrow() {
                *draining = Some(Instant::now());
            }
            if draining.is_some_and(|since| since.elapsed() > self.timeout) {
                return Ok(None);
            }
            let attempt = {
                let handshakes = self.handshakes.clone();
                let _permit = handshakes.acquire().await?;
                self.websocket(Some(last)).await
            };
            match attempt {
                Ok(back) => {
                    let mut histogram = self.shared.back.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = histogram.record(micros(lost_at.elapsed()));
                    return Ok(Some(back));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A herald.v1 WebSocket subscribed to the channel, and the offset it is at: the
    /// subscribe reply's, or, recovering from `recover`, the last of the recovered
    /// publications (each counted as a delivery).
    async fn websocket(&mut self, recover: Option<u64>) -> anyhow::Result<(Feed, u64)> {
        let config = Config::default()
            .keepalive_interval(None)
            .keepalive_timeout(Duration::from_secs(60));
        let mut builder = ClientBuilder::new(&self.urls[self.node])?
            .subprotocol("herald.v1")
            .config(config)
            .connect_timeout(self.timeout);
        if let Some(source) = self.source {
            builder = builder.local_address(source);
        }
        let (mut ws, _) = builder.connect().await?;
        let subscribe = match recover {
            Some(offset) => format!(
                "{{\"id\":1,\"method\":\"subscribe\",\"params\":{{\"channel\":\"{}\",\"recover\":{{\"offset\":{offset},\"epoch\":{}}}}}}}",
                self.channel,
                serde_json::Value::from(self.epoch.as_str()),
            ),
            None => format!(
                "{{\"id\":1,\"method\":\"subscribe\",\"params\":{{\"channel\":\"{}\"}}}}",
                self.channel
            ),
        };
        ws.send(Message::text(subscribe)).await?;
        // The `connected` push, then the reply with the starting offset.
        loop {
            let Some(message) = ws.recv().await else {
                anyhow::bail!("closed before subscribing");
            };
            if let Message::Text(text) = message?
                && text.starts_with("{\"id\":1")
            {
                let offset = self.subscribed(&text, recover)?;
                return Ok((Feed::Ws(Box::new(ws)), offset));
            }
        }
    }

    /// Reads a subscribe reply: keeps the epoch, counts recovered publications (or, when the
    /// server could not recover, the gap as lost), and returns the offset to go on from.
    fn subscribed(&mut self, text: &str, recover: Option<u64>) -> anyhow::Result<u64> {
        let reply: serde_json::Value = serde_json::from_str(text).context("subscribe reply")?;
        let result = &reply["result"];
        let offset = result["offset"]
            .as_u64()
            .with_context(|| format!("subscribe refused: {text}"))?;
        if let Some(epoch) = result["epoch"].as_str() {
            self.epoch = epoch.to_owned();
        }
        let Some(mut last) = recover else {
            return Ok(offset);
        };
        if result["recovered"].as_bool() != Some(true) {
            self.shared.not_recovered.fetch_add(1, Ordering::Relaxed);
            let gap = offset.saturating_sub(last);
            self.shared.losses.fetch_add(gap, Ordering::Relaxed);
            return Ok(offset);
        }
        for publication in result["publications"].as_array().into_iter().flatten() {
            let Some(at) = publication["offset"].as_u64() else {
                continue;
            };
            if at <= last {
                self.shared.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if at > last + 1 {
                self.shared
                    .losses
                    .fetch_add(at - last - 1, Ordering::Relaxed);
            }
            self.shared.delivered.fetch_add(1, Ordering::Relaxed);
            last = at;
        }
        // Live pushes go on after the last recovered publication; a gap shows there.
        Ok(last)
    }

    /// Keeps a push's epoch (a channel's epoch is set by its first publication, after an
    /// empty channel's subscribe reply): the position to recover from is offset and epoch.
    fn keep_epoch(&mut self, text: &str) {
        const KEY: &str = "\"epoch\":\"";
        let Some(start) = text.find(KEY).map(|at| at + KEY.len()) else {
            return;
        };
        let Some(len) = text[start..].find('"') else {
            return;
        };
        let epoch = &text[start..start + len];
        if epoch != self.epoch {
            epoch.clone_into(&mut self.epoch);
        }
    }

    /// Counts one push; returns the highest offset seen.
    fn count(&self, text: &str, last: u64) -> u64 {
        let Some(offset) = number_after(text, "\"offset\":") else {
            return last;
        };
        if offset <= last {
            self.shared.duplicates.fetch_add(1, Ordering::Relaxed);
            return last;
        }
        if offset > last + 1 {
            let gap = offset - last - 1;
            self.shared.losses.fetch_add(gap, Ordering::Relaxed);
        }
        self.shared.delivered.fetch_add(1, Ordering::Relaxed);
        let size = text.len() as u64;
        self.shared.bytes.fetch_add(size, Ordering::Relaxed);
        if let Some(sent) = number_after(text, "\"data\":\"") {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let now = u64::try_from(now.as_micros()).unwrap_or(0);
            let took = Duration::from_micros(now.saturating_sub(sent));
            let mut shard = self.shared.latency[self.shard]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let _ = shard.record(micros(took));
        }
        last.max(offset)
    }
}
