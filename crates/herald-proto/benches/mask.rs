//! Masking throughput (RFC 6455 §5.3): the word-at-a-time kernel against the RFC's byte loop
//! it is tested to agree with.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use herald_proto::mask::{apply_mask, apply_mask_bytewise};
use std::hint::black_box;

/// From a tiny chat message to a large binary upload.
const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("fast", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), 0));
        });
        group.bench_function(BenchmarkId::new("bytewise", size), |b| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf), black_box(KEY), 0));
        });
    }
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
