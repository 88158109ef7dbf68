//! The result of a run, shared by every mode: a table for people, or exactly one JSON line.

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write as _;

/// A latency histogram in microseconds: 1 µs to one hour, three significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // Invariant: constant bounds that satisfy `new_with_bounds` (low >= 1, high >= 2 * low,
    // at most 5 significant digits).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid constant bounds")
}

/// Microseconds in `d`, saturated, at least 1 (the histogram's lowest value).
pub(crate) fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The summary of a latency histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Latency {
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            p50: histogram.value_at_quantile(0.50),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// What every mode reports; mode-specific fields go in `extra`.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) connections: u64,
    /// The measured interval, in seconds.
    pub(crate) duration_s: f64,
    /// Messages completed in the measured interval.
    pub(crate) messages: u64,
    pub(crate) msgs_per_s: f64,
    /// Payload bytes per second, one way.
    pub(crate) bytes_per_s: f64,
    pub(crate) latency_us: Latency,
    /// Connections that failed or ended early.
    pub(crate) errors: u64,
    /// Messages sent and never answered.
    pub(crate) losses: u64,
    /// Percent of one core, over the measured interval.
    pub(crate) generator_cpu_pct: Option<f64>,
    /// Percent of one core, over the measured interval; `null` without `--server-pid`.
    pub(crate) server_cpu_pct: Option<f64>,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
    /// The table's rows for `extra`, in order: label and value as shown.
    #[serde(skip)]
    extra_rows: Vec<(&'static str, String)>,
    /// What the latency measures, for the table.
    #[serde(skip)]
    pub(crate) latency_label: &'static str,
}

impl Report {
    /// An empty report for `mode`.
    pub(crate) fn new(mode: &'static str, connections: u64) -> Self {
        Self {
            mode,
            connections,
            duration_s: 0.0,
            messages: 0,
            msgs_per_s: 0.0,
            bytes_per_s: 0.0,
            latency_us: Latency::default(),
            errors: 0,
            losses: 0,
            generator_cpu_pct: None,
            server_cpu_pct: None,
            extra: Map::new(),
            extra_rows: Vec::new(),
            latency_label: "round trip",
        }
    }

    /// Adds a mode-specific field: `key` in JSON, `label` in the table.
    pub(crate) fn add(&mut self, key: &str, label: &'static str, value: impl Into<Value>) {
        let value = value.into();
        let shown = match &value {
            Value::Null => "-".to_owned(),
            Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), number),
            other => other.to_string(),
        };
        self.extra_rows.push((label, shown));
        self.extra.insert(key.to_owned(), value);
    }

    /// Whether the run went without errors or losses.
    pub(crate) fn is_clean(&self) -> bool {
        self.errors == 0 && self.losses == 0
    }

    /// Prints the report on standard output: one JSON line, or the table.
    pub(crate) fn print(&self, json: bool) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            let line = serde_json::to_string(self).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        } else {
            for (label, value) in self.rows() {
                writeln!(out, "{label:<24} {value}")?;
            }
        }
        out.flush()
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let pct = |p: Option<f64>| p.map_or("-".to_owned(), |p| format!("{p:.0} % of one core"));
        let l = &self.latency_us;
        let mut rows = vec![
            ("mode", self.mode.to_owned()),
            ("connections", number(self.connections as f64)),
            ("duration", format!("{:.2} s", self.duration_s)),
        ];
        if self.messages > 0 {
            let mib = self.bytes_per_s / f64::from(1 << 20);
            rows.push(("messages", number(self.messages as f64)));
            let rate = number(self.msgs_per_s.round());
            rows.push(("throughput", format!("{rate} msgs/s, {mib:.2} MiB/s")));
        }
        let latency = format!("{} / {} / {} / {} µs", l.p50, l.p99, l.p999, l.max);
        rows.push((
            "latency",
            format!(
                "{latency} (p50 / p99 / p99.9 / max, {})",
                self.latency_label
            ),
        ));
        rows.push(("errors", self.errors.to_string()));
        rows.push(("losses", self.losses.to_string()));
        rows.push(("generator CPU", pct(self.generator_cpu_pct)));
        rows.push(("server CPU", pct(self.server_cpu_pct)));
        rows.extend(self.extra_rows.iter().cloned());
        rows
    }
}

/// A number with thousands separators, without decimals unless it has some.
fn number(value: f64) -> String {
    if value.fract() != 0.0 {
        return format!("{value:.2}");
    }
    let digits = format!("{value:.0}");
    let (sign, digits) = digits.split_at(usize::from(digits.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_common_fields_then_the_mode_fields() {
        let mut report = Report::new("connections", 3);
        report.add("opened", "opened", 3u64);
        report.add("rss_before_kib", "server RSS before", Value::Null);
        let json: Value = serde_json::to_value(&report).unwrap();
        for key in [
            "mode",
            "duration_s",
            "msgs_per_s",
            "latency_us",
            "losses",
            "server_cpu_pct",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["latency_us"]["p999"], 0);
        assert_eq!(json["opened"], 3);
        assert_eq!(json["rss_before_kib"], Value::Null);
        assert!(
            report
                .rows()
                .iter()
                .any(|(l, v)| *l == "opened" && v == "3")
        );
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(2.5), "2.50");
    }

    #[test]
    fn latency_summary_reads_the_quantiles() {
        let mut h = histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let l = Latency::of(&h);
        assert!((499..=501).contains(&l.p50), "{l:?}");
        assert_eq!(l.max, 1000);
    }
}
