//! The compressor and decompressor of one connection (RFC 7692 §6, §7.2).

use super::{DeflateConfig, DeflateParams};
use crate::config::Role;
use crate::error::ProtocolError;
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// RFC 7692 §7.2.1: the tail a sync flush ends with, removed on send, put back on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib cannot run raw deflate with an 8-bit window and uses 9 instead. Its compressor never
/// emits distances beyond 256 bytes then (the window less the lookahead), so the peer's
/// 8-bit window still decodes the stream; and a 9-bit inflate window reads any 8-bit stream.
fn zlib_bits(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

#[derive(Debug)]
pub(crate) struct Codec {
    params: DeflateParams,
    role: Role,
    level: u32,
    threshold: usize,
    compress: Option<Box<Compress>>,
    decompress: Option<Box<Decompress>>,
}

impl Codec {
    pub(crate) fn new(params: DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self {
            params,
            role,
            level: config.level.min(9),
            threshold: config.threshold,
            compress: None,
            decompress: None,
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// (our window bits, we reset after each message)
    fn ours(&self) -> (u8, bool) {
        match self.role {
            Role::Server => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
            Role::Client => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
        }
    }

    /// (the peer's window bits, the peer resets after each message)
    fn theirs(&self) -> (u8, bool) {
        match self.role {
            Role::Server => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
            Role::Client => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
        }
    }

    pub(crate) fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compresses one whole message (§7.2.1): deflate, sync flush, tail removed.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Bytes {
        let (bits, reset) = self.ours();
        let level = self.level;
        let c = self.compress.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(
                Compression::new(level),
                false,
                zlib_bits(bits),
            ))
        });
        Bytes::from(deflate(c, payload, reset))
    }

    /// Decompresses the next piece of a compressed message into `out`, which may grow to
    /// `limit` bytes and no further (§7.2.2). `fin` marks the message's last frame.
    ///
    /// # Errors
    /// [`ProtocolError::MessageTooLarge`] past `limit`; [`ProtocolError::InvalidCompressedData`]
    /// for a corrupt stream.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let (bits, reset) = self.theirs();
        let d = self.decompress.get_or_insert_with(|| {
            Box::new(Decompress::new_with_window_bits(false, zlib_bits(bits)))
        });
        let mut ended = inflate(d, input, out, limit)?;
        if fin {
            if !ended {
                ended = inflate(d, &TAIL, out, limit)?;
            }
            if reset || ended {
                d.reset(false);
            }
        }
        Ok(())
    }
}

/// Compresses a whole payload with a sync flush and strips the tail.
pub(crate) fn deflate(c: &mut Compress, payload: &[u8], reset: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let start_in = c.total_in();
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        let consumed = usize::try_from(c.total_in() - start_in).unwrap_or(payload.len());
        // Compressing valid state into spare room cannot fail; stop rather than spin if it does.
        if c.compress_vec(
            &payload[consumed.min(payload.len())..],
            &mut out,
            FlushCompress::Sync,
        )
        .is_err()
        {
            break;
        }
        // zlib: room left after a sync flush means the flush is complete.
        if out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if reset {
        c.reset();
    }
    out
}

/// Inflates `input` into `out` in bounded steps, never letting `out` hold more than
/// `limit + 1` bytes of output. Returns whether the deflate stream ended (a BFINAL block).
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, ProtocolError> {
    loop {
        if out.len() > limit {
            return Err(ProtocolError::MessageTooLarge);
        }
        if out.capacity() == out.len() {
            let room = (limit + 1 - out.len()).min(input.len().saturating_mul(4).max(16 << 10));
            out.reserve_exact(room);
        }
        let in_before = d.total_in();
        let status = d
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|_| ProtocolError::InvalidCompressedData)?;
        let consumed = usize::try_from(d.total_in() - in_before).unwrap_or(input.len());
        input = &input[consumed.min(input.len())..];
        if out.len() > limit {
            return Err(ProtocolError::MessageTooLarge);
        }
        if matches!(status, Status::StreamEnd) {
            return Ok(true);
        }
        // zlib: output room left over means all input that could be used was used.
        if out.len() < out.capacity() {
            return Ok(false);
        }
    }
}
