//! A user's connections over every node (`limits.max_connections_per_user`): one sorted set
//! per user (`herald:n:USER`) of client ids scored by expiry, changed by `connections.lua`
//! (check and add in one atomic step). Each node refreshes the connections it holds with its
//! presence members, so a crashed node's connections expire after a member lifetime.

use redis::Script;
use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

const CODE: &str = include_str!("lua/connections.lua");
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CODE));

/// The key of `user`'s connections.
pub(crate) fn key(user: &str) -> String {
    format!("herald:n:{user}")
}

/// The script call that counts `client` unless `user` holds `limit`.
pub(crate) fn add(
    user: &str,
    client: &str,
    limit: usize,
    lifetime_ms: u64,
) -> redis::ScriptInvocation<'static> {
    let mut call = SCRIPT.key(key(user));
    call.arg("add").arg(lifetime_ms).arg(limit).arg(client);
    call
}

/// The script call that stops counting `client`.
pub(crate) fn remove(
    user: &str,
    client: &str,
    lifetime_ms: u64,
) -> redis::ScriptInvocation<'static> {
    let mut call = SCRIPT.key(key(user));
    call.arg("remove").arg(lifetime_ms).arg(client);
    call
}

/// The script call that refreshes `user`'s connections `clients` (one at a time, on a
/// cluster, where a pipeline goes to one shard).
pub(crate) fn refresh_one(
    user: &str,
    clients: &[String],
    lifetime_ms: u64,
) -> redis::ScriptInvocation<'static> {
    let mut call = SCRIPT.key(key(user));
    call.arg("refresh").arg(lifetime_ms);
    for client in clients {
        call.arg(client);
    }
    call
}

/// One pipeline that refreshes every connection in `held` (loading the script first, in
/// case Redis lost its cache).
pub(crate) fn refresh(held: &[(String, Vec<String>)], lifetime_ms: u64) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("SCRIPT").arg("LOAD").arg(CODE).ignore();
    for (user, clients) in held {
        pipe.cmd("EVALSHA")
            .arg(SCRIPT.get_hash())
            .arg(1)
            .arg(key(user))
            .arg("refresh")
            .arg(lifetime_ms);
        for client in clients {
            pipe.arg(client);
        }
        pipe.ignore();
    }
    pipe
}

/// The connections this node counted, by user.
#[derive(Debug, Default)]
pub(crate) struct Held {
    users: Mutex<HashMap<String, HashSet<String>>>,
}

impl Held {
    pub(crate) fn add(&self, user: &str, client: &str) {
        lock(&self.users)
            .entry(user.to_owned())
            .or_default()
            .insert(client.to_owned());
    }

    pub(crate) fn remove(&self, user: &str, client: &str) {
        let mut users = lock(&self.users);
        if let Some(clients) = users.get_mut(user) {
            clients.remove(client);
            if clients.is_empty() {
                users.remove(user);
            }
        }
    }

    /// Every user with connections here, and their client ids.
    pub(crate) fn snapshot(&self) -> Vec<(String, Vec<String>)> {
        lock(&self.users)
            .iter()
            .map(|(user, clients)| (user.clone(), clients.iter().cloned().collect()))
            .collect()
    }
}

// A poisoned lock means a panic elsewhere already; the set stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
