//! The broker: where publications get their offsets, where history lives, and how every node
//! hears every publication.
//!
//! A [`Broker`] serves one node. The node registers its [`BrokerEvents`] once with
//! [`Broker::start`], then calls [`Broker::subscribe`] for each channel it has local
//! subscribers for, and receives every publication on those channels through
//! [`BrokerEvents::publication`], whichever node published it.
//!
//! # Invariants every implementation keeps
//! - **Atomic publish.** Assigning the offset, appending to history and handing the
//!   publication to fan-out happen as one step per channel: no reader of history sees
//!   offset `n + 1` before offset `n`, and fan-out of one channel follows offset order.
//! - **Offsets grow by one** per publication within an epoch, starting at 1.
//! - **An epoch changes whenever history is lost** (expired, evicted, broker restarted empty),
//!   so a position from before the loss is never mistaken for one after it.
//! - **Subscribe before read.** When [`Broker::subscribe`] returns, every later publication
//!   on the channel reaches [`BrokerEvents::publication`]; a node reads history only after
//!   that, so the seam between history and live delivery has no gap.
//! - **Reads create nothing.** [`Broker::history`], [`Broker::presence`],
//!   [`Broker::subscribe`], [`Broker::unsubscribe`] and [`Broker::presence_remove`] leave no
//!   state behind for a channel that was never published to: only a publish creates a
//!   channel's stream, so unique channel names read by clients cost the broker nothing.
//! - **A channel without a stream reads as offset 0 in the vacant epoch.** The broker keeps
//!   one *vacant epoch* for every channel that has no stream (never published, or its stream
//!   was lost), or one per fixed group of channels (the Redis broker: per Redis Cluster hash
//!   slot, so that one shard keeps it with the channels' keys; the memory broker: per group
//!   of a hash of the name). It is never the epoch of a stream, and it is replaced whenever
//!   the broker creates a stream for any channel of its group.
//! - **A new stream names the vacant epoch it replaced** ([`History::vacant_before`]). A
//!   position `(V, 0)` read while the channel had no stream continues into the stream whose
//!   `vacant_before` is `V`: no stream of the channel can have come and gone in between, as
//!   creating one would have replaced `V`. So a client that subscribed before a channel's
//!   first publication recovers that stream from offset 1, while a position read before a
//!   stream that was since lost never continues into a later one. A stream started over in
//!   place after a loss, or after a Redis failover (whose replica may lack what the old
//!   master acknowledged), names none. A broker may also replace the vacant epoch at other
//!   times (the Redis broker when Redis lost its copy, or after a failover); that only costs
//!   a `recovered: false`.
//!
//! # The control bus
//! Besides channels, a broker carries the hub's own messages between nodes (the server API):
//! [`Broker::control`] hands an opaque message to [`BrokerEvents::control`] on every node,
//! this one included; [`Broker::survey`] asks every node a question
//! ([`BrokerEvents::survey`]) and gathers the answers, waiting for every node it knows of up
//! to a timeout. The hub encodes and checks the bytes; a broker only bounds them
//! ([`MAX_CONTROL_SIZE`]) and drops what does not fit.
//!
//! # Connections per user
//! [`Broker::connection_add`] counts a user's connections over every node and refuses one past
//! a limit, atomically; [`Broker::connection_remove`] releases it. A node that stops without
//! releasing its connections loses them after a while (the Redis broker expires them unless
//! their node refreshes them).
//!
//! # The webhook outbox
//! [`Broker::track`], [`Broker::outbox_push`], [`Broker::outbox_lead`], [`Broker::outbox_read`]
//! and [`Broker::outbox_ack`] decide the cluster's webhook events once for all nodes and keep
//! them until delivered: see [`Tracked`] for the rules.
//!
//! # Bounds
//! A broker may refuse a publication that would exceed a configured bound with
//! [`BrokerError::Limit`]; the [`MemoryBroker`] documents its policy.

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;
mod outbox;

pub use memory::MemoryBroker;
pub use outbox::{Appended, Lead, OutboxEntry, OutboxEvent, OutboxPolicy, Tracked};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use herald_hub_protocol::{ClientInfo, StreamPosition};
use std::sync::Arc;
use std::time::Duration;

/// The largest control message, survey or survey answer a broker carries, in bytes; larger
/// ones are refused when sent and dropped when received.
pub const MAX_CONTROL_SIZE: usize = 1 << 20;

/// What a publication carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// JSON text (protocol mode, HTTP API), as the hub parsed it: pushed as is. A broker
    /// hands it back byte for byte; a history reply or recovery whose data is not JSON
    /// fails as [`BrokerError::Internal`] (error 100).
    Json(Bytes),
    /// UTF-8 text from a plain-mode client: a JSON string in protocol mode.
    Text(Bytes),
    /// Bytes from a plain-mode client: base64 in protocol mode.
    Binary(Bytes),
}

impl Payload {
    /// The raw bytes.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Self::Json(b) | Self::Text(b) | Self::Binary(b) => b,
        }
    }

    /// The payload's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

