//! The seam between history and live delivery, as pure functions.
//!
//! A subscription is registered for live delivery *before* history is read (see the
//! [`Broker`](crate::broker::Broker) invariants), so a publication can reach the connection
//! twice: in the history read and again live. [`recover`] decides what the subscribe reply
//! carries; [`LiveFilter`] then drops live publications the reply already held and detects a
//! gap, so the client sees every offset exactly once, in order, or is told it cannot.

use crate::broker::{History, Publication};
use herald_hub_protocol::StreamPosition;
use std::sync::Arc;

/// What a subscribe with recovery answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Whether `publications` holds every publication after the client's position.
    pub(crate) recovered: bool,
    /// The missed publications (empty when not recovered: never a partial replay).
    pub(crate) publications: Vec<Arc<Publication>>,
    /// Where live delivery continues from.
    pub(crate) position: StreamPosition,
}

/// Whether `history`, read with `HistoryQuery { after: since.offset, .. }`, continues the
/// stream right after `since`: the same epoch (or `since` is offset 0 in the vacant epoch
/// the stream replaced when it was created), not ahead of the stream, and its first
/// publication (if any) is `since.offset + 1`, so nothing between the two was trimmed. The one
/// reachability rule: `history` replies and recovery both use it.
pub(crate) fn continues_from(since: &StreamPosition, history: &History) -> bool {
    let top = history.position.offset;
    let same_stream = since.epoch == history.position.epoch
        || (since.offset == 0 && history.vacant_before.as_ref() == Some(&since.epoch));
    same_stream
        && since.offset <= top
        && match history.publications.first() {
            Some(first) => Some(first.offset) == since.offset.checked_add(1),
            None => since.offset == top,
        }
}

/// Recovery from `since`, given history read after the live subscription was registered.
/// `history` must hold the publications after `since.offset` (as many as retained).
/// Recovered means [`continues_from`] holds and no publication up to the top is missing.
pub(crate) fn recover(since: &StreamPosition, history: History) -> Recovery {
    let missed = history.position.offset.saturating_sub(since.offset);
    let complete = continues_from(since, &history)
        && history.publications.len() as u64 == missed
        && history
            .publications
            .iter()
            .zip(since.offset + 1..)
            .all(|(p, expected)| p.offset == expected);
    Recovery {
        recovered: complete,
        publications: if complete {
            history.publications
        } else {
            Vec::new()
        },
        position: history.position,
    }
}

/// What to do with a live publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Live {
    /// Send it.
    Deliver,
    /// The client already has it (it came with history): drop it.
    Duplicate,
    /// Publications between the last delivered and this one never arrived: the client must
    /// recover from history.
    Gap,
}

/// Per-subscription position tracking for live delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LiveFilter {
    position: StreamPosition,
}

impl LiveFilter {
    /// Live delivery continues after `position`.
    pub(crate) fn new(position: StreamPosition) -> Self {
        Self { position }
    }

    /// The last position delivered.
    #[cfg(test)]
    pub(crate) fn position(&self) -> &StreamPosition {
        &self.position
    }

    /// Classifies a live publication with `offset` in `epoch`, and advances on delivery.
    pub(crate) fn accept(&mut self, epoch: &str, offset: u64) -> Live {
        if epoch != self.position.epoch {
            // The stream was lost and started again: only its very beginning continues
            // without a gap from the client's point of view.
            if offset == 1 {
                self.position = StreamPosition {
                    offset,
                    epoch: epoch.to_owned(),
                };
                return Live::Deliver;
            }
            return Live::Gap;
        }
        match offset.cmp(&(self.position.offset + 1)) {
            std::cmp::Ordering::Less => Live::Duplicate,
            std::cmp::Ordering::Equal => {
                self.position.offset = offset;
                Live::Deliver
            }
            std::cmp::Ordering::Greater => Live::Gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Payload;
    use proptest::prelude::*;

    fn publication(offset: u64) -> Arc<Publication> {
        Arc::new(Publication {
            offset,
            payload: Payload::Json(bytes::Bytes::from_static(b"1")),
            publisher: None,
        })
    }

    fn history(epoch: &str, top: u64, oldest: u64, after: u64) -> History {
        History {
            position: StreamPosition {
                offset: top,
                epoch: epoch.into(),
            },
            publications: (oldest.max(after + 1)..=top).map(publication).collect(),
            vacant_before: None,
        }
    }

    fn at(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.into(),
        }
    }

    #[test]
    fn recovery_within_retained_history_returns_every_missed_publication() {
        let r = recover(&at(3, "e"), history("e", 7, 1, 3));
        assert!(r.recovered);
        let offsets: Vec<u64> = r.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [4, 5, 6, 7]);
    }

    #[test]
    fn recovery_at_the_top_is_recovered_with_nothing_to_replay() {
        let r = recover(&at(7, "e"), history("e", 7, 1, 7));
        assert!(r.recovered && r.publications.is_empty());
    }

