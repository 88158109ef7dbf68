//! `herald serve --config FILE` and SIGHUP: an edited file's origins and limits apply to the
//! next requests, a setting that needs a restart is reported and left alone, and a broken
//! file is refused with its error while the server keeps the configuration it runs.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The status of `GET path` with `origin`, read from the status line alone (an event stream
/// that starts does not end).
async fn status(addr: SocketAddr, path: &str, origin: &str) -> u16 {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
    );
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

/// The value of the `herald_config_reloads_total{outcome}` sample, 0 when absent.
async fn reloads(addr: SocketAddr, outcome: &str) -> u64 {
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    let sample = format!("herald_config_reloads_total{{outcome=\"{outcome}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&sample))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Sends SIGHUP and waits until the reload counted `outcome` once more.
async fn hup(child: &Child, addr: SocketAddr, outcome: &str) {
    let before = reloads(addr, outcome).await;
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    for _ in 0..200 {
        if reloads(addr, outcome).await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {outcome} reload counted");
}

fn config(origin: &str, max_subscriptions: usize, listen: &str) -> String {
    format!(
        "listen = \"{listen}\"\n\n[origins]\nallowed = [\"{origin}\"]\nallow_same_host = false\n\n\
         [limits]\nmax_subscriptions = {max_subscriptions}\n"
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn sighup_applies_origins_and_limits_and_refuses_a_broken_file() {
    let dir = std::env::temp_dir().join(format!("herald-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    write(&file, &config("https://old.example", 2, "127.0.0.1:0"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .env_remove("HERALD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("herald: listening on http://") {
                return addr.parse().unwrap();
            }
        }
        panic!("herald serve exited before listening");
    })
    .await
    .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let logged = |needle: &str| log.lock().unwrap().iter().any(|l| l.contains(needle));

    let (old, new) = ("https://old.example", "https://new.example");
    let three = "/sse?channel=a&channel=b&channel=c";
    assert_eq!(status(addr, "/sse?channel=a", old).await, 200);
    assert_eq!(status(addr, "/sse?channel=a", new).await, 403);
    assert_eq!(status(addr, three, old).await, 400, "max_subscriptions 2");

    // The new origin and limit apply; the new listen address needs a restart.
    write(&file, &config(new, 5, "127.0.0.1:1"));
    hup(&child, addr, "applied").await;
    assert_eq!(status(addr, "/sse?channel=a", new).await, 200);
    assert_eq!(status(addr, "/sse?channel=a", old).await, 403);
    assert_eq!(status(addr, three, new).await, 200, "max_subscriptions 5");
    assert!(logged("configuration reloaded"));
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("need a restart") && l.contains("listen")),
        "{:?}",
        log.lock().unwrap()
    );

    // A file that breaks a rule, then one that does not parse: refused, nothing changes.
    write(
        &file,
        &format!("{}queue_size = 0\n", config(old, 1, "127.0.0.1:0")),
    );
    hup(&child, addr, "refused").await;
    write(&file, "listen = \n");
    hup(&child, addr, "refused").await;
    assert_eq!(status(addr, "/sse?channel=a", new).await, 200);
    assert_eq!(status(addr, "/sse?channel=a", old).await, 403);
    assert_eq!(status(addr, three, new).await, 200);
    assert!(logged("limits.queue_size must be at least 1"));
    assert!(logged("configuration reload refused"));

    // The same file again changes nothing.
    write(&file, &config(new, 5, "127.0.0.1:1"));
    hup(&child, addr, "unchanged").await;
    assert_eq!(reloads(addr, "applied").await, 1);
    assert_eq!(reloads(addr, "refused").await, 2);

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}
