//! The receiving half: frames from buffered bytes, unmasked in place, checked against
//! RFC 6455 §5 and the limits, and assembled into messages.

use super::{Message, Role};
use crate::close::CloseFrame;
use crate::config::Config;
use crate::deflate::Codec;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, Opcode};
use crate::mask::apply_mask;
use crate::utf8::{Utf8Bytes, Utf8Validator};
use bytes::{Buf, Bytes, BytesMut};

/// What the receiving half produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(CloseFrame),
}

/// A frame whose header was consumed and whose payload is arriving at the front of `buf`.
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    len: usize,
    /// Payload bytes at the front of `buf` already unmasked (and UTF-8 checked for text).
    done: usize,
    /// The frame belongs to a text message.
    text: bool,
    /// The frame belongs to a compressed message (RFC 7692 §6.1: RSV1 on its first frame).
    compressed: bool,
}

/// A fragmented message in progress (§5.4).
#[derive(Debug)]
struct InMessage {
    text: bool,
    compressed: bool,
    /// An uncompressed message's fragments so far.
    data: BytesMut,
    /// A compressed message's inflated bytes so far.
    inflated: Vec<u8>,
}

impl InMessage {
    fn len(&self) -> usize {
        self.data.len() + self.inflated.len()
    }
}

#[derive(Debug)]
pub(crate) struct Recv {
    pub(crate) buf: BytesMut,
    frame: Option<InFrame>,
    /// Boxed: between messages (an idle connection) it is empty, and inline it would cost
    /// every connection 56 bytes more.
    message: Option<Box<InMessage>>,
    utf8: Utf8Validator,
}

