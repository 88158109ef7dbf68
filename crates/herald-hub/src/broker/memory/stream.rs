//! One channel's stream, and the byte budget all streams of a broker share.

use crate::broker::{Publication, Retention};
use herald_hub_protocol::StreamPosition;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Payload bytes retained over all channels, against `history.max_bytes`.
#[derive(Debug)]
pub(super) struct Budget {
    used: AtomicUsize,
    /// 0: no limit.
    max: usize,
}

impl Budget {
    pub(super) fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    pub(super) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether `n` more bytes could ever fit once `freeable` bytes are given back.
    pub(super) fn could_fit(&self, n: usize, freeable: usize) -> bool {
        self.max == 0 || self.used().saturating_sub(freeable).saturating_add(n) <= self.max
    }

    /// Takes `n` bytes if they fit now.
    pub(super) fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let next = used.checked_add(n)?;
                (self.max == 0 || next <= self.max).then_some(next)
            })
            .is_ok()
    }

    pub(super) fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// A random epoch: 16 hex digits, new for every stream (and vacant epoch) this process makes.
pub(super) fn new_epoch() -> Arc<str> {
    format!("{:016x}", rand::random::<u64>()).into()
}

/// One channel's offsets and retained publications. Every publication in `entries` holds its
/// payload's bytes of the shared [`Budget`], given back when it leaves.
pub(super) struct Stream {
    /// What the last publish asked to keep.
    pub(super) retention: Retention,
    pub(super) epoch: Arc<str>,
    pub(super) top: u64,
    entries: VecDeque<(Instant, Arc<Publication>)>,
    /// Payload bytes in `entries`.
    bytes: usize,
    last_publish: Instant,
    /// Taken out of the broker's map by the sweep: whoever still holds it looks again.
    pub(super) removed: bool,
    /// The vacant epoch this stream replaced when the broker created it (`None` once it
    /// started over in place).
    pub(super) vacant_before: Option<Arc<str>>,
}

impl Stream {
    pub(super) fn new(now: Instant, retention: Retention) -> Self {
        Self {
            retention,
            epoch: new_epoch(),
            top: 0,
            entries: VecDeque::new(),
            bytes: 0,
            last_publish: now,
            removed: false,
            vacant_before: None,
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the oldest publication; false when there is none.
    pub(super) fn pop_oldest(&mut self, budget: &Budget) -> bool {
        let Some((_, publication)) = self.entries.pop_front() else {
            return false;
        };
        let size = publication.payload.len();
        self.bytes -= size;
        budget.give_back(size);
        true
    }

    /// Drops what the stream's retention no longer keeps.
    pub(super) fn trim(&mut self, now: Instant, budget: &Budget) {
        while self.entries.len() > self.retention.size {
            self.pop_oldest(budget);
        }
        let ttl = self.retention.ttl;
        while self
            .entries
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= ttl)
        {
            self.pop_oldest(budget);
        }
    }

    /// Nothing retained and idle past the TTL: the stream may be forgotten, and its next
    /// publication starts a new epoch.
    pub(super) fn expired(&self, now: Instant) -> bool {
        self.entries.is_empty() && now.duration_since(self.last_publish) >= self.retention.ttl
    }

    /// Starts over in a new epoch (history was lost).
    pub(super) fn restart(&mut self, budget: &Budget, now: Instant) {
        while self.pop_oldest(budget) {}
        *self = Self::new(now, self.retention);
    }

    /// Appends a publication whose payload bytes were already taken from the budget.
    pub(super) fn push(&mut self, publication: Arc<Publication>, now: Instant) {
        self.bytes += publication.payload.len();
        self.entries.push_back((now, publication));
    }

    pub(super) fn published(&mut self, now: Instant) -> u64 {
        self.top += 1;
        self.last_publish = now;
        self.top
    }

    /// Retained publications after `after`, oldest first, at most `limit`.
    pub(super) fn after(&self, after: u64, limit: usize) -> Vec<Arc<Publication>> {
        let start = self.entries.partition_point(|(_, p)| p.offset <= after);
        self.entries
            .range(start..)
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Retained publications after `after`, newest first, at most `limit`: read from the
    /// end, so the cost follows `limit`, not the stream's length.
    pub(super) fn newest_after(&self, after: u64, limit: usize) -> Vec<Arc<Publication>> {
        let start = self.entries.partition_point(|(_, p)| p.offset <= after);
        self.entries
            .range(start..)
            .rev()
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub(super) fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.to_string(),
        }
    }
}
