//! The memory broker's webhook outbox: the same rules as every broker's (see
//! [`Tracked`]), for the one node there is.

use super::lock;
use crate::broker::{Appended, Lead, OutboxEntry, OutboxEvent, OutboxPolicy, Tracked};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
struct State {
    /// Each held thing's holders.
    holders: HashMap<Tracked, HashSet<String>>,
    /// What each node holds.
    held_by: HashMap<String, HashSet<Tracked>>,
    /// Released things and when their grace delay ends.
    pending: HashMap<Tracked, Instant>,
    /// Each node's end of life, unless it renews it.
    nodes: HashMap<String, Instant>,
    /// The delivery lease: its holder and end.
    lease: Option<(String, Instant)>,
    events: VecDeque<OutboxEntry>,
    /// The last id's milliseconds and sequence.
    last: (u64, u64),
}

impl State {
    /// Appends `event`, unless the outbox is full.
    fn emit(&mut self, event: OutboxEvent, max: usize) -> Appended {
        if self.events.len() >= max {
            return Appended {
                queued: 0,
                dropped: 1,
            };
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (ms, seq) = if now > self.last.0 {
            (now, 0)
        } else {
            (self.last.0, self.last.1 + 1)
        };
        self.last = (ms, seq);
        self.events.push_back(OutboxEntry {
            id: format!("{ms}-{seq}"),
            time_ms: ms,
            event,
        });
        Appended {
            queued: 1,
            dropped: 0,
        }
    }

    fn hold(&mut self, node: &str, thing: &Tracked, policy: OutboxPolicy) -> Appended {
        let holders = self.holders.entry(thing.clone()).or_default();
        let first = holders.is_empty();
        if !holders.insert(node.to_owned()) {
            return Appended::default();
        }
        self.held_by
            .entry(node.to_owned())
            .or_default()
            .insert(thing.clone());
        if first && self.pending.remove(thing).is_none() {
            return self.emit(OutboxEvent::Tracked(thing.clone(), true), policy.max_events);
        }
        Appended::default()
    }

    fn release(
        &mut self,
        node: &str,
        thing: &Tracked,
        policy: OutboxPolicy,
        now: Instant,
    ) -> Appended {
        let Some(holders) = self.holders.get_mut(thing) else {
            return Appended::default();
        };
        if !holders.remove(node) {
            return Appended::default();
        }
        if let Some(held) = self.held_by.get_mut(node) {
            held.remove(thing);
        }
        if !holders.is_empty() {
            return Appended::default();
        }
        self.holders.remove(thing);
        if policy.grace.is_zero() {
            return self.emit(
                OutboxEvent::Tracked(thing.clone(), false),
                policy.max_events,
            );
        }
        self.pending.insert(thing.clone(), now + policy.grace);
        Appended::default()
    }

    fn sweep(&mut self, policy: OutboxPolicy, now: Instant) -> Appended {
        let mut appended = Appended::default();
        let dead: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(node, _)| node.clone())
            .collect();
        for node in dead {
            self.nodes.remove(&node);
            for thing in self.held_by.remove(&node).unwrap_or_default() {
                appended += self.release(&node, &thing, policy, now);
            }
        }
        let mut due: Vec<(Instant, Tracked)> = self
            .pending
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(thing, at)| (*at, thing.clone()))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, thing) in due {
            self.pending.remove(&thing);
            appended += self.emit(OutboxEvent::Tracked(thing, false), policy.max_events);
        }
        appended
    }
}

/// The outbox and what decides its events.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    state: Mutex<State>,
}

impl Outbox {
    pub(super) fn track(
        &self,
        node: &str,
        thing: &Tracked,
        held: bool,
        policy: OutboxPolicy,
    ) -> Appended {
        let mut state = lock(&self.state);
        if held {
            state.hold(node, thing, policy)
        } else {
            state.release(node, thing, policy, Instant::now())
        }
    }

    pub(super) fn push(&self, event: bytes::Bytes, policy: OutboxPolicy) -> Appended {
        lock(&self.state).emit(OutboxEvent::Raw(event), policy.max_events)
    }

    pub(super) fn lead(&self, node: &str, policy: OutboxPolicy) -> Lead {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let rejoined = state
            .nodes
            .insert(node.to_owned(), now + policy.node_life)
            .is_none_or(|until| until <= now);
        let free = state
            .lease
            .as_ref()
            .is_none_or(|(holder, until)| holder == node || *until <= now);
        let mut lead = Lead {
            rejoined,
            ..Lead::default()
        };
        if free {
            state.lease = Some((node.to_owned(), now + policy.lease));
            lead.leader = true;
            lead.appended = state.sweep(policy, now);
        }
        lead.waiting = state.events.len() as u64;
        lead
    }

    pub(super) fn read(&self, max: usize) -> Vec<OutboxEntry> {
        lock(&self.state).events.iter().take(max).cloned().collect()
    }

    pub(super) fn ack(&self, ids: &[String]) {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        lock(&self.state)
            .events
            .retain(|e| !ids.contains(e.id.as_str()));
    }
}
