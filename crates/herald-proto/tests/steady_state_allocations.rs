//! The hot path allocates nothing per message in the steady state: a server receiving masked
//! text frames and echoing them, measured with a counting allocator.
//!
//! Only the measuring thread's allocations count: the test harness's own threads (output
//! capture, the slow-test watchdog) may allocate at any moment and are not the engine's.
#![allow(clippy::unwrap_used)]

use herald_proto::{Config, Connection, Event, SeededEntropy};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::IoSlice;

struct Counting;

thread_local! {
    /// Allocations made by this thread while `MEASURING` is set.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    // `try_with`: a thread being torn down has no locals left, and is not measured.
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged and only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One round: 16 pipelined 20-byte text frames in, their echoes out through vectored writes.
fn round(server: &mut Connection, input: &[u8], sink: &mut [u8]) {
    server.read_buffer().extend_from_slice(input);
    while let Some(event) = server.poll_event() {
        let Event::Message(message) = event else {
            panic!("{event:?}")
        };
        server.send(message).unwrap();
    }
    while server.transmit_len() > 0 {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = server.transmit_chunks(&mut slices);
        let mut written = 0;
        for slice in &slices[..n] {
            let len = slice.len().min(sink.len());
            sink[..len].copy_from_slice(&slice[..len]);
            written += len;
        }
        server.transmit_advance(written);
    }
}

#[test]
fn echoing_small_messages_allocates_nothing_per_message_in_the_steady_state() {
    let mut client = Connection::client(Config::default(), Box::new(SeededEntropy::new(9)));
    for i in 0..16 {
        client.send_text(format!("message number {i:05}")).unwrap();
    }
    let mut input = Vec::new();
    client.drain_transmit(&mut input);
    let mut server = Connection::server(Config::default());
    let mut sink = vec![0u8; 64 << 10];
    for _ in 0..100 {
        round(&mut server, &input, &mut sink);
    }
    MEASURING.with(|m| m.set(true));
    for _ in 0..1000 {
        round(&mut server, &input, &mut sink);
    }
    MEASURING.with(|m| m.set(false));
    let allocations = ALLOCATIONS.with(Cell::get);
    assert_eq!(allocations, 0, "allocations in 1,000 rounds of 16 messages");
}
