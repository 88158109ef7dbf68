//! The end of the well-behaved run: each channel's final position from the API, waiting for
//! the subscribers to catch up, and the count of lost and doubled deliveries.

use crate::check::Section;
use crate::http::Http;
use crate::steady::{BUSY, Published, QUIET, Seen, Shared, Track, lock};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// A channel's last offset and epoch.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    pub(crate) offset: u64,
    pub(crate) epoch: String,
}

pub(crate) type Finals = BTreeMap<&'static str, Position>;

/// Every well-behaved channel's position, read with `GET /api/history`.
pub(crate) async fn finals(http: &mut Http) -> Result<Finals, String> {
    let mut out = BTreeMap::new();
    for channel in std::iter::once(BUSY).chain(QUIET) {
        let r = http
            .request("GET", &format!("/api/history/{channel}?limit=0"), "")
            .await?;
        let v: serde_json::Value = serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
        let position = Position {
            offset: v["offset"]
                .as_u64()
                .ok_or(format!("history of {channel}: {}", r.body))?,
            epoch: v["epoch"].as_str().unwrap_or_default().to_owned(),
        };
        out.insert(channel, position);
    }
    Ok(out)
}

/// Waits until every subscriber has applied every channel's last publication, at most `wait`.
pub(crate) async fn catch_up(seen: &[Shared], finals: &Finals, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let done = seen.iter().all(|s| {
            lock(s)
                .tracks
                .iter()
                .all(|(channel, t)| finals.get(channel).is_none_or(|f| t.last >= f.offset))
        });
        if done || Instant::now() >= deadline {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deliveries of one track against its channel's final position.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    expected: u64,
    received: u64,
    lost: u64,
    duplicates: u64,
}

fn tally(track: &Track, last: &Position) -> Tally {
    let expected = last.offset.saturating_sub(track.base);
    let received = track.counts.iter().map(|&c| u64::from(c)).sum::<u64>();
    let mut t = Tally {
        expected,
        received: received + track.strays,
        duplicates: track.strays,
        ..Tally::default()
    };
    for i in 0..usize::try_from(expected).unwrap_or(0) {
        match track.counts.get(i).copied().unwrap_or(0) {
            0 => t.lost += 1,
            c => t.duplicates += u64::from(c - 1),
        }
    }
    if track.epoch != last.epoch {
        t.lost = expected;
    }
    t
}

/// Judges the well-behaved clients. Holds today: nothing lost, nothing doubled, every
/// publish accepted.
pub(crate) fn judge(
    seen: &[Seen],
    finals: &Finals,
    published: &Published,
    caught_up: bool,
) -> Section {
    let mut s = Section::new("well-behaved clients");
    let acked: u64 = published.acked.values().sum();
    let offsets: Vec<String> = finals
        .iter()
        .map(|(c, p)| format!("{c} at offset {}", p.offset))
        .collect();
    s.line(format!(
        "publisher: {acked} publications accepted ({}), channels: {}",
        published
            .acked
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        offsets.join(", ")
    ));
    let mut total = Tally::default();
    let mut disconnects: BTreeMap<u16, u32> = BTreeMap::new();
    let (mut recovered, mut unrecovered, mut refused, mut failures) = (0, 0, 0, 0);
    for sub in seen {
        for (channel, track) in &sub.tracks {
            let Some(last) = finals.get(channel) else {
                continue;
            };
            let t = tally(track, last);
            total.expected += t.expected;
            total.received += t.received;
            total.lost += t.lost;
            total.duplicates += t.duplicates;
        }
        for (code, n) in &sub.disconnects {
            *disconnects.entry(*code).or_default() += n;
        }
        (recovered, unrecovered) = (recovered + sub.recovered, unrecovered + sub.unrecovered);
        (refused, failures) = (refused + sub.refused, failures + sub.connect_failures);
    }
    s.line(format!(
        "{} subscribers: deliveries expected {}, received {}, lost {}, duplicates {}",
        seen.len(),
        total.expected,
        total.received,
        total.lost,
        total.duplicates
    ));
    let codes = disconnects
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>();
    let count: u32 = disconnects.values().sum();
    s.line(format!(
        "disconnects: {count} ({}); recoveries: {recovered} recovered, {unrecovered} not; \
         subscribes refused: {refused}; failed connects: {failures}",
        if codes.is_empty() {
            "none".into()
        } else {
            codes.join(", ")
        }
    ));
    if !caught_up {
        s.line("not every subscriber reached the last offset within the wait after the load");
    }
    s.check(
        "no publication lost",
        total.lost == 0,
        format!("lost {}", total.lost),
    );
    s.check(
        "no publication delivered twice",
        total.duplicates == 0,
        format!("duplicates {}", total.duplicates),
    );
    let failed: u32 = published.failures.values().sum();
    s.check(
        "every publish through the API accepted",
        failed == 0,
        format!("{failed} failed {:?}", published.failures),
    );
    s.check(
        "well-behaved subscribers are not disconnected",
        count == 0,
        format!("{count} disconnects"),
    );
    s
}
