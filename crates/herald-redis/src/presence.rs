//! Presence across nodes: members expire unless their node refreshes them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a member stays listed without a refresh from its node.
pub(crate) const MEMBER_LIFETIME: Duration = Duration::from_secs(30);

/// How often a node refreshes its own members (a third of their lifetime).
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// This node's members: channel → client id → user id.
#[derive(Debug, Default)]
pub(crate) struct Local {
    members: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl Local {
    pub(crate) fn add(&self, channel: &str, client: &str, user: &str) {
        lock(&self.members)
            .entry(channel.to_owned())
            .or_default()
            .insert(client.to_owned(), user.to_owned());
    }

    pub(crate) fn remove(&self, channel: &str, client: &str) {
        let mut members = lock(&self.members);
        if let Some(clients) = members.get_mut(channel) {
            clients.remove(client);
            if clients.is_empty() {
                members.remove(channel);
            }
        }
    }

    /// Every channel with members here, and its members' client and user ids.
    pub(crate) fn snapshot(&self) -> Vec<(String, Vec<(String, String)>)> {
        lock(&self.members)
            .iter()
            .map(|(channel, clients)| {
                let clients = clients
                    .iter()
                    .map(|(c, u)| (c.clone(), u.clone()))
                    .collect();
                (channel.clone(), clients)
            })
            .collect()
    }
}

// A poisoned lock means a panic elsewhere already; the member list stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
