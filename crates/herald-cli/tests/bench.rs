//! `herald bench` as a process against an in-process herald echo server on 127.0.0.1:0: each
//! mode runs for about a second and its one JSON line holds sane figures.
#![allow(clippy::unwrap_used, unreachable_pub)]

use herald::Message;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// Connections accepted and Close frames received by the server.
#[derive(Default)]
struct Seen {
    accepted: AtomicU64,
    closes: AtomicU64,
}

/// An echo server like `examples/echo-server.rs`: echoes are queued and leave in batches.
async fn echo_server() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counters = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = counters.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = herald::accept(tcp).await else {
                    return;
                };
                seen.accepted.fetch_add(1, Ordering::Relaxed);
                while let Some(Ok(message)) = ws.recv().await {
                    if let Message::Close(Some(_)) = message {
                        seen.closes.fetch_add(1, Ordering::Relaxed);
                    } else if message.is_data() && ws.feed(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn bench(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("herald bench ends by itself")
        .unwrap()
}

/// The single JSON line on standard output.
fn report(output: &Output) -> Value {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

fn assert_latency_is_ordered(report: &Value) {
    let l = &report["latency_us"];
    let [p50, p99, p999, max] = ["p50", "p99", "p999", "max"].map(|k| l[k].as_u64().unwrap());
    assert!(0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{l}");
}

/// Waits (bounded) for a server counter to reach `expected`: the server may still be
/// finishing when the process exits.
async fn eventually(counter: &AtomicU64, expected: u64) -> u64 {
    for _ in 0..100 {
        if counter.load(Ordering::Relaxed) >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    counter.load(Ordering::Relaxed)
}

fn pid() -> String {
    std::process::id().to_string()
}

mod echo {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn echo_counts_every_message_and_loses_none() {
        let (addr, seen) = echo_server().await;
        let url = format!("ws://{addr}/");
        let args = [
            "echo",
            &url,
            "-c",
            "4",
            "--in-flight",
            "8",
            "-s",
            "100",
            "-d",
            "1",
            "--warmup",
            "0.2",
            "--json",
            "--server-pid",
            &pid(),
        ];
        let report = report(&bench(&args).await);
        assert_eq!(report["mode"], "echo");
        assert_eq!(report["connections"], 4);
        assert_eq!(number(&report, "duration_s"), 1.0);
        assert!(number(&report, "messages") > 0.0, "{report}");
        let rate = number(&report, "msgs_per_s");
        assert!((number(&report, "bytes_per_s") - rate * 100.0).abs() < 1.0);
        assert_eq!(report["losses"], 0);
        assert_eq!(report["errors"], 0);
        assert_eq!(report["sent"], report["echoed"]);
        assert!(number(&report, "sent") >= number(&report, "messages"));
        assert_latency_is_ordered(&report);
        assert!(number(&report, "generator_cpu_pct") > 0.0);
        assert!(number(&report, "server_cpu_pct") > 0.0);
        assert_eq!(eventually(&seen.accepted, 4).await, 4);
        assert_eq!(eventually(&seen.closes, 4).await, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn binary_echo_without_server_pid_reports_server_cpu_as_null() {
        let (addr, _) = echo_server().await;
        let url = format!("ws://{addr}/");
        let args = [
            "echo", &url, "-c", "2", "-d", "0.5", "--warmup", "0", "--binary", "--json",
        ];
        let report = report(&bench(&args).await);
        assert!(number(&report, "messages") > 0.0);
        assert_eq!(report["losses"], 0);
        assert_eq!(report["server_cpu_pct"], Value::Null);
    }

    #[tokio::test]
    async fn no_server_exits_1_with_the_reason() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        drop(listener);
        let output = bench(&["echo", &url, "-c", "2", "-d", "1", "--json"]).await;
        assert_eq!(output.status.code(), Some(1));
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("every connection failed"), "{stderr}");
    }
}

mod connections {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn connections_open_hold_and_close_every_one() {
        let (addr, seen) = echo_server().await;
        let url = format!("ws://{addr}/");
        let args = [
            "connections",
            &url,
            "-c",
            "50",
            "--rate",
            "200",
            "--hold",
            "0.5",
            "--json",
            "--server-pid",
            &pid(),
        ];
        let report = report(&bench(&args).await);
        assert_eq!(report["mode"], "connections");
        assert_eq!(report["opened"], 50);
        assert_eq!(report["failed"], 0);
        assert_eq!(report["errors"], 0);
        assert_latency_is_ordered(&report);
        // 50 connections at 200 per second, then half a second held.
        assert!(number(&report, "duration_s") >= 0.7, "{report}");
        assert!(number(&report, "rss_before_kib") > 0.0);
        assert!(number(&report, "rss_after_kib") > 0.0);
        assert!(report["rss_per_conn_bytes"].is_number(), "{report}");
        assert_eq!(eventually(&seen.accepted, 50).await, 50);
        // Each connection ended with a Close frame.
        assert_eq!(eventually(&seen.closes, 50).await, 50);
    }

    #[tokio::test]
    async fn more_connections_than_open_files_are_refused_before_connecting() {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let hard = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(4)?.parse::<u64>().ok());
        let Some(hard) = hard else { return };
        let too_many = (hard + 1).to_string();
        let args = [
            "connections",
            "ws://127.0.0.1:9/",
            "-c",
            &too_many,
            "--json",
        ];
        let output = bench(&args).await;
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("open files"), "{stderr}");
    }
}

/// A `herald serve` hub in this process, with no publish rate limit (as the fan-out mode
/// documents).
async fn hub() -> SocketAddr {
    let mut config = herald_hub::HubConfig::default();
    config.limits.publish_rate = 0;
    // Publishing as fast as acknowledged outruns debug-build subscribers; a deep queue keeps
    // them from being cut off as slow consumers (the hub's own tests cover that).
    config.limits.queue_size = 1 << 20;
    let hub = herald_hub::Hub::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(herald_hub::run(listener, hub, std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_publication_to_every_subscriber_without_loss() {
    let addr = hub().await;
    let url = format!("ws://{addr}/ws");
    let output = bench(&[
        "fanout",
        &url,
        "--subscribers",
        "50",
        "--channels",
        "2",
        "--rate",
        "100",
        "--duration",
        "1",
        "--size",
        "64",
        "--json",
        "--server-pid",
        &pid(),
    ])
    .await;
    let report = report(&output);
    assert_eq!(report["mode"], "fanout");
    assert_eq!(report["connections"], 50);
    assert_eq!(report["losses"], 0);
    assert_eq!(report["errors"], 0);
    let published = number(&report, "published");
    assert_eq!(published, 100.0);
    // Two channels of 25 subscribers; each publication goes to one channel.
    assert_eq!(number(&report, "messages"), published * 25.0);
    assert!(number(&report, "msgs_per_s") > 0.0);
    assert_latency_is_ordered(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_spreads_subscribers_over_processes_and_publishes_as_fast_as_acknowledged() {
    let addr = hub().await;
    let url = format!("ws://{addr}/ws");
    let output = bench(&[
        "fanout",
        &url,
        "--subscribers",
        "40",
        "--processes",
        "2",
        "--rate",
        "0",
        "--duration",
        "1",
        "--json",
    ])
    .await;
    let report = report(&output);
    assert_eq!(report["processes"], 2);
    assert_eq!(report["rate"], "max");
    assert_eq!(report["losses"], 0);
    assert_eq!(report["errors"], 0);
    let published = number(&report, "published");
    assert!(published > 0.0);
    assert_eq!(number(&report, "messages"), published * 40.0);
    assert!(
        number(&report, "generator_cpu_pct") > 0.0,
        "children's CPU counts"
    );
    assert_latency_is_ordered(&report);
}
