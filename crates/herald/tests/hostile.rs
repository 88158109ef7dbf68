//! Attackers against a real server on 127.0.0.1: a peer that sends and never reads must not
//! grow the server's memory, and is dropped by the write timeout.
//!
//! The heap is measured with a counting allocator over the whole test binary (attacker and
//! server run in it), so the cases run one at a time.
#![allow(clippy::unwrap_used)]

mod common;

use herald::{Config, Error, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One case at a time: the heap counters are process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server's write cap.
const CAP: usize = 64 << 10;
/// The server's write timeout.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the attacker floods (unless it is dropped first).
const FLOOD: Duration = Duration::from_secs(5);
/// The most the heap may grow while an attacker floods one connection.
const HEAP_BOUND: isize = 1 << 20;

fn config() -> Config {
    Config::default()
        .write_buffer_size(16 << 10)
        .max_write_buffer_size(CAP)
        .write_timeout(Some(WRITE_TIMEOUT))
        .keepalive_interval(None)
        .keepalive_timeout(Duration::from_secs(1))
}

/// What the server saw of its attacker.
#[derive(Debug)]
struct Seen {
    /// The largest `buffered()` after any event or queued message, or at any 5 ms tick.
    most_buffered: usize,
    events: usize,
    error: Option<Error>,
    /// When the connection ended, from the first event.
    ended_after: Duration,
}

/// The report channel's sender, taken by the first connection's handler.
type Reporter = Arc<Mutex<Option<oneshot::Sender<Seen>>>>;

fn reporter() -> (Reporter, oneshot::Receiver<Seen>) {
    let (tx, rx) = oneshot::channel();
    (Arc::new(Mutex::new(Some(tx))), rx)
}

/// A raw client that did the opening handshake and will never read again.
async fn raw_attacker(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// A masked client frame (RFC 6455 §5.3) with a payload under 64 KiB.
fn masked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

/// Writes `chunk` again and again for [`FLOOD`] or until the server drops the connection;
/// returns the bytes written.
async fn flood(mut tcp: TcpStream, chunk: &[u8]) -> usize {
    let deadline = tokio::time::Instant::now() + FLOOD;
    let mut written = 0;
    loop {
        // Partial writes resume where they stopped: the stream stays whole frames.
        let at = written % chunk.len();
        match tokio::time::timeout_at(deadline, tcp.write(&chunk[at..])).await {
            Ok(Ok(n)) if n > 0 => written += n,
            // Dropped by the server (reset or closed), or the flood is over.
            Ok(_) | Err(_) => return written,
        }
    }
}

/// Floods a fresh server with `chunk` and checks the bounds: `buffered()` at most the cap
/// plus one frame of `frame` bytes, the heap within [`HEAP_BOUND`], and the end by the write
/// timeout.
async fn assert_flood_is_bounded(
    addr: std::net::SocketAddr,
    seen: oneshot::Receiver<Seen>,
    chunk: Vec<u8>,
    frame: usize,
) {
    let attacker = raw_attacker(addr).await;
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let started = Instant::now();
    let written = flood(attacker, &chunk).await;
    let seen = tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .unwrap()
        .unwrap();
    let heap_growth = PEAK.load(Ordering::Relaxed) - baseline;
    let elapsed = started.elapsed();
    eprintln!(
        "attacker wrote {written} bytes; server saw {} events, at most {} bytes buffered \
         (cap {CAP}), heap peak +{heap_growth} bytes, ended after {:?} with {:?}; flood ran {elapsed:?}",
        seen.events, seen.most_buffered, seen.ended_after, seen.error
    );
    assert!(seen.events > 0);
    assert!(
        seen.most_buffered <= CAP + frame,
        "buffered {} bytes",
        seen.most_buffered
    );
    assert!(
        heap_growth < HEAP_BOUND,
        "the heap grew by {heap_growth} bytes"
    );
    assert!(
        matches!(seen.error, Some(Error::WriteTimeout)),
        "{:?}",
        seen.error
    );
    // The attacker stops the server's writes once the kernel buffers are full (a few MiB on
    // loopback, well under a second); then one to two write timeouts pass.
    assert!(seen.ended_after >= WRITE_TIMEOUT, "{:?}", seen.ended_after);
    assert!(
        seen.ended_after < FLOOD,
        "the write timeout did not drop the attacker during the flood: {:?}",
        seen.ended_after
    );
}

/// RFC 6455 §5.5.2 obliges a Pong per Ping, §5.5.3 lets a backlog answer only the latest:
/// a Ping flood that never reads leaves at most the cap queued and ends by the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_that_never_reads_stays_bounded_and_ends_by_write_timeout() {
    let _serial = SERIAL.lock().await;
    let (report, seen) = reporter();
    let addr = common::serve(config(), move |mut ws| {
        let report = report.lock().unwrap().take();
        async move {
            let mut most_buffered = 0;
            let mut events = 0;
            let mut first = None;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let error = loop {
                tokio::select! {
                    item = ws.recv() => match item {
                        Some(Ok(_)) => {
                            first.get_or_insert_with(Instant::now);
                            events += 1;
                            most_buffered = most_buffered.max(ws.buffered());
                        }
                        Some(Err(e)) => break Some(e),
                        None => break None,
                    },
                    _ = tick.tick() => most_buffered = most_buffered.max(ws.buffered()),
                }
            };
            let ended_after = first.map_or(Duration::ZERO, |t| t.elapsed());
            drop(ws);
            if let Some(report) = report {
                let _ = report.send(Seen {
                    most_buffered,
                    events,
                    error,
                    ended_after,
                });
            }
        }
    })
    .await;
    let ping = masked_frame(0x89, &[0x5a; 125]);
    // A Pong of a 125-byte Ping: 2 bytes of header and the payload.
    assert_flood_is_bounded(addr, seen, ping.repeat(512), 127).await;
}

/// A peer that sends data to an echo server and never reads the echoes: the server's sends
/// wait at the cap (back-pressure), and the write timeout ends the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_peer_that_never_reads_stays_bounded_and_ends_by_write_timeout() {
    const MESSAGE: usize = 1024;
    let _serial = SERIAL.lock().await;
    let (report, seen) = reporter();
    let addr = common::serve(config(), move |mut ws| {
        let report = report.lock().unwrap().take();
        async move {
            let mut most_buffered = 0;
            let mut events = 0;
            let mut first = None;
            // The batched echo loop: feed waits at the cap, the stream writes before it reads.
            let error = loop {
                match ws.recv().await {
                    Some(Ok(message)) if message.is_data() => {
                        first.get_or_insert_with(Instant::now);
                        events += 1;
                        if let Err(e) = ws.feed(message).await {
                            break Some(e);
                        }
                        most_buffered = most_buffered.max(ws.buffered());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some(e),
                    None => break None,
                }
            };
            let ended_after = first.map_or(Duration::ZERO, |t| t.elapsed());
            drop(ws);
            if let Some(report) = report {
                let _ = report.send(Seen {
                    most_buffered,
                    events,
                    error,
                    ended_after,
                });
            }
        }
    })
    .await;
    let message = masked_frame(0x82, &[0xa5; MESSAGE]);
    // An echo of 1 KiB: 4 bytes of header and the payload.
    assert_flood_is_bounded(addr, seen, message.repeat(64), MESSAGE + 4).await;
}

/// Below the threshold every Ping is answered at once and in order (Autobahn case 2.10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_reads_gets_a_pong_for_each_of_ten_pings() {
    let _serial = SERIAL.lock().await;
    let addr = common::serve(config(), |mut ws| async move {
        while let Some(Ok(_)) = ws.recv().await {}
    })
    .await;
    let mut client = common::client(addr).await;
    for i in 0..10u8 {
        client
            .feed(Message::Ping(vec![i; 10].into()))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let mut pongs = Vec::new();
    while pongs.len() < 10 {
        let next = tokio::time::timeout(Duration::from_secs(5), client.recv());
        match next.await.unwrap().unwrap().unwrap() {
            Message::Pong(payload) => pongs.push(payload),
            other => panic!("expected a Pong, got {other:?}"),
        }
    }
    let expected: Vec<_> = (0..10u8)
        .map(|i| herald::Bytes::from(vec![i; 10]))
        .collect();
    assert_eq!(pongs, expected);
}
