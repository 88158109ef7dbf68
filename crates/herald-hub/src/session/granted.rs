//! The channels the server subscribed a connection to (personal channel, `subs`, the server
//! API): granted by the server rather than by the token's patterns, so a `refresh` keeps them.

use std::collections::HashSet;
use std::sync::Arc;

/// A set of channels, allocated with its first: most connections never get one, and an
/// empty `HashSet` inline would cost each of them 48 bytes for its whole life.
#[derive(Debug, Default)]
#[expect(
    clippy::box_collection,
    reason = "the box is the point: 8 bytes inline for the many connections without a set"
)]
pub(super) struct Granted(Option<Box<HashSet<Arc<str>>>>);

impl Granted {
    pub(super) fn insert(&mut self, channel: Arc<str>) {
        self.0.get_or_insert_default().insert(channel);
    }

    pub(super) fn remove(&mut self, channel: &str) {
        if let Some(set) = &mut self.0 {
            set.remove(channel);
            if set.is_empty() {
                self.0 = None;
            }
        }
    }

    pub(super) fn contains(&self, channel: &str) -> bool {
        self.0.as_ref().is_some_and(|set| set.contains(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_held_from_insert_to_remove_and_the_last_removal_frees_the_set() {
        let mut granted = Granted::default();
        assert!(!granted.contains("news"));
        granted.insert("news".into());
        granted.insert("#u1".into());
        assert!(granted.contains("news") && granted.contains("#u1"));
        granted.remove("news");
        assert!(!granted.contains("news") && granted.contains("#u1"));
        granted.remove("#u1");
        assert!(granted.0.is_none());
    }
}
