//! The control bus over Redis pub/sub, on the node's one pub/sub connection.
//!
//! Every node subscribes to `herald:{ctl}` (to all nodes) and `herald:{ctl}:NODE` (to this
//! node only; NODE is the broker's random id). Frames:
//!
//! - `c` + message: a control message, handed to `BrokerEvents::control`;
//! - `s NODE ID\n` + question: a survey from node NODE; each node PUBLISHes its answer to
//!   `herald:{ctl}:NODE` as `a ID\n` + answer.
//!
//! The bus stays on classic pub/sub, also on a Redis Cluster: a classic PUBLISH reaches the
//! subscribers of every shard. The topics share the hash tag `{ctl}`, so a cluster client
//! sends every node's SUBSCRIBEs and every PUBLISH to the one master owning that slot, and
//! PUBLISH's count of receivers (which counts one server's subscribers) still counts every node.
//!
//! PUBLISH answers with the number of subscribers that got the frame: for a survey on
//! `herald:{ctl}`, the number of nodes, which is how many answers the asking node waits for
//! (up to its timeout). Everything is bounded: frames (`MAX_CONTROL_SIZE` plus a header),
//! surveys in flight ([`MAX_PENDING`]), answers per survey ([`MAX_ANSWERS`]) and answers
//! being sent at once ([`MAX_SENDING`]); what does not fit, or does not parse, is dropped and
//! counted through `BrokerEvents::control_malformed`.

use crate::link::Commands;
use bytes::Bytes;
use herald_hub::broker::{BrokerError, BrokerEvents, MAX_CONTROL_SIZE};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// The topic every node hears.
pub(crate) const ALL: &str = "herald:{ctl}";
/// Surveys in flight on one node; one more is refused.
pub(crate) const MAX_PENDING: usize = 64;
/// Answers one survey keeps (nodes in a cluster).
pub(crate) const MAX_ANSWERS: usize = 1024;
/// Answers a node sends at once; a survey past it gets no answer from this node.
pub(crate) const MAX_SENDING: usize = 64;
/// Longest frame header (`s NODE ID\n`).
const MAX_HEADER: usize = 64;

struct Pending {
    answers: Vec<Bytes>,
    arrived: Arc<Notify>,
}

/// This node's side of the bus.
pub(crate) struct Control {
    node: String,
    conn: Commands,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    sending: Arc<Semaphore>,
    op_timeout: Duration,
}

impl Control {
    pub(crate) fn new(conn: Commands, op_timeout: Duration) -> Self {
        Self {
            node: format!("{:016x}", rand::random::<u64>()),
            conn,
            next: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            sending: Arc::new(Semaphore::new(MAX_SENDING)),
            op_timeout,
        }
    }

    /// This node's own topic.
    pub(crate) fn topic(&self) -> String {
        format!("{ALL}:{}", self.node)
    }

    /// The frame for a control message.
    pub(crate) fn control_frame(message: &[u8]) -> Result<Vec<u8>, BrokerError> {
        if message.len() > MAX_CONTROL_SIZE {
            return Err(BrokerError::Limit("control message size".into()));
        }
        let mut frame = Vec::with_capacity(1 + message.len());
        frame.push(b'c');
        frame.extend_from_slice(message);
        Ok(frame)
    }