/// One publication in a channel's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// Its offset (1 for the first in an epoch).
    pub offset: u64,
    /// The data.
    pub payload: Payload,
    /// The publisher: its connection id and user id, when it was a connection.
    pub publisher: Option<ClientInfo>,
}

/// A channel's retained history, or a part of it.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The channel's current position: the last offset assigned and the epoch.
    pub position: StreamPosition,
    /// Retained publications after the requested offset, oldest first (newest first for a
    /// [`HistoryQuery::reverse`] read).
    pub publications: Vec<Arc<Publication>>,
    /// The vacant epoch the channel's stream replaced when it was created for a channel
    /// without one: a position `(that epoch, 0)` continues at the stream's offset 1. `None`
    /// for a channel without a stream, or a stream started over after a loss.
    pub vacant_before: Option<String>,
}

/// Which part of history to read.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Only publications with an offset above this one (0: from the oldest retained).
    pub after: u64,
    /// At most this many (the oldest first, or with `reverse` the newest); 0 reads only the
    /// position.
    pub limit: usize,
    /// Read from the newest end: the newest `limit` publications above `after`, newest
    /// first, without reading the rest of the stream.
    pub reverse: bool,
}

/// What a channel keeps, given with every publish (a channel's namespace decides it, so the
/// broker learns it at publish time). A channel's stream keeps the retention of its last
/// publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Publications kept (0: none; offsets and the epoch are kept all the same).
    pub size: usize,
    /// How long the stream lives after its last publish: its publications, and then its
    /// offset and epoch. Must not be 0.
    pub ttl: Duration,
}

impl Default for Retention {
    /// `history.size` and `history.ttl`'s defaults: 100 publications, 5 minutes.
    fn default() -> Self {
        Self::from(&crate::config::HistoryConfig::default())
    }
}

impl From<&crate::config::HistoryConfig> for Retention {
    fn from(history: &crate::config::HistoryConfig) -> Self {
        Self {
            size: history.size,
            ttl: history.ttl,
        }
    }
}

/// The broker's state as a node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Publishing and fan-out work.
    Ok,
    /// The broker is unreachable: publishes fail, fan-out may miss publications.
    Degraded,
}

/// A broker failure. A failed publish published nothing, except with
/// [`BrokerError::OutcomeUnknown`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker cannot be reached now, and nothing was done; retry later (reply 109,
    /// HTTP 503). Only this variant means the broker is down.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker answered something unexpected, or refused the command with an error reply
    /// (reply 100, HTTP 500). It is reachable: this does not make its health degraded.
    #[error("broker failure: {0}")]
    Internal(String),
    /// A publish would exceed a configured bound, named in the string (`history.max_channels`,
    /// `history.max_bytes`); nothing was published. The client sees error 106 (HTTP 507);
    /// retrying succeeds only once history expired or was trimmed.
    #[error("broker limit reached: {0}")]
    Limit(String),
    /// The broker did not answer in time after the command may have taken effect: a publish
    /// may or may not have been stored and fanned out (reply 111, HTTP 504). Read history
    /// before retrying, or the publication may appear twice.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl BrokerError {
    /// The `kind` label of the `broker_errors` metric: `unavailable`, `internal`, `limit` or
    /// `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::Limit(_) => "limit",
            Self::OutcomeUnknown(_) => "unknown",
        }
    }
}

/// What a broker retains on this node, for the `history_channels` and `history_bytes` gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Channels with a stream (an offset and an epoch, maybe history).
    pub channels: usize,
    /// Payload bytes of the retained publications over all channels.
    pub bytes: usize,
}

/// How a broker hands events to its node.
pub trait BrokerEvents: Send + Sync + 'static {
    /// A publication on a channel this node subscribed to, in offset order per channel.
    fn publication(&self, channel: &str, epoch: &Arc<str>, publication: Arc<Publication>);
    /// A connection (on any node) joined a channel this node subscribed to.
    fn join(&self, channel: &str, info: &ClientInfo);
    /// A connection (on any node) left a channel this node subscribed to.
    fn leave(&self, channel: &str, info: &ClientInfo);
    /// Fan-out may have missed publications (lost broker connection): every live
    /// subscriber should recover from history.
    fn lost(&self);
    /// A control message from [`Broker::control`] on some node (this one included): the
    /// bytes as sent, at most [`MAX_CONTROL_SIZE`]. The hub parses them; malformed ones are
    /// its to count and drop.
    fn control(&self, message: &[u8]) {
        let _ = message;
    }
    /// A control frame arrived that the broker itself could not read (or that was over
    /// [`MAX_CONTROL_SIZE`]): dropped, to be counted.
    fn control_malformed(&self) {}
    /// A question from [`Broker::survey`] on some node (this one included): this node's
    /// answer, or `None` to give none (a malformed question).
    fn survey(&self, question: &[u8]) -> Option<Bytes> {
        let _ = question;
        None
    }
}

