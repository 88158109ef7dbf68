//! The outgoing byte queue that a driver drains.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// Payloads at least this long are queued by reference instead of copied.
pub(crate) const SHARE_THRESHOLD: usize = 8 << 10;

/// Frames waiting to be written, in order: shared segments, then a tail that small frames are
/// copied into so that many of them leave in one write.
#[derive(Debug, Default)]
pub(crate) struct Transmit {
    segments: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl Transmit {
    /// The buffer that the next bytes are appended to.
    pub(crate) fn tail(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Records that `n` bytes were appended to the tail.
    pub(crate) fn grew(&mut self, n: usize) {
        self.len += n;
    }

    /// Queues `bytes` after everything queued so far, without copying.
    pub(crate) fn push_shared(&mut self, bytes: Bytes) {
        if !self.tail.is_empty() {
            self.segments.push_back(self.tail.split().freeze());
        }
        self.len += bytes.len();
        self.segments.push_back(bytes);
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn chunks<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let all = self.segments.iter().map(|b| &b[..]).chain([&self.tail[..]]);
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(all.filter(|c| !c.is_empty())) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// Drops the first `n` queued bytes (at most all of them).
    pub(crate) fn advance(&mut self, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.segments.front_mut() else {
                self.tail.advance(n);
                return;
            };
            let step = n.min(front.len());
            front.advance(step);
            n -= step;
            if front.is_empty() {
                self.segments.pop_front();
            }
        }
    }
}
