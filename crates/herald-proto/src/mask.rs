//! Payload masking (RFC 6455 §5.3).
//!
//! The fast kernel XORs eight bytes per step with the key spread over a `u64`; the reference is
//! the RFC's byte loop. A test checks that both agree for every length 0..=1024 at every
//! alignment.

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

    #[test]
    fn fast_kernel_matches_bytewise_reference_for_every_length_and_alignment() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let source: Vec<u8> = (0..1024 + 16).map(|i| (i * 7 + 3) as u8).collect();
        for align in 0..8 {
            for len in 0..=1024 {
                for offset in 0..4 {
                    let mut fast = source[align..align + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask_bytewise(&mut slow, key, offset);
                    assert_eq!(fast, slow, "len {len} align {align} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn masking_while_copying_matches_the_reference_for_every_length_and_alignment() {
        let key = [0x9a, 0x01, 0xfe, 0x42];
        let source: Vec<u8> = (0..1024 + 16).map(|i| (i * 13 + 5) as u8).collect();
        for align in 0..8 {
            for len in 0..=1024 {
                let src = &source[align..align + len];
                let mut fast = vec![0u8; len + align];
                mask_into(&mut fast[align..], src, key);
                let mut slow = src.to_vec();
                apply_mask_bytewise(&mut slow, key, 0);
                assert_eq!(&fast[align..], &slow[..], "len {len} align {align}");
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
