//! Pre-built masked client frames and a header-only parser for what the server sends, so that
//! the generator does no per-message masking, unmasking or UTF-8 work (RFC 6455 §5.2).

use bytes::{Bytes, BytesMut};

/// Builds one complete masked frame (FIN set) carrying `size` bytes: ASCII `x` for text, a
/// repeating byte pattern for binary. One masking key serves every copy of the frame.
pub(crate) fn client_frame(size: usize, binary: bool, key: [u8; 4]) -> Bytes {
    let opcode = if binary { 0x2 } else { 0x1 };
    let mut frame = BytesMut::with_capacity(size + 14);
    frame.extend_from_slice(&header(opcode, size as u64));
    frame.extend_from_slice(&key);
    frame.extend((0..size).map(|i| {
        // `i % 251` is below 256.
        let plain = if binary { (i % 251) as u8 } else { b'x' };
        plain ^ key[i % 4]
    }));
    frame.freeze()
}

/// A masked Close frame with `code` and no reason.
pub(crate) fn close_frame(code: u16, key: [u8; 4]) -> Bytes {
    let [hi, lo] = code.to_be_bytes();
    let payload = [hi ^ key[0], lo ^ key[1]];
    let mut frame = BytesMut::with_capacity(8);
    frame.extend_from_slice(&header(0x8, 2));
    frame.extend_from_slice(&key);
    frame.extend_from_slice(&payload);
    frame.freeze()
}

/// The first bytes of a masked frame with FIN set: opcode, mask bit and length (RFC 6455 §5.2).
fn header(opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match len {
        // Below 126: fits in the 7-bit field.
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            // Checked by the arm: fits in 16 bits.
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out
}

/// Why the server's frame stream stopped the exchange.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The server sent a Close frame.
    Closed,
    /// The server masked a frame, which RFC 6455 §5.1 forbids.
    Masked,
    /// Reserved bits or a reserved opcode (no extension is negotiated).
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

/// Counts completed data messages from frame headers; payloads are skipped, never copied.
#[derive(Debug, Default)]
pub(crate) struct FrameSkipper {
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// Whether the current frame ends a data message.
    completes: bool,
    /// A header split across reads (with a masking key when masked frames are accepted).
    header: [u8; 14],
    header_len: usize,
    /// Accept masked frames: the peer is a TCP echo returning the client's frames unchanged.
    masked: bool,
}

impl FrameSkipper {
    /// A skipper that also accepts masked frames (and skips their masking key): for a raw TCP
    /// echo, which sends back the client's own frames.
    pub(crate) fn accepting_masked() -> Self {
        Self {
            masked: true,
            ..Self::default()
        }
    }

    /// Consumes `data`; returns how many data messages it completed.
    ///
    /// # Errors
    /// [`ParseError`] at a Close frame or a frame a server may not send.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<u64, ParseError> {
        let mut done = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let take =
                    usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
                data = &data[take..];
                self.remaining -= take as u64;
                done += u64::from(self.remaining == 0 && self.completes);
                continue;
            }
            let consumed = self.take_header(data)?;
            data = &data[consumed..];
            if self.header_len == 0 && self.remaining == 0 && self.completes {
                // A whole frame with an empty payload.
                done += 1;
                self.completes = false;
            }
        }
        Ok(done)
    }

    /// Moves header bytes into `header` until it is whole, then starts the frame. Returns how
    /// many bytes of `data` it took.
    fn take_header(&mut self, data: &[u8]) -> Result<usize, ParseError> {
        let mut taken = 0;
        loop {
            let need = header_size(&self.header[..self.header_len], self.masked).unwrap_or(2);
            if self.header_len == need {
                break;
            }
            let Some(&byte) = data.get(taken) else {
                return Ok(taken);
            };
            self.header[self.header_len] = byte;
            self.header_len += 1;
            taken += 1;
        }
        let len = std::mem::take(&mut self.header_len);
        let header = self.header;
        self.start_frame(&header[..len])?;
        Ok(taken)
    }

    fn start_frame(&mut self, header: &[u8]) -> Result<(), ParseError> {
        let (b0, b1) = (header[0], header[1]);
        if b1 & 0x80 != 0 && !self.masked {
            return Err(ParseError::Masked);
        }
        if b0 & 0x70 != 0 {
            return Err(ParseError::Reserved(b0));
        }
        let is_data = match b0 & 0x0f {
            0x0..=0x2 => true,
            0x8 => return Err(ParseError::Closed),
            0x9 | 0xa => false,
            _ => return Err(ParseError::Reserved(b0)),
        };
        self.remaining = match (b1 & 0x7f, header) {
            (126, [_, _, a, b, ..]) => u64::from(u16::from_be_bytes([*a, *b])),
            (127, [_, _, rest @ ..]) => rest
                .iter()
                .take(8)
                .fold(0, |acc, &b| (acc << 8) | u64::from(b)),
            (n, _) => u64::from(n),
        };
        self.completes = is_data && b0 & 0x80 != 0;
        Ok(())
    }
}

