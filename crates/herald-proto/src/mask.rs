//! Payload masking (RFC 6455 §5.3).
//!
//! The fast kernel XORs eight bytes per step with the key spread over a `u64`; the reference is
//! the RFC's byte loop. A test checks that both agree for every length 0..=1024, at every
//! start address modulo 8 and every key phase.

/// XORs `buf` in place with `key`, as if `buf` started at byte `offset` of the payload.
///
/// The operation is its own inverse: it both masks and unmasks. `offset` lets a payload that
/// arrives in pieces be unmasked piece by piece.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate(key, offset);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Whole chunks are a multiple of 4 bytes, so the key phase is unchanged for the tail.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Writes `src` masked with `key` into `dst` (of the same length) in one pass, 8 bytes per
/// step: masking while copying, so a client's send path reads its payload once and never
/// calls `memcpy`.
#[inline]
pub fn mask_into(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut out = dst.chunks_exact_mut(8);
    let mut input = src.chunks_exact(8);
    for (o, i) in (&mut out).zip(&mut input) {
        let mut word = [0u8; 8];
        word.copy_from_slice(i);
        o.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (j, (o, i)) in out
        .into_remainder()
        .iter_mut()
        .zip(input.remainder())
        .enumerate()
    {
        *o = i ^ key[j & 3];
    }
}

/// The RFC's definition, one byte per step: `transformed[i] = original[i] ^ key[i % 4]`.
///
/// Kept as the reference for [`apply_mask`] and as the baseline in benchmarks.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(i + offset) % 4];
    }
}

fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    let r = offset % 4;
    [key[r], key[(r + 1) % 4], key[(r + 2) % 4], key[(r + 3) % 4]]
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §5.3: client-to-server masking.
    use super::*;

    /// The widest step of the fast kernel: every start address modulo this is tried.
    const WORD: usize = 8;
    const MAX_LEN: usize = 1024;

    /// Storage whose start is aligned to a word, so that `&buf[align..]` starts exactly
    /// `align` bytes past a word boundary (a fresh `Vec` would realign every slice).
    #[repr(C, align(64))]
    struct Aligned([u8; MAX_LEN + 2 * WORD]);

    impl Aligned {
        fn filled(seed: u8) -> Box<Self> {
            let mut buf = Box::new(Self([0; MAX_LEN + 2 * WORD]));
            for (i, b) in buf.0.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(7).wrapping_add(seed);
            }
            buf
        }

        /// `len` bytes starting `align` bytes past a word boundary.
        fn at(&mut self, align: usize, len: usize) -> &mut [u8] {
            let slice = &mut self.0[align..align + len];
            assert_eq!(
                slice.as_ptr() as usize % WORD,
                align,
                "misaligned test buffer"
            );
            slice
        }
    }

    #[test]
    fn fast_kernel_matches_bytewise_reference_for_every_length_and_alignment() {
        for key in [[0x37, 0xfa, 0x21, 0x3d], [0x00, 0xff, 0x80, 0x01]] {
            for align in 0..WORD {
                for len in 0..=MAX_LEN {
                    for phase in 0..4 {
                        let mut fast = Aligned::filled(3);
                        let mut slow = Aligned::filled(3);
                        apply_mask(fast.at(align, len), key, phase);
                        apply_mask_bytewise(slow.at(align, len), key, phase);
                        // Around the slice too: the kernel writes nothing outside it.
                        assert!(
                            fast.0 == slow.0,
                            "len {len} align {align} phase {phase} key {key:02x?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn masking_while_copying_matches_the_reference_for_every_length_and_alignment() {
        let key = [0x9a, 0x01, 0xfe, 0x42];
        let mut source = Aligned::filled(5);
        for src_align in 0..WORD {
            for dst_align in 0..WORD {
                for len in 0..=MAX_LEN {
                    let mut fast = Aligned::filled(0);
                    let mut slow = Aligned::filled(0);
                    let src = source.at(src_align, len);
                    mask_into(fast.at(dst_align, len), src, key);
                    let dst = slow.at(dst_align, len);
                    dst.copy_from_slice(src);
                    apply_mask_bytewise(dst, key, 0);
                    assert!(
                        fast.0 == slow.0,
                        "len {len} src align {src_align} dst align {dst_align}"
                    );
                }
            }
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let mut data = b"Hello".to_vec();
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, b"Hello");
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let key = [1, 2, 3, 4];
        let mut whole: Vec<u8> = (0..100u8).collect();
        let mut pieces = whole.clone();
        apply_mask(&mut whole, key, 0);
        let (a, rest) = pieces.split_at_mut(13);
        let (b, c) = rest.split_at_mut(50);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        apply_mask(c, key, 63);
        assert_eq!(whole, pieces);
    }
}