    #[test]
    fn recovery_past_trimmed_history_is_not_recovered_and_replays_nothing() {
        let r = recover(&at(2, "e"), history("e", 10, 5, 2));
        assert!(!r.recovered && r.publications.is_empty());
        assert_eq!(r.position, at(10, "e"));
    }

    #[test]
    fn recovery_from_another_epoch_is_not_recovered() {
        let r = recover(&at(3, "old"), history("new", 7, 1, 3));
        assert!(!r.recovered && r.publications.is_empty());
    }

    /// A stream created for a channel without one, naming the vacant epoch it replaced.
    fn first_stream(vacant: &str, top: u64, oldest: u64) -> History {
        History {
            vacant_before: Some(vacant.into()),
            ..history("e", top, oldest, 0)
        }
    }

    #[test]
    fn a_position_read_before_the_first_publish_recovers_the_stream_that_replaced_its_epoch() {
        let r = recover(&at(0, "v"), first_stream("v", 3, 1));
        assert!(r.recovered);
        let offsets: Vec<u64> = r.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [1, 2, 3]);
        assert_eq!(r.position, at(3, "e"));
    }

    #[test]
    fn a_vacant_position_does_not_recover_a_stream_that_replaced_another_vacant_epoch() {
        let r = recover(&at(0, "older"), first_stream("v", 3, 1));
        assert!(!r.recovered && r.publications.is_empty());
    }

    #[test]
    fn a_vacant_position_does_not_recover_a_first_stream_trimmed_past_offset_1() {
        let r = recover(&at(0, "v"), first_stream("v", 9, 4));
        assert!(!r.recovered && r.publications.is_empty());
    }

    #[test]
    fn only_offset_0_of_the_replaced_vacant_epoch_continues_into_the_stream() {
        let r = recover(&at(1, "v"), first_stream("v", 3, 1));
        assert!(!r.recovered);
    }

    #[test]
    fn recovery_from_ahead_of_the_stream_is_not_recovered() {
        let r = recover(&at(9, "e"), history("e", 7, 1, 9));
        assert!(!r.recovered);
    }

    #[test]
    fn live_filter_drops_duplicates_and_reports_gaps() {
        let mut f = LiveFilter::new(at(5, "e"));
        assert_eq!(f.accept("e", 4), Live::Duplicate);
        assert_eq!(f.accept("e", 5), Live::Duplicate);
        assert_eq!(f.accept("e", 6), Live::Deliver);
        assert_eq!(f.accept("e", 8), Live::Gap);
        assert_eq!(f.accept("f", 1), Live::Deliver);
        assert_eq!(f.position(), &at(1, "f"));
        assert_eq!(f.accept("g", 3), Live::Gap);
    }

    proptest! {
        /// Whatever the client's position and the retained window, a recovery either holds
        /// exactly the offsets after the position up to the top, or nothing.
        #[test]
        fn recovery_is_complete_or_empty(
            top in 0u64..50, retained in 0u64..50, since in 0u64..60, epoch in 0u8..3,
            first_stream: bool
        ) {
            let oldest = top.saturating_sub(retained) + 1;
            // The stream's own epoch, the vacant epoch it replaced (if it names one), or
            // another.
            let epoch = ["e", "v", "x"][usize::from(epoch)];
            let mut read = history("e", top, oldest, since);
            read.vacant_before = first_stream.then(|| "v".to_owned());
            let r = recover(&at(since, epoch), read);
            let same = epoch == "e" || (epoch == "v" && first_stream && since == 0);
            if r.recovered {
                let offsets: Vec<u64> = r.publications.iter().map(|p| p.offset).collect();
                prop_assert_eq!(offsets, (since + 1..=top).collect::<Vec<_>>());
                prop_assert!(same);
            } else {
                prop_assert!(r.publications.is_empty());
                prop_assert!(!same || since > top || since + 1 < oldest);
            }
        }

        /// History then live, with live re-delivering anything from the registration point
        /// on: the client sees each offset once, in order, with no gap.
        #[test]
        fn history_then_live_is_exactly_once_in_order(
            since in 0u64..30, read_at in 0u64..30, extra in 0u64..30, registered_back in 0u64..30
        ) {
            let top = since.max(read_at);
            let r = recover(&at(since, "e"), history("e", top, 1, since));
            prop_assert!(r.recovered);
            let mut seen: Vec<u64> = r.publications.iter().map(|p| p.offset).collect();
            let mut filter = LiveFilter::new(r.position.clone());
            // Live delivery started before the read: it repeats some of what history held.
            let first_live = top.saturating_sub(registered_back).max(1);
            for offset in first_live..=top + extra {
                match filter.accept("e", offset) {
                    Live::Deliver => seen.push(offset),
                    Live::Duplicate => {}
                    Live::Gap => prop_assert!(false, "gap at {}", offset),
                }
            }
            prop_assert_eq!(seen, (since + 1..=top + extra).collect::<Vec<_>>());
        }
    }
}
