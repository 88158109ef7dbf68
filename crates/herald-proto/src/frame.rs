//! Frame headers (RFC 6455 §5.2): parsing from any split of the input, and encoding.

use crate::error::ProtocolError;
use bytes::BufMut;

/// A frame's opcode (RFC 6455 §5.2, §11.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: Close.
    Close,
    /// 0x9: Ping.
    Ping,
    /// 0xA: Pong.
    Pong,
}

impl Opcode {
    /// The opcode for the low nibble `bits`.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownOpcode`] for the reserved values 0x3–0x7 and 0xB–0xF.
    pub fn from_bits(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// The low nibble of the first header byte.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong (§5.5).
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as bits 2, 1, 0.
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// The longest header: 2 bytes, an 8-byte extended length, a 4-byte key.
pub const MAX_HEADER_LEN: usize = 14;

impl FrameHeader {
    /// Parses a header at the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold the whole header yet, else the header and
    /// its length in bytes. Nothing is allocated, whatever the announced length.
    ///
    /// # Errors
    /// A reserved opcode, or a 64-bit length with its most significant bit set.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = Opcode::from_bits(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, len_bytes) = match b1 & 0x7f {
            126 => (read_be(buf.get(2..4)), 2),
            127 => (read_be(buf.get(2..10)), 8),
            n => (Some(u64::from(n)), 0),
        };
        let Some(payload_len) = payload_len else {
            return Ok(None);
        };
        // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::InvalidLength);
        }
        let mut len = 2 + len_bytes;
        let mask = if masked {
            let Some(key) = buf.get(len..len + 4) else {
                return Ok(None);
            };
            len += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        let header = Self {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// The number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header with the shortest length encoding (§5.2: "the minimal number of bytes
    /// MUST be used").
    pub fn encode(&self, dst: &mut impl BufMut) {
        let b0 = u8::from(self.fin) << 7 | (self.rsv & 0x07) << 4 | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        dst.put_u8(b0);
        match self.payload_len {
            n @ 0..=125 => dst.put_u8(mask_bit | n as u8),
            n @ 126..=0xffff => {
                dst.put_u8(mask_bit | 126);
                dst.put_u16(n as u16);
            }
            n => {
                dst.put_u8(mask_bit | 127);
                dst.put_u64(n);
            }
        }
        if let Some(key) = self.mask {
            dst.put_slice(&key);
        }
    }
}

fn read_be(bytes: Option<&[u8]>) -> Option<u64> {
    bytes.map(|b| b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §5.2: base framing protocol.
    use super::*;

    fn parse_all(bytes: &[u8]) -> FrameHeader {
        let (header, len) = FrameHeader::parse(bytes).unwrap().unwrap();
        assert_eq!(len, bytes.len());
        header
    }

    #[test]
    fn seven_bit_length_is_parsed() {
        let h = parse_all(&[0x81, 0x05]);
        assert!(h.fin);
        assert_eq!((h.opcode, h.payload_len, h.mask), (Opcode::Text, 5, None));
    }

    #[test]
    fn sixteen_bit_length_is_parsed() {
        let h = parse_all(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(h.payload_len, 256);
    }

    #[test]
    fn sixty_four_bit_length_is_parsed() {
        let h = parse_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(h.payload_len, 65536);
    }

    #[test]
    fn sixty_four_bit_length_with_top_bit_set_is_a_protocol_error() {
        let err = FrameHeader::parse(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidLength);
    }

    #[test]
    fn masking_key_is_parsed() {
        let h = parse_all(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]).unwrap_err(),
                ProtocolError::UnknownOpcode(op)
            );
        }
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for n in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..n]).unwrap(), None, "{n}");
        }
        assert_eq!(parse_all(&full).payload_len, 65536);
    }

    #[test]
    fn encoding_uses_the_shortest_length_form() {
        for (len, expected_len) in [(0u64, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let h = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: Opcode::Binary,
                mask: None,
                payload_len: len,
            };
            let mut buf = Vec::new();
            h.encode(&mut buf);
            assert_eq!(buf.len(), expected_len);
            assert_eq!(h.encoded_len(), expected_len);
            assert_eq!(parse_all(&buf), h);
        }
    }
}
