//! Hostile HTTP/2 clients, as raw frames on a real h2c socket: a stream flood past
//! SETTINGS_MAX_CONCURRENT_STREAMS, rapid reset, an oversized header list, a CONTINUATION
//! flood and an idle connection. Each ends in its documented outcome, and the server keeps
//! serving other clients.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const NO_ERROR: u32 = 0x0;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix under `first` (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | u8::try_from(value).unwrap());
        return;
    }
    out.push(first | u8::try_from(max).unwrap());
    value -= max;
    while value >= 128 {
        out.push(u8::try_from(value % 128).unwrap() | 0x80);
        value /= 128;
    }
    out.push(u8::try_from(value).unwrap());
}

/// A literal header, never indexed, with a name from the static table (`index`) or given.
fn literal(out: &mut Vec<u8>, index: usize, name: &str, value: &str) {
    integer(out, 0x00, 4, index);
    if index == 0 {
        integer(out, 0x00, 7, name.len());
        out.extend_from_slice(name.as_bytes());
    }
    integer(out, 0x00, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A GET's header block: `:method GET`, `:scheme http`, `:path`, `:authority`, and `extra`.
fn get(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![0x82, 0x86];
    literal(&mut out, 4, "", path);
    literal(&mut out, 1, "", "localhost");
    for (name, value) in extra {
        literal(&mut out, 0, name, value);
    }
    out
}

/// One frame as read: type, flags, stream, payload.
#[derive(Debug)]
struct Frame {
    kind: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
}

struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects with the client preface and empty SETTINGS, and acknowledges the server's.
    async fn open(server: &Server) -> Self {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        hello.extend(frame(SETTINGS, 0x1, 0, &[]));
        tcp.write_all(&hello).await.unwrap();
        Self {
            tcp,
            buf: Vec::new(),
        }
    }

    /// Writes; false once the server closed the connection.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.tcp.write_all(bytes).await.is_ok()
    }

    /// The next frame, or `None` at EOF (or a reset).
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = usize::from(self.buf[0]) << 16
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9 + len).collect();
                    return Some(Frame {
                        kind: head[3],
                        stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
                        payload: head[9..].to_vec(),
                    });
                }
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .expect("a frame in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Frames until EOF.
    async fn rest(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            frames.push(frame);
        }
        frames
    }

    /// Frames until one matches `want` (returned last), or EOF.
    async fn until(&mut self, want: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            let done = want(&frame);
            frames.push(frame);
            if done {
                break;
            }
        }
        frames
    }
}

fn metric(server: &Server, line: &str) -> bool {
    server.hub.metrics().render().lines().any(|l| l == line)
}

/// Another client is still served, over HTTP/1.1 and over HTTP/2.
async fn still_serving(server: &Server) {
    assert_eq!(server.get("/healthz", "").await.0, 200);
    let mut other = Conn::open(server).await;
    assert!(
        other
            .send(&frame(
                HEADERS,
                END_STREAM | END_HEADERS,
                1,
                &get("/healthz", &[])
            ))
            .await
    );
    let frames = other.until(|f| f.kind == HEADERS && f.stream == 1).await;
    // `:status 200` is static-table index 8, indexed: 0x88.
    assert_eq!(
        frames.last().unwrap().payload.first(),
        Some(&0x88),
        "{frames:?}"
    );
}

