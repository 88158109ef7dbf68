//! The memory broker's control bus and connection counts: one node, so a control message or a
//! survey reaches only this node's events, and a user's connections are counted here.

use super::{MemoryBroker, lock};
use crate::broker::{BrokerError, MAX_CONTROL_SIZE};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Each user's counted connections.
#[derive(Debug, Default)]
pub(super) struct Connections {
    users: Mutex<HashMap<String, HashSet<String>>>,
}

impl Connections {
    /// Counts `client` unless `user` holds `limit` others already.
    pub(super) fn add(&self, user: &str, client: &str, limit: usize) -> bool {
        let mut users = lock(&self.users);
        let held = users.entry(user.to_owned()).or_default();
        if held.contains(client) {
            return true;
        }
        if held.len() >= limit {
            if held.is_empty() {
                users.remove(user);
            }
            return false;
        }
        held.insert(client.to_owned());
        true
    }

    /// Stops counting `client`; a user with none left is forgotten.
    pub(super) fn remove(&self, user: &str, client: &str) {
        let mut users = lock(&self.users);
        if let Some(held) = users.get_mut(user) {
            held.remove(client);
            if held.is_empty() {
                users.remove(user);
            }
        }
    }
}

impl MemoryBroker {
    /// Hands `message` to this node's events.
    pub(super) fn control_now(&self, message: &Bytes) -> Result<(), BrokerError> {
        if message.len() > MAX_CONTROL_SIZE {
            return Err(BrokerError::Limit("control message size".into()));
        }
        if let Some(events) = self.events.get() {
            events.control(message);
        }
        Ok(())
    }

    /// This node's answer to `question`, if it gives one.
    pub(super) fn survey_now(&self, question: &Bytes) -> Result<Vec<Bytes>, BrokerError> {
        if question.len() > MAX_CONTROL_SIZE {
            return Err(BrokerError::Limit("control message size".into()));
        }
        Ok(self
            .events
            .get()
            .and_then(|events| events.survey(question))
            .filter(|answer| answer.len() <= MAX_CONTROL_SIZE)
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_at_the_limit_is_refused_until_one_connection_is_removed() {
        let c = Connections::default();
        assert!(c.add("u", "a", 2));
        assert!(c.add("u", "b", 2));
        assert!(
            c.add("u", "a", 2),
            "a connection counted already stays counted"
        );
        assert!(!c.add("u", "c", 2));
        assert!(c.add("v", "c", 2), "the limit is per user");
        c.remove("u", "a");
        assert!(c.add("u", "c", 2));
    }

    #[test]
    fn a_refused_user_with_no_connections_leaves_nothing_behind() {
        let c = Connections::default();
        assert!(!c.add("u", "a", 0));
        assert!(lock(&c.users).is_empty());
    }
}
