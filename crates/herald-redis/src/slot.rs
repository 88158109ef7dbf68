//! Redis Cluster hash slots, and one short hash tag per slot.
//!
//! A channel's keys are `herald:{TAG}:…` where TAG is the tag of the channel's slot (CRC16 of
//! the whole channel name, as Redis Cluster computes it, modulo 16384): every key of a
//! channel, its pub/sub topic and its slot's vacant epoch hash to that one slot, whatever
//! characters the name holds (braces included), and channels spread evenly over the slots.

use std::sync::LazyLock;

/// Hash slots in a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// The Redis Cluster slot of `bytes` hashed whole (CRC16-XMODEM modulo 16384).
pub(crate) fn slot(bytes: &[u8]) -> usize {
    usize::from(crc16::State::<crc16::XMODEM>::calculate(bytes)) % SLOTS
}

/// For each slot, the shortest decimal number whose CRC16 falls in it (found once, about
/// 180,000 hashes: a few milliseconds).
static TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut tags = vec![String::new(); SLOTS];
    let mut missing = SLOTS;
    let mut n: u64 = 0;
    while missing > 0 {
        let candidate = n.to_string();
        let tag = &mut tags[slot(candidate.as_bytes())];
        if tag.is_empty() {
            *tag = candidate;
            missing -= 1;
        }
        n += 1;
    }
    tags
});

/// The hash tag of `channel`'s slot.
pub(crate) fn tag(channel: &str) -> &'static str {
    &TAGS[slot(channel.as_bytes())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // CLUSTER KEYSLOT answers, from the Redis Cluster specification's test vector and
        // a real server.
        assert_eq!(slot(b"123456789"), 0x31c3 % SLOTS);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
    }

    #[test]
    fn every_slot_has_a_tag_in_that_slot() {
        for (s, tag) in TAGS.iter().enumerate() {
            assert_eq!(slot(tag.as_bytes()), s);
        }
        assert_eq!(slot(tag("room:{a}b}").as_bytes()), slot(b"room:{a}b}"));
    }
}
