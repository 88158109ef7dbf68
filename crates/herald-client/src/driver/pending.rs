//! Commands sent and not yet answered, by id; bounded, with deadlines for the client's own.

use crate::{Error, Result};
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Who waits for a reply.
#[derive(Debug)]
pub(crate) enum Waiting {
    /// An application command: its caller.
    App(oneshot::Sender<Result<Box<RawValue>>>),
    /// An application `unsubscribe`.
    Unsubscribe(oneshot::Sender<Result<()>>),
    /// A (re)subscribe the client sent for a channel.
    Subscribe(String),
    /// A `history` read filling a server-side subscription's gap.
    CatchUp(String),
    /// A `refresh` with a fresh token.
    Refresh,
    /// The liveness `ping`.
    Ping,
}

impl Waiting {
    fn is_app(&self) -> bool {
        matches!(self, Self::App(_) | Self::Unsubscribe(_))
    }

    /// Whether nobody waits any more (the caller timed out and dropped its receiver).
    fn is_abandoned(&self) -> bool {
        match self {
            Self::App(tx) => tx.is_closed(),
            Self::Unsubscribe(tx) => tx.is_closed(),
            _ => false,
        }
    }

    /// Tells the waiter the connection was lost before its reply.
    pub(crate) fn lost(self) {
        match self {
            Self::App(tx) => drop(tx.send(Err(Error::Disconnected))),
            Self::Unsubscribe(tx) => drop(tx.send(Err(Error::Disconnected))),
            _ => {}
        }
    }
}

/// The in-flight table of one client.
#[derive(Debug)]
pub(crate) struct Pending {
    map: HashMap<u64, (Waiting, Option<Instant>)>,
    /// Deadlines of the client's own commands: missing one means the connection is dead.
    deadlines: BTreeSet<(Instant, u64)>,
    next_id: u64,
    app: usize,
}

impl Pending {
    pub(crate) fn new() -> Self {
        Self {
            map: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_id: 1,
            app: 0,
        }
    }

    /// Whether another application command fits under `max`, after forgetting those nobody
    /// waits for when the table is full.
    pub(crate) fn has_room(&mut self, max: usize) -> bool {
        if self.app < max {
            return true;
        }
        self.app_count() < max
    }

    /// Application commands in flight, after forgetting those nobody waits for.
    fn app_count(&mut self) -> usize {
        let abandoned: Vec<u64> = self
            .map
            .iter()
            .filter(|(_, (w, _))| w.is_abandoned())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            drop(self.take(id));
        }
        self.app
    }

    /// Registers a command; returns its id.
    pub(crate) fn add(&mut self, waiting: Waiting, deadline: Option<Instant>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if waiting.is_app() {
            self.app += 1;
        }
        if let Some(at) = deadline {
            self.deadlines.insert((at, id));
        }
        self.map.insert(id, (waiting, deadline));
        id
    }

    /// The waiter of reply `id`, if any.
    pub(crate) fn take(&mut self, id: u64) -> Option<Waiting> {
        let (waiting, deadline) = self.map.remove(&id)?;
        if let Some(at) = deadline {
            self.deadlines.remove(&(at, id));
        }
        if waiting.is_app() {
            self.app -= 1;
        }
        Some(waiting)
    }

    /// The earliest deadline of the client's own commands.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The connection is gone: every waiter hears it.
    pub(crate) fn lose_all(&mut self) {
        self.deadlines.clear();
        self.app = 0;
        for (_, (waiting, _)) in self.map.drain() {
            waiting.lost();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn abandoned_commands_do_not_count_against_the_limit() {
        let mut pending = Pending::new();
        let (tx, rx) = oneshot::channel();
        pending.add(Waiting::App(tx), None);
        let (kept, _keep) = oneshot::channel();
        pending.add(Waiting::App(kept), None);
        pending.add(Waiting::Ping, Some(Instant::now()));
        assert_eq!(pending.app_count(), 2);
        drop(rx);
        assert_eq!(pending.app_count(), 1);
    }

    #[test]
    fn earliest_deadline_is_the_first_and_leaves_with_its_reply() {
        let mut pending = Pending::new();
        let now = Instant::now();
        let late = pending.add(Waiting::Ping, Some(now + Duration::from_secs(2)));
        let early = pending.add(Waiting::Refresh, Some(now + Duration::from_secs(1)));
        assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(matches!(pending.take(early), Some(Waiting::Refresh)));
        assert_eq!(pending.next_deadline(), Some(now + Duration::from_secs(2)));
        assert!(pending.take(late).is_some());
        assert!(pending.take(late).is_none());
        assert_eq!(pending.next_deadline(), None);
    }

    #[test]
    fn lost_connection_fails_every_application_command() {
        let mut pending = Pending::new();
        let (tx, mut rx) = oneshot::channel();
        pending.add(Waiting::App(tx), None);
        pending.lose_all();
        assert!(matches!(rx.try_recv(), Ok(Err(Error::Disconnected))));
        assert_eq!(pending.app_count(), 0);
    }
}
