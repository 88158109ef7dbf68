//! The Grafana dashboard in deploy/grafana queries only metrics the hub exports: a renamed or
//! removed metric fails here, not on an operator's screen.
#![allow(clippy::unwrap_used)]

use herald_hub::{Hub, HubConfig};
use serde_json::Value;
use std::collections::HashSet;

const DASHBOARD: &str = include_str!("../../../deploy/grafana/herald.json");

/// Every `herald_…` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| token.starts_with("herald_"))
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported_by_the_hub() {
    let hub = Hub::new(HubConfig::default()).unwrap();
    // A labelled family is rendered once it has a sample: give each one.
    let m = hub.metrics();
    let one = |k: &str| vec![(k.to_owned(), "x".to_owned())];
    m.connections.get_or_create(&one("mode")).inc_by(0);
    m.transport_connections
        .get_or_create(&one("transport"))
        .inc_by(0);
    for family in [
        &m.handshake_rejections,
        &m.disconnects,
        &m.limit_hits,
        &m.namespace_refusals,
        &m.control_messages,
        &m.token_refreshes,
        &m.jwks_fetches,
        &m.webhook_events,
        &m.ws_upgrades,
        &m.pusher_refusals,
        &m.pusher_limit_hits,
        &m.transport_disconnects,
        &m.transport_bytes_out,
        &m.config_reloads,
    ] {
        family.get_or_create(&one("label")).inc_by(0);
    }
    m.broker_errors.get_or_create(&one("op")).inc_by(0);
    m.hook_calls.get_or_create(&one("hook")).inc_by(0);
    m.broker_latency.get_or_create(&one("op")).observe(0.0);
    m.hook_latency.get_or_create(&one("hook")).observe(0.0);
    let text = m.render();
    // Families by their `# TYPE` name; a counter is sampled as NAME_total, a histogram as
    // NAME_bucket, NAME_sum and NAME_count.
    let families: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let exported = |name: &str| {
        families.contains(name)
            || ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| {
                    name.strip_suffix(suffix)
                        .is_some_and(|f| families.contains(f))
                })
    };
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 15, "{} panels", panels.len());
    let mut queried = HashSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for target in targets {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                assert!(exported(name), "{}: {name} is not exported", panel["title"]);
                queried.insert(name);
            }
        }
    }
    let variable = dashboard["templating"]["list"][1]["query"]
        .as_str()
        .unwrap();
    for name in metric_names(variable) {
        assert!(exported(name), "the node variable: {name}");
    }
    // Every family the hub exports is on the dashboard.
    for family in &families {
        let shown = queried.iter().any(|q| {
            *q == *family
                || ["_total", "_bucket"]
                    .iter()
                    .any(|s| q.strip_suffix(s) == Some(family))
        });
        assert!(shown, "{family} is exported but not on the dashboard");
    }
}
