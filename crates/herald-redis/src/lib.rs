//! The Redis broker for the Herald hub: several `herald serve` nodes share channels, history,
//! offsets and presence through one Redis, with no sticky sessions.
//!
//! Start with [`RedisBroker::connect`] (or [`RedisBroker::connect_with`] and
//! [`RedisOptions`] for other timings), then hand the broker to
//! `herald_hub::Hub::with_broker`. This crate is not a Redis client (it uses the `redis`
//! crate). Redis comes in three shapes, by URL:
//!
//! - `redis://HOST[:PORT][/DB]` (`rediss://` for TLS): one server.
//! - `redis+cluster://HOST:PORT,HOST:PORT…`: a Redis Cluster, by seed nodes. Every key of a
//!   channel carries its slot's hash tag, so each script runs on the one shard owning the
//!   channel; fan-out is sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7), so a channel's
//!   traffic stays on its shard. The node re-SSUBSCRIBEs its channels when a shard's
//!   connection drops (failover) or a shard drops a subscription (its slot moved), and its
//!   subscribers recover meanwhile (4002, as for any lost pub/sub connection).
//! - `redis+sentinel://HOST:PORT,HOST:PORT…/MASTER[/DB]`: the master the Sentinels name
//!   MASTER. The node asks them every [`RedisOptions::check_every`] and, when they name
//!   another master, moves its command and pub/sub connections there (subscribers recover).
//!
//! # Failover and lost writes
//! Redis replicates asynchronously: publications a master acknowledged just before it died
//! may be missing on the replica that takes over, and the replica would reuse their offsets.
//! `publish.lua` stores the server's replication id (`master_replid`, which a promotion
//! changes) with the channel's epoch, and starts a new epoch when it differs: clients that
//! saw the lost offsets get `recovered: false`, never a different publication under an
//! offset they already hold.
//!
//! # How the [`Broker`](herald_hub::broker::Broker) invariants hold
//! - **Atomic publish.** `publish.lua` runs as one script: it creates the epoch if missing,
//!   increments the offset, appends to history, refreshes the TTLs and PUBLISHes the
//!   publication. Redis runs scripts one at a time, so no reader sees offset `n + 1` before
//!   `n`, and every node's pub/sub connection hears a channel in offset order.
//! - **Offsets grow by one** from 1: `HINCRBY` on the channel's meta hash.
//! - **The epoch changes when history is lost.** The epoch lives in the meta hash, which
//!   expires with the history; when `publish.lua` finds no epoch (expired, evicted, Redis
//!   restarted empty, never published), it stores a fresh random one (offered by the node,
//!   64 bits) and deletes any orphaned history stream, so old positions never match new
//!   history.
//! - **Subscribe before read.** [`Broker::subscribe`](herald_hub::broker::Broker::subscribe)
//!   returns after Redis confirmed the SUBSCRIBE on the node's pub/sub connection; history is
//!   read after that.
//! - **Reads create nothing.** `history.lua` creates no key for a channel; listing and
//!   removing presence members create no key; SUBSCRIBE is not a key. Only a publish and a
//!   presence add create a channel's keys.
//! - **The vacant epoch.** A channel without a meta hash reads as offset 0 in the epoch
//!   stored at its slot's `herald:{TAG}:v`, which `publish.lua` replaces with a fresh value
//!   (offered by the node) whenever it creates a stream in that slot, noting the replaced one
//!   in the new stream's meta hash (`b`): a client that read `(b, 0)` before the channel's
//!   first publish recovers the stream from offset 1. When that key is missing (a new or
//!   restarted Redis, or evicted) or was set under another replication id (a failover), the
//!   first read sets it, so reads of an empty channel agree with each other (a `history` then
//!   a `subscribe` that recovers from it) until a stream is created in its slot, and no
//!   position read from an old master continues into a stream of the new one. At most 16,384
//!   such keys exist, whatever clients read.
//!
//! # Redis keys
//! For a channel `C` (the name is used as is) in hash slot `S` (CRC16 of the whole name,
//! modulo 16384, as Redis Cluster computes it), `TAG` is a short decimal string that hashes to
//! `S` (the same for every channel of the slot), so that all of these hash to `S`:
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `herald:{TAG}:m:C` | hash | `top` (last offset), `epoch`, `r` (the server's replication id when the epoch began), `b` (the vacant epoch the stream replaced, empty for none) | the retention's TTL after the last publish |
//! | `herald:{TAG}:h:C` | stream | publications, entry id `OFFSET-0`, fields `k` (kind `j`/`t`/`b`), `c` (publisher client, empty for none), `u` (user), `d` (payload); `MAXLEN` the retention's size (exact) | with the meta hash |
//! | `herald:{TAG}:p:C` | sorted set | present client ids, scored by expiry (Redis server time, ms) | twice the member lifetime after the last add |
//! | `herald:{TAG}:u:C` | hash | client id → user id of present members | with the sorted set |
//! | `herald:{TAG}:c:C` | pub/sub topic (sharded on a cluster) | `p OFFSET EPOCH KIND CLIENTLEN USERLEN\n` + client, user, payload; `j`/`l CLIENTLEN USERLEN\n` + client, user for join/leave | — |
//! | `herald:{TAG}:v` | hash | the slot's vacant epoch `e`, and `r` the replication id it was set under | never |
//!
//! Earlier versions named these `herald:m:C` and so on, with one `herald:vacant`, and kept a
//! slot's vacant epoch in the string `herald:{TAG}:vacant`: a node of this version does not
//! read them (the old vacant strings, at most one per slot, can be deleted). Nothing there needs migrating (history is a bounded,
//! expiring buffer): old keys expire with their TTL, and clients recovering from old
//! positions get `recovered: false` once. The webhook outbox's keys carry the tag `{o}` (one
//! slot; see `outbox.rs`). For a user `U` with `limits.max_connections_per_user` set: `herald:n:U`, a sorted
//! set of its connections' client ids scored by expiry (Redis server time, ms), refreshed by
//! their nodes with the presence members and expiring twice the member lifetime after the
//! last change; `connections.lua` checks the limit and adds in one step.
//!
//! # The control bus
//! Every node's pub/sub connection also subscribes `herald:{ctl}` (control messages and
//! surveys to every node) and `herald:{ctl}:NODE` (answers to this node's surveys; NODE is a
//! random id per broker). A survey waits for as many answers as PUBLISH reported receivers
//! of the question, up to its timeout. See `control.rs` for the frames and their bounds. On a
//! cluster the bus stays on classic pub/sub, which reaches every shard: it is light (surveys
//! and control messages, not publications), and the tag `{ctl}` puts every node's
//! SUBSCRIBEs and every PUBLISH on one master, so PUBLISH's count of receivers counts every
//! node.
//!
//! Each publish carries the channel's [`Retention`](herald_hub::broker::Retention) (its
//! namespace's history size and TTL, passed to `publish.lua` as `MAXLEN` and `PEXPIRE`), so
//! nodes need no shared table of channel settings. The TTL applies to a channel as a whole
//! (refreshed by every publish), not to each publication: an active channel keeps its last
//! `size` publications.
//!
//! A reverse history read (`HistoryQuery::reverse`) is `XREVRANGE + FIRST COUNT n`: it reads
//! the newest `n` entries from the stream's end, whatever the stream's length.
//!
//! # Positions from clients
//! A client's `since` offset is any `u64`. The node builds the stream id to read from
//! (`OFFSET+1-0`) itself and passes it as a string; an offset no stream can reach (2^53 and
//! above: the scripts see numbers as doubles) reads only the position. Nothing a client sends
//! becomes a Redis error.
//!
//! # Cost
//! One publish is one round trip (`EVALSHA`; `EVAL` once after Redis lost its script cache)
//! running 7 commands in Redis: `INFO replication`, `HMGET`, `HINCRBY`, `XADD`, `PEXPIRE` ×2,
//! `PUBLISH` (`SPUBLISH` on a cluster) (4 more when it starts an epoch: `DEL`, `HSET`, and
//! `HMGET` and `HSET` of the vacant epoch; 5 in all with a retention of size 0). A history
//! read or a subscribe is one round trip each (a read of a channel without a stream runs
//! `INFO replication` too, to tell the vacant epoch of an old master).
//!
//! # Presence
//! Each node lists its members in the channel's sorted set with an expiry one member lifetime
//! ahead ([`RedisOptions::member_lifetime`], 30 s) and re-adds all of them every
//! [`RedisOptions::refresh_every`] (10 s), and at once when Redis answers again after failing:
//! one pipeline per 1,000 channels, so a slow cycle is one round trip (on a cluster, where a
//! pipeline goes to one shard, one call per channel, 64 at once), and a member that
//! expired or was swept while Redis stalled comes back (announced by a join) rather than being
//! lost for good. A removal (a member leaving, a connection no longer counted) waits for a
//! refresh in flight, and a refresh for the removals in flight, so a refresh never writes back
//! what a removal took away. Every presence operation first removes expired members and
//! announces their leave, so a crashed node's members disappear within about a lifetime (on the next presence
//! operation on the channel from any node).
//!
//! # Faults
//! Only failing to talk to Redis makes it unavailable:
//! - **Not reached** (connection refused, not connected): publish, history and presence fail
//!   with [`BrokerError::Unavailable`](herald_hub::broker::BrokerError::Unavailable) and
//!   [`health`](herald_hub::broker::Broker::health) reports `Degraded`.
//! - **No answer in time** ([`RedisOptions::op_timeout`], 3 s) or a connection dropped with a
//!   command on it: reads fail as unavailable, but a publish fails with
//!   [`BrokerError::OutcomeUnknown`](herald_hub::broker::BrokerError::OutcomeUnknown): the
//!   script may have run, so "nothing was published" would be a guess. Health is degraded
//!   until Redis answers again.
//! - **An error reply** (Redis refused the command): [`BrokerError::Internal`](herald_hub::broker::BrokerError::Internal);
//!   Redis is up, and health stays `Ok`.
//!
//! Commands reconnect by themselves (the `redis` crate's connection manager). When the
//! pub/sub connection ends, the node calls `BrokerEvents::lost` (the hub closes its
//! subscribers with 4002, and they recover from history), reconnects with backoff (100 ms
//! doubling to 5 s), re-subscribes every channel in use, and calls `lost` once more for anyone
//! who subscribed during the outage. Redis also ends a pub/sub connection that falls behind
//! (`client-output-buffer-limit pubsub`, 32 MB by default): that too is a lost connection,
//! turned into recovery rather than silent loss.
//!
//! On a cluster, a reply saying the slot is not served now (`CLUSTERDOWN`, `TRYAGAIN`,
//! `MASTERDOWN`), a demoted master's `READONLY` and a server still `LOADING` are
//! unavailability too: the command did not run, so a publish fails as unavailable (109) and
//! health is degraded until Redis answers again. The cluster client retries redirects
//! (`MOVED`, `ASK`) itself. Its push channel (the pub/sub side) is unbounded in this process;
//! what bounds it is Redis's own `client-output-buffer-limit pubsub`, as above.

mod broker;
mod control;
mod error;
mod fanout;
mod link;
mod options;
mod outbox;
mod pending;
mod presence;
mod slot;
mod target;
mod users;
mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use broker::RedisBroker;
pub use options::RedisOptions;
pub use pending::connect_or_wait;
