//! Receive and send paths of a `Connection`: a server parsing and unmasking one frame per
//! iteration (binary, and text so that UTF-8 validation is included), and a client masking and
//! queueing one.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use herald_proto::{Config, Connection, Event, FrameHeader, Opcode, SeededEntropy};
use std::hint::black_box;

/// From a tiny chat message to a large binary upload.
const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

/// A frame as a client sends it: masked.
fn masked_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut frame = Vec::with_capacity(header.encoded_len() + payload.len());
    header.encode(&mut frame);
    let start = frame.len();
    frame.extend_from_slice(payload);
    herald_proto::mask::apply_mask(&mut frame[start..], key, 0);
    frame
}

/// Mixed one- to three-byte code points, so the validator leaves its ASCII fast path.
fn text_payload(size: usize) -> Vec<u8> {
    let mut text = "Grüße, κόσμε ☃ — plain ASCII too. ".repeat(size / 16 + 1);
    while text.len() > size {
        text.pop();
    }
    let mut bytes = text.into_bytes();
    bytes.resize(size, b'.');
    bytes
}

fn receive(c: &mut Criterion, name: &str, opcode: Opcode, payload: fn(usize) -> Vec<u8>) {
    let mut group = c.benchmark_group(name);
    for size in SIZES {
        let frame = masked_frame(opcode, &payload(size));
        let mut server = Connection::server(Config::default());
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                server.receive(black_box(&frame));
                let event = server.poll_event();
                assert!(matches!(event, Some(Event::Message(_))));
                event
            });
        });
    }
    group.finish();
}

fn parse_binary(c: &mut Criterion) {
    receive(c, "parse/binary", Opcode::Binary, |size| vec![0xa5; size]);
}

fn parse_text(c: &mut Criterion) {
    receive(c, "parse/text", Opcode::Text, text_payload);
}

fn encode_client(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode/client");
    for size in SIZES {
        let payload = Bytes::from(vec![0xa5; size]);
        let mut client = Connection::client(Config::default(), Box::new(SeededEntropy::new(1)));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                client.send_binary(black_box(payload.clone())).ok();
                let queued = client.transmit_len();
                client.transmit_advance(queued);
                queued
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parse_binary, parse_text, encode_client);
criterion_main!(benches);