/// A broker. See the module docs for the invariants.
pub trait Broker: Send + Sync + 'static {
    /// Registers the node's event handler; called once, before anything else.
    fn start(&self, events: Arc<dyn BrokerEvents>);

    /// Publishes: assigns the next offset, appends to history (keeping what `retention`
    /// says), fans out to every node. The first publish to a channel without a stream creates
    /// it, in a new epoch.
    ///
    /// # Errors
    /// [`BrokerError`]; then nothing was published, except with
    /// [`BrokerError::OutcomeUnknown`].
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        payload: Payload,
        publisher: Option<ClientInfo>,
        retention: Retention,
    ) -> BoxFuture<'a, Result<StreamPosition, BrokerError>>;

    /// Reads history: the oldest `query.limit` publications above `query.after`, or with
    /// `query.reverse` the newest, newest first. A channel without a stream reads as offset 0
    /// in the vacant epoch, with no publications; the read creates nothing.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn history<'a>(
        &'a self,
        channel: &'a str,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<History, BrokerError>>;

    /// Starts delivering the channel's publications to this node's events; returns once
    /// delivery is established.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Stops delivering the channel to this node.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn unsubscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Adds a member to a channel's presence and announces the join.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn presence_add<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Removes a member from a channel's presence and announces the leave.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn presence_remove<'a>(
        &'a self,
        channel: &'a str,
        info: ClientInfo,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Every member of a channel, on every node.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<ClientInfo>, BrokerError>>;

    /// Hands `message` (at most [`MAX_CONTROL_SIZE`] bytes) to [`BrokerEvents::control`] on
    /// every node, this one included. Delivery is at most once, to the nodes reachable now.
    ///
    /// # Errors
    /// [`BrokerError::Limit`] for a message over the size bound, [`BrokerError::Unavailable`]
    /// when it could not be sent.
    fn control<'a>(&'a self, message: Bytes) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Asks every node [`BrokerEvents::survey`] with `question` and returns the answers that
    /// arrived: one per node once every node it knows of answered, or those that arrived
    /// within `timeout`.
    ///
    /// # Errors
    /// [`BrokerError::Limit`] for a question over [`MAX_CONTROL_SIZE`] or too many surveys in
    /// flight, [`BrokerError::Unavailable`] when it could not be sent.
    fn survey<'a>(
        &'a self,
        question: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<Bytes>, BrokerError>>;

    /// Counts connection `client` of `user` over every node, unless the user holds `limit`
    /// already (a `client` counted before is counted once). Returns whether it was counted.
    ///
    /// # Errors
    /// [`BrokerError`]; then nothing was counted.
    fn connection_add<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<bool, BrokerError>>;

    /// Stops counting connection `client` of `user`.
    ///
    /// # Errors
    /// [`BrokerError`]; a broker that expires counts forgets it later all the same.
    fn connection_remove<'a>(
        &'a self,
        user: &'a str,
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Records that node `node` now holds `thing` (`held`) or no longer does. The first
    /// holder over all nodes appends its "held" event to the outbox, unless the thing was
    /// released less than `policy.grace` ago (then nothing is emitted, and the pending
    /// release is cancelled); the last one out starts the grace delay, after which the leader's
    /// sweep emits the "released" event if nobody holds it again. Returns what was appended
    /// and what was dropped because the outbox held `policy.max_events`.
    ///
    /// # Errors
    /// [`BrokerError`]; then nothing was recorded.
    fn track<'a>(
        &'a self,
        node: &'a str,
        thing: &'a Tracked,
        held: bool,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>>;

    /// Appends an event the hub made (JSON object text) to the outbox; it is dropped when the
    /// outbox is full.
    ///
    /// # Errors
    /// [`BrokerError`]; then nothing was appended.
    fn outbox_push<'a>(
        &'a self,
        event: Bytes,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>>;

    /// Marks `node` alive for `policy.node_life`, and takes or renews the delivery lease for
    /// `policy.lease` when no other live node holds it. The lease holder then sweeps: it
    /// releases what dead nodes held and emits the releases whose grace delay is over.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn outbox_lead<'a>(
        &'a self,
        node: &'a str,
        policy: OutboxPolicy,
    ) -> BoxFuture<'a, Result<Lead, BrokerError>>;

    /// The oldest `max` events in the outbox, oldest first.
    ///
    /// # Errors
    /// [`BrokerError`].
    fn outbox_read<'a>(
        &'a self,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<OutboxEntry>, BrokerError>>;

    /// Removes delivered events from the outbox.
    ///
    /// # Errors
    /// [`BrokerError`]; the events stay and are delivered again.
    fn outbox_ack<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Whether the broker is reachable.
    fn health(&self) -> Health;

    /// Periodic upkeep (the hub calls it every few seconds): drop expired state.
    fn maintain(&self) {}

    /// What the broker retains on this node, when it keeps history here (the memory broker);
    /// `None` when history lives elsewhere.
    fn retained(&self) -> Option<Retained> {
        None
    }
}
