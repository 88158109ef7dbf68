//! What unfinished request heads cost the hub, measured from this process's resident memory
//! (the hub runs in-process). Alone in its binary so no other test's allocations interfere.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 1000;
/// What one connection that sent nothing, or a few bytes of a head, may cost, both ends
/// counted (measured: about 2 KiB).
const MAX_BYTES_PER_SMALL_HEAD: usize = 8 << 10;
/// The head limit (`HandshakeLimits::max_head_size`).
const MAX_HEAD: usize = 16 << 10;

/// `VmRSS` of this process, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    kib << 10
}

/// `rss()` once the server has read what was sent: when it stops growing (at most 1 s).
async fn settled_rss() -> usize {
    let mut last = rss();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss();
        if now <= last + (64 << 10) {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unfinished_heads_cost_a_few_kib_each_and_close_at_the_handshake_timeout() {
    let mut cfg = config();
    let timeout = Duration::from_secs(5);
    cfg.limits.handshake_timeout = timeout;
    let mut server = Server::start(cfg).await;
    // Warm up the runtime, the allocator and hyper's code paths.
    for _ in 0..20 {
        assert_eq!(server.get("/healthz", "").await.0, 200);
    }
    let before = rss();

    let opened = Instant::now();
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Every connection before it was accepted once this one is answered.
    assert_eq!(server.get("/healthz", "").await.0, 200);
    let idle = settled_rss().await;

    for tcp in &mut connections {
        tcp.write_all(b"GET / HTTP/1.1\r\nX: ").await.unwrap();
    }
    let small = settled_rss().await;

    // The longest head that is still under the limit, and still unfinished.
    let padding = vec![b'a'; MAX_HEAD - 400];
    for tcp in &mut connections {
        tcp.write_all(&padding).await.unwrap();
    }
    let large = settled_rss().await;

    let per = |rss: usize| rss.saturating_sub(before) / CONNECTIONS;
    eprintln!(
        "rss {} KiB, then per connection: idle {} B, {} B with 19 bytes of a head, \
         {} B with {} bytes of a head ({CONNECTIONS} connections)",
        before >> 10,
        per(idle),
        per(small),
        per(large),
        padding.len() + 19,
    );
    assert!(
        opened.elapsed() < timeout,
        "measured before the timeout closed anything"
    );
    assert!(per(idle) < MAX_BYTES_PER_SMALL_HEAD, "{} B idle", per(idle));
    assert!(per(small) < MAX_BYTES_PER_SMALL_HEAD, "{} B", per(small));
    assert!(
        per(large) < MAX_HEAD + MAX_BYTES_PER_SMALL_HEAD,
        "{} B with a long head",
        per(large)
    );

    // Each is closed, unanswered, at the handshake timeout.
    let closes = connections.into_iter().map(|mut tcp| async move {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
        (read.is_ok(), rest.is_empty(), Instant::now())
    });
    let results = futures_util::future::join_all(closes).await;
    for (closed, unanswered, at) in results {
        assert!(closed, "closed by the server");
        assert!(unanswered, "no answer to a head that never ended");
        let after = at - opened;
        assert!(
            after >= timeout && after < timeout + Duration::from_secs(3),
            "closed {after:?} after opening"
        );
    }
    let text = server.hub.metrics().render();
    let needle = format!("herald_limit_hits_total{{limit=\"handshake_timeout\"}} {CONNECTIONS}");
    assert!(text.contains(&needle), "{text}");
    server.stop().await;
}
