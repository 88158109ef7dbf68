//! The server's side: its RSS sampled every second from /proc, and its /metrics.

use crate::check::Section;
use crate::run::raised;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// The server's resident set, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// RSS samples: seconds since the soak started, KiB.
#[derive(Debug, Default)]
pub(crate) struct Rss {
    pub(crate) samples: Vec<(f64, u64)>,
    /// When the guard stopped the load (RSS past twice the bound), seconds.
    pub(crate) guard_at: Option<f64>,
}

/// Samples the server's RSS every second until `stop` is raised. Past twice `bound_kib` it
/// aborts the run: the load stops before the machine runs out of memory.
pub(crate) async fn sample_rss(
    pid: u32,
    bound_kib: u64,
    origin: tokio::time::Instant,
    guard: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Rss {
    let mut rss = Rss::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = raised(&mut stop) => return rss,
        }
        let Some(kib) = rss_kib(pid) else {
            return rss;
        };
        let at = origin.elapsed().as_secs_f64();
        rss.samples.push((at, kib));
        if kib > 2 * bound_kib && rss.guard_at.is_none() {
            guard.send_replace(true);
            rss.guard_at = Some(at);
        }
    }
}

/// Judges the RSS: it must stay under the bound (holds today).
pub(crate) fn judge_rss(rss: &Rss, bound_kib: u64, load: (f64, f64)) -> Section {
    let mut s = Section::new("server resources");
    let mib = |k: u64| k as f64 / 1024.0;
    let first = rss.samples.first().map_or(0, |s| s.1);
    let last = rss.samples.last().map_or(0, |s| s.1);
    let (max_at, max) = rss
        .samples
        .iter()
        .copied()
        .fold((0.0, 0), |a, b| if b.1 > a.1 { b } else { a });
    s.line(format!(
        "RSS: {:.1} MiB before the load, max {:.1} MiB at {max_at:.0} s, {:.1} MiB at the end ({} samples)",
        mib(first),
        mib(max),
        mib(last),
        rss.samples.len()
    ));
    // A leak shows as growth between the middle and the end of the load.
    let at = |t: f64| {
        rss.samples
            .iter()
            .rfind(|(at, _)| *at <= t)
            .map_or(0, |s| s.1)
    };
    let (mid, end) = (at((load.0 + load.1) / 2.0), at(load.1));
    s.line(format!(
        "RSS at the middle of the load {:.1} MiB, at its end {:.1} MiB",
        mib(mid),
        mib(end)
    ));
    if let Some(at) = rss.guard_at {
        s.line(format!(
            "the RSS guard stopped the load at {at:.0} s (RSS past twice the bound)"
        ));
    }
    s.check(
        format!("server RSS stays under {:.0} MiB", mib(bound_kib)),
        max < bound_kib && !rss.samples.is_empty(),
        format!("max {:.1} MiB", mib(max)),
    );
    s
}

/// One sample of an exposition: name, labels, value.
#[derive(Debug)]
pub(crate) struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// The server's /metrics, parsed.
#[derive(Debug, Default)]
pub(crate) struct Metrics(Vec<Sample>);

impl Metrics {
    pub(crate) fn parse(text: &str) -> Self {
        Self(text.lines().filter_map(parse_line).collect())
    }

    /// A metric without labels (or the sum over them).
    pub(crate) fn value(&self, name: &str) -> Option<f64> {
        let mut found = self.0.iter().filter(|s| s.name == name).peekable();
        found.peek()?;
        Some(found.map(|s| s.value).sum())
    }

    /// A metric's values by one label.
    pub(crate) fn by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.0.iter().filter(|s| s.name == name) {
            if let Some((_, v)) = s.labels.iter().find(|(k, _)| k == label) {
                *out.entry(v.clone()).or_default() += s.value;
            }
        }
        out
    }

    /// Disconnects counted with close `code`.
    pub(crate) fn disconnects(&self, code: u16) -> f64 {
        let by = self.by("herald_disconnects_total", "code");
        by.get(&code.to_string()).copied().unwrap_or(0.0)
    }
}

fn parse_line(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.trim_end_matches('}')),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect();
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn counts(map: &BTreeMap<String, f64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The metrics the report prints at the end.
pub(crate) fn report_metrics(m: &Metrics) -> Section {
    let mut s = Section::new("server metrics at the end");
    let by_code = m.by("herald_disconnects_total", "code");
    s.line(format!(
        "herald_disconnects_total by code: {}",
        counts(&by_code)
    ));
    let limits = m.by("herald_limit_hits_total", "limit");
    s.line(format!(
        "herald_limit_hits_total by limit: {}",
        counts(&limits)
    ));
    for name in [
        "herald_slow_consumer_drops_total",
        "herald_history_channels",
        "herald_history_bytes",
        "herald_subscriptions",
        "herald_publications_total",
    ] {
        let value = m
            .value(name)
            .map_or("not exported".into(), |v| v.to_string());
        s.line(format!("{name}: {value}"));
    }
    let rejections = m.by("herald_handshake_rejections_total", "status");
    s.line(format!(
        "herald_handshake_rejections_total by status: {}",
        counts(&rejections)
    ));
    s
}
