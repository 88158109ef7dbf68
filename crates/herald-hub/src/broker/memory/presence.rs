//! Each channel's presence on one node: its members, found by client id.
//!
//! A member is its `ClientInfo` alone, hashed and compared by its client id: a map from the
//! id to the info would hold the id twice (a second `String` and 24 more bytes a slot), on
//! every connection of a channel that tracks presence.

use herald_hub_protocol::ClientInfo;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Members by channel.
#[derive(Debug, Default)]
pub(super) struct Presence(HashMap<String, HashSet<Member>>);

impl Presence {
    /// Adds `info` to `channel` (replacing the member with its client id, if any).
    pub(super) fn add(&mut self, channel: &str, info: ClientInfo) {
        match self.0.get_mut(channel) {
            Some(members) => {
                members.replace(Member(info));
            }
            None => {
                self.0
                    .insert(channel.to_owned(), HashSet::from([Member(info)]));
            }
        }
    }

    /// Removes `client` from `channel`; returns whether it was a member. The channel's last
    /// member out frees its set.
    pub(super) fn remove(&mut self, channel: &str, client: &str) -> bool {
        let Some(members) = self.0.get_mut(channel) else {
            return false;
        };
        let removed = members.remove(client);
        if members.is_empty() {
            self.0.remove(channel);
        }
        removed
    }

    /// `channel`'s members, by client id.
    pub(super) fn members(&self, channel: &str) -> Vec<ClientInfo> {
        let mut members: Vec<ClientInfo> = self
            .0
            .get(channel)
            .map(|m| m.iter().map(|m| m.0.clone()).collect())
            .unwrap_or_default();
        members.sort_by(|a, b| a.client.cmp(&b.client));
        members
    }
}

/// A presence member: equal to another, and found, by its client id.
#[derive(Debug)]
struct Member(ClientInfo);

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.0.client == other.0.client
    }
}

impl Eq for Member {}

impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes: `Borrow<str>` requires the same hash for the same id.
        self.0.client.as_str().hash(state);
    }
}

impl Borrow<str> for Member {
    fn borrow(&self) -> &str {
        &self.0.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(client: &str, user: &str) -> ClientInfo {
        ClientInfo {
            client: client.into(),
            user: user.into(),
        }
    }

    #[test]
    fn a_member_is_one_per_client_id_and_the_last_one_out_frees_the_channel() {
        let mut presence = Presence::default();
        presence.add("room", info("c2", "u2"));
        presence.add("room", info("c1", "old"));
        presence.add("room", info("c1", "u1"));
        let members = presence.members("room");
        assert_eq!(members.len(), 2);
        assert_eq!(
            (members[0].client.as_str(), members[0].user.as_str()),
            ("c1", "u1")
        );
        assert_eq!(members[1].client, "c2");
        assert!(presence.remove("room", "c1"));
        assert!(!presence.remove("room", "c1"));
        assert!(!presence.remove("elsewhere", "c2"));
        assert!(presence.remove("room", "c2"));
        assert!(presence.0.is_empty());
        assert!(presence.members("room").is_empty());
    }
}
