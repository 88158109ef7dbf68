//! Client frame construction and a header-only parser for server frames.

use bytes::{Bytes, BytesMut};

/// Mask key applied to every client frame. RFC 6455 asks for an unpredictable
/// key, but a fixed one is fine for load generation against a trusted server
/// and lets one pre-built frame be reused for every message.
const MASK_KEY: [u8; 4] = [0x5a, 0x13, 0xc7, 0x8e];

/// Builds one complete masked client frame (FIN set) carrying `size` bytes.
///
/// Text payloads are ASCII `x`; binary payloads are a repeating byte pattern.
pub(crate) fn build_client_frame(size: usize, binary: bool) -> Bytes {
    let opcode: u8 = if binary { 0x2 } else { 0x1 };
    let mut frame = BytesMut::with_capacity(size + 14);
    frame.extend_from_slice(&[0x80 | opcode]);
    if size < 126 {
        // `size` < 126 fits in the 7-bit length field.
        frame.extend_from_slice(&[0x80 | size as u8]);
    } else if let Ok(len) = u16::try_from(size) {
        frame.extend_from_slice(&[0x80 | 126]);
        frame.extend_from_slice(&len.to_be_bytes());
    } else {
        frame.extend_from_slice(&[0x80 | 127]);
        frame.extend_from_slice(&(size as u64).to_be_bytes());
    }
    frame.extend_from_slice(&MASK_KEY);
    frame.extend((0..size).map(|i| {
        let plain = if binary { (i % 251) as u8 } else { b'x' };
        plain ^ MASK_KEY[i % 4]
    }));
    frame.freeze()
}

/// Errors detected while parsing the server's frame stream.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// The server sent a close frame.
    Closed,
    /// The server masked a frame, which servers must not do.
    Masked,
    /// A reserved bit or opcode was set.
    Reserved(u8),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("server sent a close frame"),
            Self::Masked => f.write_str("server sent a masked frame"),
            Self::Reserved(b0) => write!(f, "reserved bits or opcode in first byte {b0:#04x}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Incremental parser that looks only at frame headers and skips payloads.
///
/// Payload bytes are never copied: the parser just counts down how many
/// bytes of the current frame are still to come, across any number of reads.
#[derive(Debug, Default)]
pub(crate) struct FrameSkipper {
    /// Payload bytes of the current frame not yet seen.
    remaining: u64,
    /// Whether the current frame is a data frame with FIN set.
    completes: bool,
    /// Partial header carried over from the previous read.
    header: [u8; 10],
    header_len: usize,
}

impl FrameSkipper {
    /// Consumes `data` and returns how many messages were completed in it.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<usize, ParseError> {
        let mut done = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let take =
                    usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
                data = &data[take..];
                self.remaining -= take as u64;
                if self.remaining == 0 && self.completes {
                    done += 1;
                }
                continue;
            }

            let consumed = if self.header_len == 0
                && let Some(need) = header_size(data)
                && data.len() >= need
            {
                self.start_frame(&data[..need])?;
                need
            } else {
                self.stash_header(data)?
            };
            data = &data[consumed..];

            if self.header_len == 0 && self.remaining == 0 && self.completes {
                // Complete frame without payload.
                done += 1;
            }
        }
        Ok(done)
    }

    /// Appends header bytes to the carried-over header, starting the frame
    /// once the header is complete. Returns how many bytes were taken.
    fn stash_header(&mut self, data: &[u8]) -> Result<usize, ParseError> {
        let mut taken = 0;
        loop {
            let need = header_size(&self.header[..self.header_len]).unwrap_or(2);
            if self.header_len == need {
                break;
            }
            let Some(&b) = data.get(taken) else {
                return Ok(taken);
            };
            self.header[self.header_len] = b;
            self.header_len += 1;
            taken += 1;
        }
        let header = self.header;
        let len = self.header_len;
        self.header_len = 0;
        self.start_frame(&header[..len])?;
        Ok(taken)
    }

    fn start_frame(&mut self, header: &[u8]) -> Result<(), ParseError> {
        let b0 = header[0];
        let b1 = header[1];
        if b1 & 0x80 != 0 {
            return Err(ParseError::Masked);
        }
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            return Err(ParseError::Reserved(b0));
        }
        let is_data = match opcode {
            0x0..=0x2 => true,
            0x8 => return Err(ParseError::Closed),
            0x9 | 0xa => false,
            _ => return Err(ParseError::Reserved(b0)),
        };
        self.remaining = match b1 & 0x7f {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => u64::from_be_bytes([
                header[2], header[3], header[4], header[5], header[6], header[7], header[8],
                header[9],
            ]),
            n => u64::from(n),
        };
        self.completes = is_data && b0 & 0x80 != 0;
        Ok(())
    }
}

/// Size of the (unmasked) header that starts with `data`, if known yet.
fn header_size(data: &[u8]) -> Option<usize> {
    let b1 = *data.get(1)?;
    Some(match b1 & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns a masked client frame into the unmasked frame a server echoes.
    fn as_server_frame(client: &[u8]) -> Vec<u8> {
        let len_field = client[1] & 0x7f;
        let ext = match len_field {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mut out = vec![client[0], len_field];
        out.extend_from_slice(&client[2..2 + ext]);
        let key = &client[2 + ext..6 + ext];
        out.extend(
            client[6 + ext..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4]),
        );
        out
    }

    #[test]
    fn length_encodings() {
        for (size, header) in [(0, 2), (20, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let frame = build_client_frame(size, false);
            assert_eq!(frame.len(), header + 4 + size, "size {size}");
            assert_eq!(frame[0], 0x81);
            assert_eq!(frame[1] & 0x80, 0x80);
            let server = as_server_frame(&frame);
            assert!(server[header..].iter().all(|&b| b == b'x'));
        }
        assert_eq!(build_client_frame(3, true)[0], 0x82);
    }

    #[test]
    fn counts_messages_across_any_split() {
        let mut stream = Vec::new();
        for size in [0, 1, 125, 126, 300, 65535, 65536, 70000] {
            stream.extend(as_server_frame(&build_client_frame(size, true)));
        }
        // A fragmented message: first fragment without FIN, a ping, then the
        // final continuation.
        stream.extend_from_slice(&[0x01, 0x03, b'a', b'b', b'c']);
        stream.extend_from_slice(&[0x89, 0x01, b'p']);
        stream.extend_from_slice(&[0x80, 0x02, b'd', b'e']);

        for chunk in [1, 2, 3, 7, 64, 4096, 65536, stream.len()] {
            let mut parser = FrameSkipper::default();
            let mut done = 0;
            for part in stream.chunks(chunk) {
                done += parser.feed(part).expect("valid stream");
            }
            assert_eq!(done, 9, "chunk size {chunk}");
        }
    }

    #[test]
    fn rejects_close_and_masked_frames() {
        let mut parser = FrameSkipper::default();
        assert!(matches!(
            parser.feed(&[0x88, 0x00]),
            Err(ParseError::Closed)
        ));
        let mut parser = FrameSkipper::default();
        assert!(matches!(
            parser.feed(&[0x82, 0x81]),
            Err(ParseError::Masked)
        ));
    }
}
