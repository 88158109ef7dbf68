//! What this node holds, counted locally, and kept in step with the broker's outbox: a
//! thing's count going 0 → 1 tells the broker this node holds it, 1 → 0 that it no longer
//! does. One task makes those calls in order, one thing at a time, so a thing that flaps
//! between two syncs costs no call at all, and the broker never sees a node's changes of one
//! thing out of order.

use crate::broker::{Broker, OutboxPolicy, Tracked};
use crate::metrics::Metrics;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Entry {
    /// Connections or subscriptions here.
    count: usize,
    /// Whether the broker records this node as a holder.
    remote: bool,
    /// Whether it waits in `dirty`.
    queued: bool,
}

#[derive(Debug, Default)]
struct Local {
    things: HashMap<Tracked, Entry>,
    dirty: VecDeque<Tracked>,
}

/// The node's held things.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    local: Mutex<Local>,
    changed: Notify,
}

impl Tracker {
    /// One more (`up`) or one less holder of `thing` here.
    pub(crate) fn change(&self, thing: Tracked, up: bool) {
        let mut local = lock(&self.local);
        let entry = local.things.entry(thing.clone()).or_default();
        if up {
            entry.count += 1;
        } else {
            entry.count = entry.count.saturating_sub(1);
        }
        if (entry.count > 0) != entry.remote && !entry.queued {
            entry.queued = true;
            local.dirty.push_back(thing);
            drop(local);
            self.changed.notify_one();
        } else if entry.count == 0 && !entry.remote && !entry.queued {
            local.things.remove(&thing);
        }
    }

    /// The broker forgot what this node held (it took the node for dead): tell it again.
    pub(crate) fn resync(&self) {
        let mut local = lock(&self.local);
        let Local { things, dirty } = &mut *local;
        for (thing, entry) in things.iter_mut() {
            entry.remote = false;
            if entry.count > 0 && !entry.queued {
                entry.queued = true;
                dirty.push_back(thing.clone());
            }
        }
        drop(local);
        self.changed.notify_one();
    }

    /// Whether the broker knows every change made here.
    pub(crate) fn is_synced(&self) -> bool {
        lock(&self.local).dirty.is_empty()
    }

    /// The next thing whose broker state differs from the local one, and what it should be.
    fn next(&self) -> Option<(Tracked, bool)> {
        let mut local = lock(&self.local);
        while let Some(thing) = local.dirty.pop_front() {
            let Some(entry) = local.things.get_mut(&thing) else {
                continue;
            };
            entry.queued = false;
            let held = entry.count > 0;
            if held != entry.remote {
                entry.queued = true;
                local.dirty.push_front(thing.clone());
                return Some((thing, held));
            }
            if !held {
                local.things.remove(&thing);
            }
        }
        None
    }

    /// The broker recorded `thing` as `held` by this node.
    fn synced(&self, thing: &Tracked, held: bool) {
        let mut local = lock(&self.local);
        let Some(entry) = local.things.get_mut(thing) else {
            return;
        };
        entry.remote = held;
        if (entry.count > 0) == held {
            entry.queued = false;
            if let Some(at) = local.dirty.iter().position(|t| t == thing) {
                local.dirty.remove(at);
            }
            if !held && local.things.get(thing).is_some_and(|e| e.count == 0) {
                local.things.remove(thing);
            }
        }
    }

    /// Keeps the broker in step, forever: each change in order; a broker failure is retried
    /// after a second.
    pub(crate) async fn run(
        &self,
        broker: &dyn Broker,
        node: &str,
        policy: OutboxPolicy,
        metrics: &Metrics,
    ) {
        loop {
            let Some((thing, held)) = self.next() else {
                self.changed.notified().await;
                continue;
            };
            match broker.track(node, &thing, held, policy).await {
                Ok(appended) => {
                    metrics.webhook_appended(appended);
                    self.synced(&thing, held);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook tracking failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

// A poisoned lock means a panic elsewhere already; the counts stay usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
