//! The SSE event id: every subscribed channel's position, so that the browser's own
//! `Last-Event-ID` on reconnect says where each channel left off.
//!
//! An id lists one `epoch:offset` per channel of the request, in the order of its `channel`
//! parameters, joined by `,`: `7f3a:12,9c41:3`. With one channel it is plain `epoch:offset`.
//! The browser reconnects to the same URL, so the order is the same on both sides. Epochs are
//! percent-encoded (`,`, `:`, `%` and anything outside URL-safe characters), so no epoch can
//! break the list, and an id never holds a line break. A channel whose position is not known
//! yet is an empty part.

use herald_hub_protocol::StreamPosition;
use std::fmt::Write as _;

/// The longest `Last-Event-ID` read; a longer one is not a position this hub wrote.
pub(crate) const MAX_LEN: usize = 16 * 1024;

/// Where a channel resumes from, as a reconnect's `Last-Event-ID` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// No `Last-Event-ID`: a first connection.
    Fresh,
    /// Recover every publication after this position.
    From(StreamPosition),
    /// The client had a position but the id does not say it (malformed, too long, another
    /// channel list): it resumes without recovery and is told so.
    Lost,
}

/// Each channel's resume point from a `Last-Event-ID` (`None`: no header) for `channels`
/// channels.
pub(crate) fn parse(last_event_id: Option<&[u8]>, channels: usize) -> Vec<Resume> {
    let Some(id) = last_event_id else {
        return vec![Resume::Fresh; channels];
    };
    let parts = std::str::from_utf8(id)
        .ok()
        .filter(|id| id.len() <= MAX_LEN)
        .map(|id| id.split(',').map(position).collect::<Vec<_>>())
        .filter(|parts| parts.len() == channels);
    match parts {
        Some(parts) => parts
            .into_iter()
            .map(|p| p.map_or(Resume::Lost, Resume::From))
            .collect(),
        None => vec![Resume::Lost; channels],
    }
}

fn position(part: &str) -> Option<StreamPosition> {
    let (epoch, offset) = part.rsplit_once(':')?;
    // Digits only: `u64::from_str` would also take a leading `+`.
    if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let offset = offset.parse().ok()?;
    let epoch = form_urlencoded::parse(epoch.as_bytes())
        .next()
        .map(|(epoch, _)| epoch.into_owned())
        .unwrap_or_default();
    Some(StreamPosition { offset, epoch })
}

/// The id for these positions, in channel order (`None`: not known yet).
pub(crate) fn format(positions: &[Option<StreamPosition>]) -> String {
    let mut id = String::new();
    for (i, position) in positions.iter().enumerate() {
        if i > 0 {
            id.push(',');
        }
        if let Some(p) = position {
            id.extend(form_urlencoded::byte_serialize(p.epoch.as_bytes()));
            // Writing to a String cannot fail.
            let _ = write!(id, ":{}", p.offset);
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.into(),
        }
    }

    #[test]
    fn one_channel_is_plain_epoch_colon_offset() {
        assert_eq!(format(&[Some(at("7f3a", 12))]), "7f3a:12");
        assert_eq!(parse(Some(b"7f3a:12"), 1), [Resume::From(at("7f3a", 12))]);
    }

    #[test]
    fn several_channels_keep_their_order_and_unknown_parts_are_lost() {
        let id = format(&[Some(at("a", 1)), None, Some(at("c", 3))]);
        assert_eq!(id, "a:1,,c:3");
        assert_eq!(
            parse(Some(id.as_bytes()), 3),
            [
                Resume::From(at("a", 1)),
                Resume::Lost,
                Resume::From(at("c", 3))
            ]
        );
    }

    #[test]
    fn no_header_is_fresh_and_a_foreign_or_garbled_one_is_lost() {
        assert_eq!(parse(None, 2), [Resume::Fresh, Resume::Fresh]);
        assert_eq!(parse(Some(b"a:1"), 2), [Resume::Lost, Resume::Lost]);
        assert_eq!(parse(Some(b"a:+1"), 1), [Resume::Lost]);
        assert_eq!(parse(Some(b"a:"), 1), [Resume::Lost]);
        assert_eq!(parse(Some(b"a"), 1), [Resume::Lost]);
        assert_eq!(parse(Some(b"a:99999999999999999999"), 1), [Resume::Lost]);
        assert_eq!(parse(Some(b"\xff:1"), 1), [Resume::Lost]);
        let long = format!("a:{}", "1".repeat(MAX_LEN));
        assert_eq!(parse(Some(long.as_bytes()), 1), [Resume::Lost]);
    }

    proptest! {
        #[test]
        fn any_positions_round_trip(
            positions in proptest::collection::vec(
                proptest::option::of((any::<String>(), any::<u64>())), 1..8)
        ) {
            let positions: Vec<Option<StreamPosition>> =
                positions.into_iter().map(|p| p.map(|(e, o)| at(&e, o))).collect();
            let id = format(&positions);
            prop_assert!(!id.contains(['\n', '\r', '\0']));
            let expected: Vec<Resume> = positions
                .into_iter()
                .map(|p| p.map_or(Resume::Lost, Resume::From))
                .collect();
            prop_assert_eq!(parse(Some(id.as_bytes()), expected.len()), expected);
        }
    }
}
