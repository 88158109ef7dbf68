//! The channels a session is subscribed to, with each one's live-delivery filter.

use crate::recovery::LiveFilter;
use std::sync::Arc;

/// A set of channels kept sorted by name in one vector, searched by bisection.
///
/// A session holds one to a few channels and at most `limits.max_subscriptions`, so a
/// vector costs what its entries do (48 bytes for one channel, allocated when the first
/// is added and freed when the last leaves), where a hash map spent 432 bytes on one entry.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    entries: Vec<(Arc<str>, LiveFilter)>,
}

impl Subscriptions {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, channel: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(c, _)| {
            // A broadcast's name is the hub's own `Arc`, the one stored here: equal without
            // reading either string.
            if std::ptr::eq(c.as_ptr(), channel.as_ptr()) && c.len() == channel.len() {
                std::cmp::Ordering::Equal
            } else {
                (**c).cmp(channel)
            }
        })
    }

    pub(crate) fn contains_key(&self, channel: &str) -> bool {
        self.find(channel).is_ok()
    }

    pub(crate) fn get_mut(&mut self, channel: &str) -> Option<&mut LiveFilter> {
        let i = self.find(channel).ok()?;
        Some(&mut self.entries[i].1)
    }

    /// The stored name of `channel` (shared with the hub's tables) and its filter.
    pub(crate) fn get_key_value(&self, channel: &str) -> Option<(&Arc<str>, &LiveFilter)> {
        let (c, f) = &self.entries[self.find(channel).ok()?];
        Some((c, f))
    }

    /// Adds `channel`, or replaces its filter; returns the filter it replaced.
    pub(crate) fn insert(&mut self, channel: Arc<str>, filter: LiveFilter) -> Option<LiveFilter> {
        match self.find(&channel) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, filter)),
            Err(i) => {
                if self.entries.capacity() == 0 {
                    // Most sessions hold one channel: no room for three more.
                    self.entries.reserve_exact(1);
                }
                self.entries.insert(i, (channel, filter));
                None
            }
        }
    }

    /// Removes `channel`; the vector is freed with the last one.
    pub(crate) fn remove(&mut self, channel: &str) -> Option<LiveFilter> {
        let i = self.find(channel).ok()?;
        let (_, filter) = self.entries.remove(i);
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
        Some(filter)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.entries.iter().map(|(c, _)| c)
    }

    /// Removes every channel, handing them out.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (Arc<str>, LiveFilter)> {
        std::mem::take(&mut self.entries).into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_hub_protocol::StreamPosition;

    fn filter(offset: u64) -> LiveFilter {
        LiveFilter::new(StreamPosition {
            offset,
            epoch: "e".into(),
        })
    }

    #[test]
    fn channels_are_found_whatever_order_they_were_added_in() {
        let mut s = Subscriptions::default();
        for (i, c) in ["m", "b", "z", "a", "q"].into_iter().enumerate() {
            assert!(s.insert(c.into(), filter(i as u64)).is_none());
        }
        assert_eq!(s.len(), 5);
        assert_eq!(s.get_mut("z").unwrap().position().offset, 2);
        assert_eq!(s.get_key_value("a").unwrap().1.position().offset, 3);
        assert!(!s.contains_key("c"));
        let keys: Vec<&str> = s.keys().map(|c| &**c).collect();
        assert_eq!(keys, ["a", "b", "m", "q", "z"]);
        assert_eq!(
            s.insert("m".into(), filter(9)).unwrap().position().offset,
            0
        );
        assert_eq!(s.len(), 5);
        assert_eq!(s.remove("b").unwrap().position().offset, 1);
        assert!(s.remove("b").is_none());
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn one_channel_takes_one_slot_and_the_last_to_leave_frees_it() {
        let mut s = Subscriptions::default();
        s.insert("room".into(), filter(0));
        assert_eq!(s.entries.capacity(), 1);
        s.insert("other".into(), filter(0));
        assert!(s.contains_key("room") && s.contains_key("other"));
        s.remove("room");
        s.remove("other");
        assert!(s.is_empty());
        assert_eq!(s.entries.capacity(), 0);
        s.insert("again".into(), filter(0));
        let drained: Vec<Arc<str>> = s.drain().map(|(c, _)| c).collect();
        assert_eq!(drained, [Arc::<str>::from("again")]);
        assert_eq!(s.entries.capacity(), 0);
    }
}
