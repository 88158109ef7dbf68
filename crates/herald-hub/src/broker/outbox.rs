//! The webhook outbox: which cluster-level events happened, decided once for the whole
//! cluster, and kept until they were delivered.
//!
//! Each node tells its broker when it starts or stops *holding* a [`Tracked`] thing (a user
//! with a connection here, a channel with a subscriber here, a user in a channel's presence
//! here) with [`Broker::track`](super::Broker::track). The broker keeps, per thing, the set of
//! nodes that hold it, and appends one event to the outbox when that set becomes non-empty
//! (`user_online`, `channel_occupied`, `member_added`) or stays empty for the grace delay
//! (`user_offline`, `channel_vacated`, `member_removed`). A thing held again within the grace
//! delay produces no event at all, so a quick reconnect is invisible to the backend.
//!
//! A node that stops refreshing its liveness ([`Broker::outbox_lead`](super::Broker::outbox_lead),
//! called every tick) is taken as dead after [`OutboxPolicy::node_life`]: what it held is
//! released as if it had stopped holding it. Exactly one node at a time holds the lease that
//! lets it sweep and deliver; it reads the oldest events ([`Broker::outbox_read`](super::Broker::outbox_read)),
//! delivers them, and only then removes them ([`Broker::outbox_ack`](super::Broker::outbox_ack)).
//! A leader that dies mid-delivery leaves the events in place for the next one: delivery is at
//! least once, in outbox order, and every event carries its outbox id so a receiver can drop
//! a repeat.

use bytes::Bytes;
use std::time::Duration;

/// What a cluster tracks for webhooks; a thing is held while any node holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tracked {
    /// A user with at least one connection (`user_online` / `user_offline`).
    User(String),
    /// A channel with at least one subscriber (`channel_occupied` / `channel_vacated`).
    Channel(String),
    /// A user with at least one connection in a presence channel (`member_added` /
    /// `member_removed`).
    Member {
        /// The channel.
        channel: String,
        /// The user.
        user: String,
    },
}

impl Tracked {
    /// The thing as one string (`u:USER`, `c:CHANNEL`, `m:CHANNEL` NUL `USER`): how a broker
    /// keys it. Channel names hold no NUL, so the encoding is unambiguous.
    pub fn encode(&self) -> String {
        match self {
            Self::User(user) => format!("u:{user}"),
            Self::Channel(channel) => format!("c:{channel}"),
            Self::Member { channel, user } => format!("m:{channel}\0{user}"),
        }
    }

    /// The thing [`encode`](Self::encode) made, or `None` for a string it cannot have made.
    pub fn decode(encoded: &str) -> Option<Self> {
        let (kind, rest) = encoded.split_at_checked(2)?;
        match kind {
            "u:" => Some(Self::User(rest.to_owned())),
            "c:" => Some(Self::Channel(rest.to_owned())),
            "m:" => {
                let (channel, user) = rest.split_once('\0')?;
                Some(Self::Member {
                    channel: channel.to_owned(),
                    user: user.to_owned(),
                })
            }
            _ => None,
        }
    }

    /// The event's name when the thing became held (`true`) or stopped being held.
    pub fn event_name(&self, held: bool) -> &'static str {
        match (self, held) {
            (Self::User(_), true) => "user_online",
            (Self::User(_), false) => "user_offline",
            (Self::Channel(_), true) => "channel_occupied",
            (Self::Channel(_), false) => "channel_vacated",
            (Self::Member { .. }, true) => "member_added",
            (Self::Member { .. }, false) => "member_removed",
        }
    }
}

/// One event in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxEvent {
    /// A tracked thing became held (`true`) or was released for the grace delay (`false`).
    Tracked(Tracked, bool),
    /// An event the hub made itself (a publication), as JSON object text.
    Raw(Bytes),
}

/// An event with its place in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Unique in the outbox, growing in outbox order (`MILLISECONDS-SEQUENCE`).
    pub id: String,
    /// When it entered the outbox, in milliseconds since the Unix epoch (broker time).
    pub time_ms: u64,
    /// The event.
    pub event: OutboxEvent,
}

/// How the outbox behaves; the same on every node of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// How long a released thing must stay released before its event is emitted.
    pub grace: Duration,
    /// Most events the outbox holds; an event past it is dropped (and reported).
    pub max_events: usize,
    /// How long a node counts as alive after its last [`Broker::outbox_lead`](super::Broker::outbox_lead).
    pub node_life: Duration,
    /// How long the delivery lease lasts unless its holder renews it.
    pub lease: Duration,
}

/// What one call put in the outbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Events appended.
    pub queued: u64,
    /// Events dropped because the outbox held [`OutboxPolicy::max_events`].
    pub dropped: u64,
}

impl std::ops::AddAssign for Appended {
    fn add_assign(&mut self, other: Self) {
        self.queued += other.queued;
        self.dropped += other.dropped;
    }
}

/// What [`Broker::outbox_lead`](super::Broker::outbox_lead) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lead {
    /// Whether this node holds the delivery lease (and swept).
    pub leader: bool,
    /// What the sweep put in the outbox.
    pub appended: Appended,
    /// Events waiting in the outbox now.
    pub waiting: u64,
    /// Whether the broker did not count this node as alive before this call (its first
    /// call, or it was taken as dead and what it held was released): the node must track
    /// again everything it holds.
    pub rejoined: bool,
}
