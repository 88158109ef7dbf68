//! The webhook outbox in Redis: `outbox.lua` decides every event in one atomic step, the
//! stream `herald:{o}:out` holds them until the leader delivered them.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `herald:{o}:out` | stream | events: `k` (encoded thing), `h` (`1` held, `0` released), or `j` (JSON) |
//! | `herald:{o}:nodes` | sorted set | node ids scored by the end of their life (ms) |
//! | `herald:{o}:pending` | sorted set | released things scored by the end of their grace delay |
//! | `herald:{o}:lease` | string | the delivering node's id, expiring with its lease |
//! | `herald:{o}:k:THING` | set | the nodes that hold THING |
//! | `herald:{o}:h:NODE` | set | the things NODE holds |
//!
//! The script names the per-thing and per-node keys itself; every key carries the hash tag
//! `{o}`, so on a Redis Cluster the whole outbox lives in one slot (one shard) and each step,
//! the dead-node sweep included, stays one atomic script there.

use herald_hub::broker::{Appended, Lead, OutboxEntry, OutboxEvent, OutboxPolicy, Tracked};
use redis::{Script, Value};
use std::sync::LazyLock;
use std::time::Duration;

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/outbox.lua")));

/// The outbox stream.
pub(crate) const OUT: &str = "herald:{o}:out";
const NODES: &str = "herald:{o}:nodes";
const PENDING: &str = "herald:{o}:pending";
const LEASE: &str = "herald:{o}:lease";
const PREFIX: &str = "herald:{o}:";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn call(op: &str, policy: OutboxPolicy) -> redis::ScriptInvocation<'static> {
    let mut call = SCRIPT.key(OUT);
    call.key(NODES)
        .key(PENDING)
        .key(LEASE)
        .arg(PREFIX)
        .arg(op)
        .arg(policy.max_events)
        .arg(millis(policy.grace));
    call
}

/// The script call for [`Broker::track`](herald_hub::broker::Broker::track).
pub(crate) fn track(
    node: &str,
    thing: &Tracked,
    held: bool,
    policy: OutboxPolicy,
) -> redis::ScriptInvocation<'static> {
    let mut call = call("track", policy);
    call.arg(node).arg(thing.encode()).arg(u8::from(held));
    call
}

/// The script call for [`Broker::outbox_push`](herald_hub::broker::Broker::outbox_push).
pub(crate) fn push(event: &[u8], policy: OutboxPolicy) -> redis::ScriptInvocation<'static> {
    let mut call = call("push", policy);
    call.arg(event);
    call
}

/// The script call for [`Broker::outbox_lead`](herald_hub::broker::Broker::outbox_lead).
pub(crate) fn lead(node: &str, policy: OutboxPolicy) -> redis::ScriptInvocation<'static> {
    let mut call = call("lead", policy);
    call.arg(node)
        .arg(millis(policy.node_life))
        .arg(millis(policy.lease));
    call
}

/// The track and push scripts' answer.
pub(crate) fn parse_appended(raw: &[u64]) -> Option<Appended> {
    match raw {
        [queued, dropped] => Some(Appended {
            queued: *queued,
            dropped: *dropped,
        }),
        _ => None,
    }
}

/// The lead script's answer.
pub(crate) fn parse_lead(raw: &[u64]) -> Option<Lead> {
    match raw {
        [leader, queued, dropped, waiting, rejoined] => Some(Lead {
            leader: *leader == 1,
            appended: Appended {
                queued: *queued,
                dropped: *dropped,
            },
            waiting: *waiting,
            rejoined: *rejoined == 1,
        }),
        _ => None,
    }
}

/// `XRANGE`'s answer as entries; an entry that is not one this broker wrote is skipped.
pub(crate) fn parse_range(raw: Value) -> Option<Vec<OutboxEntry>> {
    let Value::Array(entries) = raw else {
        return None;
    };
    let mut parsed = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(mut parts) = entry else {
            return None;
        };
        let (Some(Value::Array(fields)), Some(id)) = (parts.pop(), parts.pop()) else {
            return None;
        };
        let id: String = redis::from_redis_value(id).ok()?;
        let fields: Vec<Vec<u8>> = fields
            .into_iter()
            .map(redis::from_redis_value)
            .collect::<Result<_, _>>()
            .ok()?;
        let time_ms = id.split('-').next()?.parse().ok()?;
        if let Some(event) = event(&fields) {
            parsed.push(OutboxEntry { id, time_ms, event });
        }
    }
    Some(parsed)
}

fn event(fields: &[Vec<u8>]) -> Option<OutboxEvent> {
    match fields {
        [k, thing, h, held] if k == b"k" && h == b"h" => {
            let thing = Tracked::decode(std::str::from_utf8(thing).ok()?)?;
            Some(OutboxEvent::Tracked(thing, held == b"1"))
        }
        [j, json] if j == b"j" => Some(OutboxEvent::Raw(json.clone().into())),
        _ => None,
    }
}
