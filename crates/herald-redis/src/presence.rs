//! Presence across nodes: members expire unless their node refreshes them.

use std::collections::HashMap;
use std::sync::Mutex;

/// Members this node holds in one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) channel: String,
    /// Client id and user id of each.
    pub(crate) members: Vec<(String, String)>,
}

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
    pub(crate) fn snapshot(&self) -> Vec<Held> {
        lock(&self.members)
            .iter()
            .map(|(channel, clients)| Held {
                channel: channel.clone(),
                members: clients
                    .iter()
                    .map(|(c, u)| (c.clone(), u.clone()))
                    .collect(),
            })
            .collect()
    }

    /// The members of `snapshot` this node no longer holds.
    pub(crate) fn missing(&self, snapshot: &[Held]) -> Vec<Held> {
        let now = lock(&self.members);
        snapshot
            .iter()
            .filter_map(|held| {
                let here = now.get(&held.channel);
                let members: Vec<(String, String)> = held
                    .members
                    .iter()
                    .filter(|(client, _)| !here.is_some_and(|h| h.contains_key(client)))
                    .cloned()
                    .collect();
                (!members.is_empty()).then(|| Held {
                    channel: held.channel.clone(),
                    members,
                })
            })
            .collect()
    }
}

// A poisoned lock means a panic elsewhere already; the member list stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lists_only_members_that_left_since_the_snapshot() {
        let local = Local::default();
        local.add("a", "c1", "u1");
        local.add("a", "c2", "u2");
        local.add("b", "c3", "u3");
        let snapshot = local.snapshot();
        local.remove("a", "c2");
        local.remove("b", "c3");
        local.add("b", "c4", "u4");
        let mut gone = local.missing(&snapshot);
        gone.sort_by(|x, y| x.channel.cmp(&y.channel));
        let expected = [("a", "c2", "u2"), ("b", "c3", "u3")].map(|(channel, c, u)| Held {
            channel: channel.into(),
            members: vec![(c.into(), u.into())],
        });
        assert_eq!(gone, expected);
    }
}
