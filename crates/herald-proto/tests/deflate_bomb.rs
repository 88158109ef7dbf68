//! RFC 7692 §8.1 and the message limit: a deflate bomb stops at the limit with 1009, having
//! allocated no more than the limit (measured with a counting allocator).
#![allow(clippy::unwrap_used)]

use herald_proto::{Config, Connection, DeflateConfig, DeflateParams, Event, ProtocolError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A raw deflate stream (fixed Huffman codes, RFC 1951 §3.2.6) of one literal 0 followed by
/// `matches` copies of <length 258, distance 1>: 13 bits that inflate to 258 bytes each.
fn bomb(matches: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(matches * 13 / 8 + 16);
    let (mut acc, mut n) = (0u64, 0u32);
    let mut put = |bits: u64, count: u32, out: &mut Vec<u8>| {
        acc |= bits << n;
        n += count;
        while n >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    };
    // Huffman codes go most significant bit first: reverse them into the LSB-first stream.
    let code = |value: u64, len: u32| value.reverse_bits() >> (64 - len);
    put(0b010, 3, &mut out); // BFINAL 0, BTYPE 01 (fixed)
    put(code(0x30, 8), 8, &mut out); // literal 0
    for _ in 0..matches {
        put(code(0xc5, 8), 8, &mut out); // length code 285: 258 bytes
        put(0, 5, &mut out); // distance code 0: distance 1
    }
    put(0, 8, &mut out);
    out
}

#[test]
fn deflate_bomb_stops_at_the_message_limit_with_1009_within_the_limit_of_memory() {
    const LIMIT: usize = 8 << 20;
    // About 6.8 MB that would inflate to 1 GiB.
    let payload = bomb((1 << 30) / 258);
    assert!(payload.len() < LIMIT);
    let params = DeflateParams {
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        server_no_context_takeover: false,
        client_no_context_takeover: false,
    };
    let mut client = Connection::client(
        Config::default()
            .with_max_message_size(LIMIT)
            .with_max_frame_size(LIMIT),
        Box::new(herald_proto::SeededEntropy::new(1)),
    )
    .with_deflate(params, &DeflateConfig::default());
    let mut frame = vec![0xc2, 127];
    frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    frame.extend_from_slice(&payload);
    client.receive(&frame);
    drop((frame, payload));
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let event = client.poll_event().unwrap();
    let Event::Closed(closed) = event else {
        panic!("{event:?}")
    };
    assert_eq!(closed.error, Some(ProtocolError::MessageTooLarge));
    assert_eq!(closed.sent.unwrap().code.as_u16(), 1009);
    let grown = PEAK.load(Ordering::Relaxed) - base;
    // The inflated output (at most LIMIT + 1 bytes) plus the inflate state.
    assert!(
        grown < LIMIT + (1 << 20),
        "allocated {grown} bytes for a {LIMIT}-byte limit"
    );
}