impl Recv {
    pub(crate) fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            frame: None,
            message: None,
            utf8: Utf8Validator::new(),
        }
    }

    /// How many more bytes would let the parser make progress: the rest of the current frame,
    /// or a whole header.
    pub(crate) fn wanted(&self) -> usize {
        match &self.frame {
            Some(f) => f.len.saturating_sub(self.buf.len()).max(1),
            None => MAX_HEADER_LEN.saturating_sub(self.buf.len()).max(1),
        }
    }

    /// Parses as far as the buffered bytes allow and returns the next complete item.
    pub(crate) fn poll(
        &mut self,
        role: Role,
        config: &Config,
        mut codec: Option<&mut Codec>,
    ) -> Result<Option<Incoming>, ProtocolError> {
        loop {
            if self.frame.is_none() && !self.start_frame(role, config, codec.is_some())? {
                return Ok(None);
            }
            if !self.advance_payload()? {
                return Ok(None);
            }
            if let Some(item) = self.finish_frame(config, codec.as_deref_mut())? {
                return Ok(Some(item));
            }
        }
    }

    /// Parses and checks the next header; `false` when it has not fully arrived.
    fn start_frame(
        &mut self,
        role: Role,
        config: &Config,
        deflate: bool,
    ) -> Result<bool, ProtocolError> {
        let Some((header, header_len)) = FrameHeader::parse(&self.buf)? else {
            return Ok(false);
        };
        let len = self.check(&header, role, config, deflate)?;
        let (text, compressed) = match header.opcode {
            Opcode::Text => (true, header.rsv != 0),
            Opcode::Binary => (false, header.rsv != 0),
            Opcode::Continuation => self
                .message
                .as_ref()
                .map_or((false, false), |m| (m.text, m.compressed)),
            _ => (false, false),
        };
        self.buf.advance(header_len);
        self.frame = Some(InFrame {
            header,
            len,
            done: 0,
            text,
            compressed,
        });
        Ok(true)
    }

    /// RFC 6455 §5.1–§5.5 and the limits, all from the header alone.
    fn check(
        &self,
        h: &FrameHeader,
        role: Role,
        config: &Config,
        deflate: bool,
    ) -> Result<usize, ProtocolError> {
        // RFC 7692 §6.1: with permessage-deflate, RSV1 may mark the first frame of a message.
        let rsv1_allowed =
            deflate && h.rsv == 0b100 && matches!(h.opcode, Opcode::Text | Opcode::Binary);
        if h.rsv != 0 && !rsv1_allowed {
            return Err(ProtocolError::ReservedBits);
        }
        match (role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            return Ok(h.payload_len as usize);
        }
        match (h.opcode, &self.message) {
            (Opcode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            _ => {}
        }
        let len = usize::try_from(h.payload_len)
            .ok()
            .filter(|&len| len <= config.max_frame_size)
            .ok_or(ProtocolError::FrameTooLarge)?;
        let so_far = self.message.as_ref().map_or(0, |m| m.len());
        if so_far.saturating_add(len) > config.max_message_size {
            return Err(ProtocolError::MessageTooLarge);
        }
        Ok(len)
    }

    /// Unmasks (and UTF-8 checks) the newly arrived part of the payload; `true` once the whole
    /// payload is in `buf`.
    fn advance_payload(&mut self) -> Result<bool, ProtocolError> {
        let Some(f) = self.frame.as_mut() else {
            return Ok(false);
        };
        let available = self.buf.len().min(f.len);
        if available > f.done {
            let fresh = &mut self.buf[f.done..available];
            if let Some(key) = f.header.mask {
                apply_mask(fresh, key, f.done);
            }
            // RFC 6455 §8.1 with fail-fast: judge text as soon as it arrives, even mid-frame.
            // (Compressed text is judged after inflating, frame by frame.)
            if f.text && !f.compressed {
                self.utf8
                    .feed(fresh)
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            f.done = available;
        }
        Ok(f.done == f.len)
    }

    /// Takes the completed frame out of `buf` and assembles it.
    fn finish_frame(
        &mut self,
        config: &Config,
        codec: Option<&mut Codec>,
    ) -> Result<Option<Incoming>, ProtocolError> {
        let Some(f) = self.frame.take() else {
            return Ok(None);
        };
        let payload = self.buf.split_to(f.len).freeze();
        let h = f.header;
        if f.compressed {
            let codec = codec.ok_or(ProtocolError::ReservedBits)?;
            return self.inflate_frame(&f, &payload, codec, config.max_message_size);
        }
        if f.text && h.fin {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(match h.opcode {
            Opcode::Ping => Some(Incoming::Ping(payload)),
            Opcode::Pong => Some(Incoming::Pong(payload)),
            Opcode::Close => Some(Incoming::Close(CloseFrame::parse(payload)?)),
            Opcode::Text | Opcode::Binary if h.fin => {
                Some(Incoming::Message(message(f.text, payload)))
            }
            Opcode::Text | Opcode::Binary => {
                let mut data = BytesMut::with_capacity(payload.len());
                data.extend_from_slice(&payload);
                self.message = Some(Box::new(InMessage {
                    text: f.text,
                    compressed: false,
                    data,
                    inflated: Vec::new(),
                }));
                None
            }
            Opcode::Continuation => {
                let mut m = self
                    .message
                    .take()
                    .ok_or(ProtocolError::UnexpectedContinuation)?;
                m.data.extend_from_slice(&payload);
                if h.fin {
                    Some(Incoming::Message(message(m.text, m.data.freeze())))
                } else {
                    self.message = Some(m);
                    None
                }
            }
        })
    }
}

impl Recv {
    /// RFC 7692 §7.2.2: inflates a compressed message frame by frame, bounded by the message
    /// limit, and judges inflated text as it appears.
    fn inflate_frame(
        &mut self,
        f: &InFrame,
        payload: &[u8],
        codec: &mut Codec,
        limit: usize,
    ) -> Result<Option<Incoming>, ProtocolError> {
        let mut m = match self.message.take() {
            Some(m) => m,
            None => Box::new(InMessage {
                text: f.text,
                compressed: true,
                data: BytesMut::new(),
                inflated: Vec::new(),
            }),
        };
        let before = m.inflated.len();
        codec.decompress(payload, f.header.fin, &mut m.inflated, limit)?;
        if m.text {
            let fresh = &m.inflated[before..];
            self.utf8
                .feed(fresh)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if !f.header.fin {
            self.message = Some(m);
            return Ok(None);
        }
        if m.text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(Some(Incoming::Message(message(
            m.text,
            Bytes::from(m.inflated),
        ))))
    }
}

fn message(text: bool, payload: Bytes) -> Message {
    if text {
        Message::Text(Utf8Bytes::from_validated(payload))
    } else {
        Message::Binary(payload)
    }
}
