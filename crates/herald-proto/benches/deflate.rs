//! permessage-deflate on a chat-like JSON workload: the compression ratio (printed once) and
//! the throughput of a server compressing and a client inflating 1,000 messages.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald_proto::{
    Config, Connection, DeflateConfig, DeflateParams, Event, SeededEntropy, Utf8Bytes,
};
use std::hint::black_box;

const USERS: [&str; 6] = ["alice", "bob", "carol", "dmitri", "eun-ji", "farah"];
const WORDS: [&str; 16] = [
    "hello", "anyone", "seen", "the", "deploy", "logs", "yes", "looks", "fine", "on", "my", "side",
    "lunch", "in", "ten", "minutes",
];

/// Messages like a chat room's pushes: JSON with a channel, offset, user, text and time.
fn chat_messages(n: usize) -> Vec<Utf8Bytes> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|i| {
            let words = 3 + (next() % 12) as usize;
            let text: Vec<&str> = (0..words).map(|_| WORDS[(next() % 16) as usize]).collect();
            Utf8Bytes::from(format!(
                r#"{{"type":"publication","channel":"chat:1234","offset":{},"epoch":"k3v9","data":{{"user":"{}","text":"{}","ts":{}}}}}"#,
                1000 + i,
                USERS[(next() % 6) as usize],
                text.join(" "),
                1_764_000_000_000u64 + i as u64 * 1377,
            ))
        })
        .collect()
}

fn params(takeover: bool) -> DeflateParams {
    DeflateParams {
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
    }
}

fn server(takeover: bool) -> Connection {
    let mut config = DeflateConfig::default();
    config.threshold = 0;
    Connection::server(Config::default()).with_deflate(params(takeover), &config)
}

fn client(takeover: bool) -> Connection {
    Connection::client(Config::default(), Box::new(SeededEntropy::new(3)))
        .with_deflate(params(takeover), &DeflateConfig::default())
}

/// Everything a server sends for `messages`, compressed.
fn wire(messages: &[Utf8Bytes], takeover: bool) -> Vec<u8> {
    let mut conn = server(takeover);
    let mut out = Vec::new();
    for m in messages {
        conn.send_text(m.clone()).expect("open");
    }
    conn.drain_transmit(&mut out);
    out
}

fn bench(c: &mut Criterion) {
    let messages = chat_messages(1000);
    let raw: usize = messages.iter().map(|m| m.len()).sum();
    let plain_wire = raw + 2 * messages.len(); // a 2-byte header each, uncompressed
    for takeover in [true, false] {
        let compressed = wire(&messages, takeover).len();
        eprintln!(
            "chat JSON, {} messages, {raw} bytes of payload: {compressed} bytes on the wire with \
             {}context takeover = {:.1}% of the uncompressed frames ({plain_wire} bytes)",
            messages.len(),
            if takeover { "" } else { "no " },
            100.0 * compressed as f64 / plain_wire as f64
        );
    }
    let mut group = c.benchmark_group("deflate_chat");
    group.throughput(Throughput::Bytes(raw as u64));
    for takeover in [true, false] {
        let label = if takeover { "takeover" } else { "no_takeover" };
        group.bench_function(format!("server_compress_1000/{label}"), |b| {
            let mut conn = server(takeover);
            let mut out = Vec::with_capacity(raw);
            b.iter(|| {
                for m in &messages {
                    conn.send_text(m.clone()).expect("open");
                }
                out.clear();
                conn.drain_transmit(&mut out);
                black_box(out.len())
            })
        });
        let stream = wire(&messages, takeover);
        group.bench_function(format!("client_inflate_1000/{label}"), |b| {
            b.iter_batched(
                || client(takeover),
                |mut conn| {
                    conn.receive(&stream);
                    let mut n = 0;
                    while let Some(Event::Message(m)) = conn.poll_event() {
                        n += m.as_bytes().len();
                    }
                    assert_eq!(n, raw);
                    n
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