    /// Registers a survey; returns its frame and the waiter for its answers.
    pub(crate) fn begin(
        self: &Arc<Self>,
        question: &[u8],
    ) -> Result<(Vec<u8>, Waiter), BrokerError> {
        if question.len() > MAX_CONTROL_SIZE {
            return Err(BrokerError::Limit("control message size".into()));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let arrived = Arc::new(Notify::new());
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                return Err(BrokerError::Limit("surveys in flight".into()));
            }
            let answers = Vec::new();
            pending.insert(
                id,
                Pending {
                    answers,
                    arrived: arrived.clone(),
                },
            );
        }
        let mut frame = format!("s {} {id}\n", self.node).into_bytes();
        frame.extend_from_slice(question);
        let waiter = Waiter {
            control: self.clone(),
            id,
            arrived,
        };
        Ok((frame, waiter))
    }

    /// A frame from `herald:{ctl}` or this node's topic.
    pub(crate) fn deliver(
        self: &Arc<Self>,
        topic: &str,
        frame: &[u8],
        events: &Arc<dyn BrokerEvents>,
    ) {
        if frame.len() > MAX_CONTROL_SIZE + MAX_HEADER {
            events.control_malformed();
            return;
        }
        let handled = if topic == ALL {
            match frame.split_first() {
                Some((b'c', message)) => {
                    events.control(message);
                    true
                }
                Some((b's', rest)) => self.answer(rest, events),
                _ => false,
            }
        } else {
            self.answered(frame)
        };
        if !handled {
            events.control_malformed();
        }
    }

    /// Answers a survey (`" NODE ID\n" + question`) from another node, or this one.
    fn answer(&self, rest: &[u8], events: &Arc<dyn BrokerEvents>) -> bool {
        let Some((header, question)) = split_header(rest) else {
            return false;
        };
        let mut words = header.split(' ').filter(|w| !w.is_empty());
        let (Some(node), Some(id), None) = (words.next(), words.next(), words.next()) else {
            return false;
        };
        if node.len() > 32
            || !node.bytes().all(|b| b.is_ascii_hexdigit())
            || id.parse::<u64>().is_err()
        {
            return false;
        }
        let Some(answer) = events.survey(question) else {
            return true;
        };
        if answer.len() > MAX_CONTROL_SIZE {
            tracing::warn!(
                bytes = answer.len(),
                "survey answer over the size bound dropped"
            );
            return true;
        }
        let Ok(permit) = self.sending.clone().try_acquire_owned() else {
            tracing::warn!("too many survey answers in flight: one dropped");
            return true;
        };
        let mut frame = format!("a {id}\n").into_bytes();
        frame.extend_from_slice(&answer);
        let topic = format!("{ALL}:{node}");
        let mut conn = self.conn.clone();
        let timeout = self.op_timeout;
        tokio::spawn(async move {
            let mut publish = redis::cmd("PUBLISH");
            publish.arg(&topic).arg(frame);
            let sent = tokio::time::timeout(timeout, publish.query_async::<u64>(&mut conn)).await;
            if !matches!(sent, Ok(Ok(_))) {
                tracing::debug!(topic, "survey answer not sent");
            }
            drop(permit);
        });
        true
    }

    /// An answer (`"a ID\n" + answer`) to one of this node's surveys. One to a survey that
    /// ended already is not malformed: it came late.
    fn answered(&self, frame: &[u8]) -> bool {
        let Some((b'a', rest)) = frame.split_first() else {
            return false;
        };
        let Some((header, answer)) = split_header(rest) else {
            return false;
        };
        let Ok(id) = header.trim().parse::<u64>() else {
            return false;
        };
        if let Some(pending) = lock(&self.pending).get_mut(&id)
            && pending.answers.len() < MAX_ANSWERS
        {
            pending.answers.push(Bytes::copy_from_slice(answer));
            pending.arrived.notify_one();
        }
        true
    }
}

/// Waits for one survey's answers; dropping it forgets the survey.
pub(crate) struct Waiter {
    control: Arc<Control>,
    id: u64,
    arrived: Arc<Notify>,
}

impl Waiter {
    /// The answers once `expected` arrived, or those that arrived within `timeout`.
    pub(crate) async fn wait(self, expected: usize, timeout: Duration) -> Vec<Bytes> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let have = lock(&self.control.pending)
                .get(&self.id)
                .map_or(0, |p| p.answers.len());
            if have >= expected.min(MAX_ANSWERS) {
                break;
            }
            if tokio::time::timeout_at(deadline, self.arrived.notified())
                .await
                .is_err()
            {
                tracing::debug!(
                    have,
                    expected,
                    "survey timed out: answering with what arrived"
                );
                break;
            }
        }
        lock(&self.control.pending)
            .remove(&self.id)
            .map(|p| p.answers)
            .unwrap_or_default()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.control.pending).remove(&self.id);
    }
}

/// `" HEADER\n" + rest` (leading spaces allowed) split at the first newline; the header must
/// be short ASCII.
fn split_header(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let end = bytes.iter().take(MAX_HEADER).position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..end]).ok()?;
    Some((header, &bytes[end + 1..]))
}

// A poisoned lock means a panic elsewhere already; the map stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