#[tokio::test]
async fn a_stream_flood_past_max_concurrent_streams_is_refused_then_goaway_enhance_your_calm() {
    let mut cfg = config();
    cfg.limits.max_streams_per_connection = 4;
    cfg.limits.http2_max_pending_resets = 8;
    let mut server = Server::start(cfg).await;
    let mut conn = Conn::open(&server).await;
    // Event streams stay open: the first four streams take every slot.
    let mut flood = Vec::new();
    for n in 0..40u32 {
        flood.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1 + 2 * n,
            &get("/sse?channel=flood", &[]),
        ));
    }
    conn.send(&flood).await;
    let frames = conn.rest().await;
    let refused: Vec<u32> = frames
        .iter()
        .filter(|f| f.kind == RST_STREAM && f.code() == REFUSED_STREAM)
        .map(|f| f.stream)
        .collect();
    assert!(refused.len() >= 8, "{frames:?}");
    assert!(
        refused.iter().all(|&s| s > 7),
        "the first four are served: {refused:?}"
    );
    let goaway = frames.iter().find(|f| f.kind == GOAWAY).expect("a GOAWAY");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM);
    let hub = server.hub.clone();
    wait_for(|| {
        hub.metrics()
            .render()
            .contains("herald_http2_errors_total{code=\"enhance_your_calm\"} 1")
    })
    .await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn rapid_reset_gets_goaway_enhance_your_calm_and_is_counted() {
    let mut cfg = config();
    cfg.limits.http2_max_pending_resets = 8;
    let mut server = Server::start(cfg).await;
    let mut conn = Conn::open(&server).await;
    let started = Instant::now();
    let mut burst = Vec::new();
    for n in 0..1000u32 {
        let stream = 1 + 2 * n;
        burst.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            stream,
            &get("/healthz", &[]),
        ));
        burst.extend(frame(RST_STREAM, 0, stream, &0x8u32.to_be_bytes()));
    }
    conn.send(&burst).await;
    let frames = conn.rest().await;
    let goaway = frames.iter().find(|f| f.kind == GOAWAY).expect("a GOAWAY");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM, "{frames:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let hub = server.hub.clone();
    wait_for(|| {
        hub.metrics()
            .render()
            .contains("herald_http2_errors_total{code=\"enhance_your_calm\"} 1")
    })
    .await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_header_list_is_431_on_its_stream_and_the_connection_serves_on() {
    let mut server = Server::start(config()).await;
    let mut conn = Conn::open(&server).await;
    // 20 KiB of headers (the limit is the handshake head's, 16 KiB), over HEADERS and a
    // CONTINUATION.
    let block = get("/healthz", &[("x-big", &"a".repeat(20 << 10))]);
    let (first, rest) = block.split_at(16000);
    let mut bytes = frame(HEADERS, END_STREAM, 1, first);
    bytes.extend(frame(CONTINUATION, END_HEADERS, 1, rest));
    conn.send(&bytes).await;
    let frames = conn.until(|f| f.kind == HEADERS && f.stream == 1).await;
    let head = frames.last().unwrap();
    assert_eq!(head.kind, HEADERS, "{frames:?}");
    // `:status 431`: a literal with the static name `:status` (index 8), its value "431"
    // plain or Huffman-coded (011010 011001 00001, padded with ones).
    let huffman: &[u8] = &[0x83, 0x69, 0x90, 0xff];
    assert!(
        head.payload.windows(3).any(|w| w == b"431")
            || head.payload.windows(4).any(|w| w == huffman),
        "{:?}",
        head.payload
    );
    // The same connection serves the next request.
    conn.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        3,
        &get("/healthz", &[]),
    ))
    .await;
    let frames = conn.until(|f| f.kind == HEADERS && f.stream == 3).await;
    assert_eq!(
        frames.last().unwrap().payload.first(),
        Some(&0x88),
        "{frames:?}"
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off_with_a_bounded_read() {
    let mut server = Server::start(config()).await;
    let mut conn = Conn::open(&server).await;
    let mut sent = 0usize;
    let header = get("/healthz", &[]);
    assert!(conn.send(&frame(HEADERS, 0, 1, &header)).await);
    // Header fields that never end: 16 KiB CONTINUATIONs without END_HEADERS.
    let mut piece = Vec::new();
    literal(&mut piece, 0, "x-flood", &"f".repeat(16000));
    let chunk = frame(CONTINUATION, 0, 1, &piece);
    // Until the server closes the connection, or stops reading (a write that no longer
    // completes): either way it holds no more of the flood than its bounds.
    while sent < 64 << 20 {
        let write = tokio::time::timeout(Duration::from_secs(2), conn.send(&chunk)).await;
        if !matches!(write, Ok(true)) {
            break;
        }
        sent += chunk.len();
    }
    let frames = conn.rest().await;
    let goaway = frames.iter().find(|f| f.kind == GOAWAY).expect("a GOAWAY");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM, "after {sent} bytes");
    assert!(sent < 16 << 20, "cut off after {sent} bytes");
    let hub = server.hub.clone();
    wait_for(|| {
        hub.metrics()
            .render()
            .contains("herald_http2_errors_total{code=\"enhance_your_calm\"} 1")
    })
    .await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn an_idle_h2_connection_gets_goaway_no_error_and_is_closed() {
    let mut cfg = config();
    cfg.limits.http2_idle_timeout = Duration::from_millis(300);
    let mut server = Server::start(cfg).await;
    // A connection with an event stream open is busy, not idle.
    let mut busy = Conn::open(&server).await;
    busy.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        &get("/sse?channel=idle", &[]),
    ))
    .await;
    busy.until(|f| f.kind == HEADERS && f.stream == 1).await;
    let started = Instant::now();
    let mut idle = Conn::open(&server).await;
    let frames = idle.rest().await;
    let took = started.elapsed();
    let goaway = frames.iter().find(|f| f.kind == GOAWAY).expect("a GOAWAY");
    assert_eq!(goaway.code(), NO_ERROR);
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert!(metric(
        &server,
        "herald_limit_hits_total{limit=\"http2_idle_timeout\"} 1"
    ));
    // The busy one was not closed: it still answers.
    busy.send(&frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        3,
        &get("/healthz", &[]),
    ))
    .await;
    let frames = busy.until(|f| f.kind == HEADERS && f.stream == 3).await;
    assert_eq!(
        frames.last().unwrap().payload.first(),
        Some(&0x88),
        "{frames:?}"
    );
    still_serving(&server).await;
    server.stop().await;
}