/// The size of the header that starts with `data`, once its second byte is known (with the
/// masking key when `masked` frames are accepted and this one is).
fn header_size(data: &[u8], masked: bool) -> Option<usize> {
    let b1 = *data.get(1)?;
    let key = if masked && b1 & 0x80 != 0 { 4 } else { 0 };
    Some(
        key + match b1 & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x5a, 0x13, 0xc7, 0x8e];

    /// The frame a server echoes for a masked client frame: same header, unmasked payload.
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
        let payload = client[6 + ext..].iter().enumerate();
        out.extend(payload.map(|(i, b)| b ^ key[i % 4]));
        out
    }

    #[test]
    fn every_length_encoding_round_trips() {
        for (size, header) in [(0, 2), (20, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let frame = client_frame(size, false, KEY);
            assert_eq!(frame.len(), header + 4 + size, "size {size}");
            assert_eq!(frame[0], 0x81);
            let server = as_server_frame(&frame);
            assert!(server[header..].iter().all(|&b| b == b'x'));
        }
        assert_eq!(client_frame(3, true, KEY)[0], 0x82);
    }

    #[test]
    fn close_frame_carries_the_code_masked() {
        let frame = close_frame(1000, KEY);
        assert_eq!(as_server_frame(&frame), [0x88, 0x02, 0x03, 0xe8]);
    }

    #[test]
    fn messages_are_counted_across_any_split_of_the_stream() {
        let mut stream = Vec::new();
        for size in [0, 1, 125, 126, 300, 65535, 65536, 70000] {
            stream.extend(as_server_frame(&client_frame(size, true, KEY)));
        }
        // RFC 6455 §5.4: a fragmented message with a Ping between its fragments.
        stream.extend_from_slice(&[0x01, 0x03, b'a', b'b', b'c']);
        stream.extend_from_slice(&[0x89, 0x01, b'p']);
        stream.extend_from_slice(&[0x80, 0x02, b'd', b'e']);
        for chunk in [1, 2, 3, 7, 64, 4096, 65536, stream.len()] {
            let mut parser = FrameSkipper::default();
            let done: u64 = stream.chunks(chunk).map(|p| parser.feed(p).unwrap()).sum();
            assert_eq!(done, 9, "chunk size {chunk}");
        }
    }

    #[test]
    fn a_raw_echo_of_the_clients_own_masked_frames_is_counted_across_any_split() {
        let mut stream = Vec::new();
        for size in [0, 20, 126, 65536] {
            stream.extend_from_slice(&client_frame(size, false, KEY));
        }
        for chunk in [1, 3, 5, 4096, stream.len()] {
            let mut parser = FrameSkipper::accepting_masked();
            let done: u64 = stream.chunks(chunk).map(|p| parser.feed(p).unwrap()).sum();
            assert_eq!(done, 4, "chunk size {chunk}");
        }
        let echoed_close = close_frame(1000, KEY);
        let close = FrameSkipper::accepting_masked().feed(&echoed_close);
        assert_eq!(close, Err(ParseError::Closed));
    }

    #[test]
    fn close_masked_and_reserved_frames_stop_the_count() {
        let feed = |bytes: &[u8]| FrameSkipper::default().feed(bytes);
        assert_eq!(feed(&[0x88, 0x00]), Err(ParseError::Closed));
        assert_eq!(feed(&[0x82, 0x81]), Err(ParseError::Masked));
        assert_eq!(feed(&[0xc2, 0x00]), Err(ParseError::Reserved(0xc2)));
        assert_eq!(feed(&[0x83, 0x00]), Err(ParseError::Reserved(0x83)));
    }
}
