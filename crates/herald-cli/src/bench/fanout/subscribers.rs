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
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            delivered: 0,
            bytes: 0,
            losses: 0,
            errors: 0,
            latency: histogram(),
        }
    }
}

impl Tally {
    pub(super) fn merge(&mut self, other: Tally) {
        self.delivered += other.delivered;
        self.bytes += other.bytes;
        self.losses += other.losses;
        self.errors += other.errors;
        let _ = self.latency.add(&other.latency);
    }
}

struct Shared {
    delivered: AtomicU64,
    bytes: AtomicU64,
    losses: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
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
            latency: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
            targets: (0..args.channels).map(|_| AtomicU64::new(0)).collect(),
        });
        let (done, done_rx) = watch::channel(false);
        let ready = Arc::new(Semaphore::new(0));
        let handshakes = Arc::new(Semaphore::new(CONCURRENT_HANDSHAKES));
        let mut tasks = JoinSet::new();
        for i in first..first + count {
            let slot = usize::try_from(i % args.channels).unwrap_or(0);
            let subscriber = Subscriber {
                url: args.common.url.clone(),
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
        Tally {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            bytes: self.shared.bytes.load(Ordering::Relaxed),
            losses: self.shared.losses.load(Ordering::Relaxed),
            errors,
            latency,
        }
    }
}

struct Subscriber {
    url: String,
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
        let permit = self.handshakes.acquire().await?;
        let (mut feed, mut last) = if self.sse {
            let (feed, offset) = super::sse::Feed::open(&self.url, &self.channel).await?;
            (Feed::Sse(feed), offset)
        } else {
            self.websocket().await?
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
                message = feed.next() => message?,
                _ = self.done.changed(), if draining.is_none() => {
                    draining = Some(Instant::now());
                    continue;
                }
                () = tokio::time::sleep(Duration::from_millis(50)), if draining.is_some() => continue,
            };
            let Some(text) = message else {
                anyhow::bail!("server closed the subscription");
            };
            last = self.count(text.as_str(), last);
        }
        if let Feed::Ws(ws) = &mut feed {
            let _ = ws.close(CloseCode::NORMAL, "").await;
        }
        Ok(())
    }

    /// A herald.v1 WebSocket subscribed to the channel, and the subscribe reply's offset.
    async fn websocket(&self) -> anyhow::Result<(Feed, u64)> {
        let config = Config::default()
            .keepalive_interval(None)
            .keepalive_timeout(Duration::from_secs(60));
        let builder = ClientBuilder::new(&self.url)?
            .subprotocol("herald.v1")
            .config(config)
            .connect_timeout(self.timeout);
        let (mut ws, _) = builder.connect().await?;
        let subscribe = format!(
            "{{\"id\":1,\"method\":\"subscribe\",\"params\":{{\"channel\":\"{}\"}}}}",
            self.channel
        );
        ws.send(Message::text(subscribe)).await?;
        // The `connected` push, then the reply with the starting offset.
        loop {
            let Some(message) = ws.recv().await else {
                anyhow::bail!("closed before subscribing");
            };
            if let Message::Text(text) = message?
                && text.starts_with("{\"id\":1")
            {
                let offset = number_after(&text, "\"offset\":").context("subscribe reply")?;
                return Ok((Feed::Ws(Box::new(ws)), offset));
            }
        }
    }

    /// Counts one push; returns the highest offset seen.
    fn count(&self, text: &str, last: u64) -> u64 {
        let Some(offset) = number_after(text, "\"offset\":") else {
            return last;
        };
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
