//! The connection state machine (RFC 6455 §5–§7) for either role.

mod prepared;
mod recv;
mod transmit;

pub use prepared::PreparedMessage;

use crate::close::{CloseCode, CloseFrame, Closed, Initiator, MAX_REASON_LEN};
use crate::config::{Config, Entropy, Role};
use crate::deflate::{Codec, DeflateConfig, DeflateParams};
use crate::error::{MisuseError, ProtocolError};

/// RSV1 in a frame header: the first frame of a compressed message (RFC 7692 §6).
const RSV1: u8 = 0b100;
use crate::frame::{FrameHeader, Opcode};
use crate::mask::{apply_mask, mask_into};
use crate::utf8::Utf8Bytes;
use bytes::{Bytes, BytesMut};
use recv::{Incoming, Recv};
use std::io::IoSlice;
use transmit::{SHARE_THRESHOLD, Transmit};

/// A complete data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }
}

/// What a connection reports to its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message arrived.
    Message(Message),
    /// A Ping arrived; the Pong answering it is already queued, or, while more than
    /// [`Config::pong_coalesce_threshold`] bytes are queued, waits until the queue drains (a
    /// later Ping's Pong replaces it: RFC 6455 §5.5.3).
    Ping(Bytes),
    /// A Pong arrived.
    Pong(Bytes),
    /// The connection ended; the last event. A driver flushes the transmit queue, then closes
    /// the transport when [`Connection::should_close_transport`] says so.
    Closed(Closed),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    CloseSent,
    Closed,
}

/// One WebSocket connection after the opening handshake, for either [`Role`].
///
/// It does no I/O: bytes go in, events and bytes come out. A driver calls, in this order:
///
/// 1. [`receive`](Self::receive) (or appends to [`read_buffer`](Self::read_buffer)) with the
///    bytes read from the transport, and [`receive_eof`](Self::receive_eof) when it ended;
/// 2. [`poll_event`](Self::poll_event) until it returns `None`, handing events to the
///    application;
/// 3. the application's commands: [`send`](Self::send), [`ping`](Self::ping),
///    [`close`](Self::close), ...;
/// 4. [`transmit_chunks`](Self::transmit_chunks) and [`transmit_advance`](Self::transmit_advance)
///    to write out what is queued;
/// 5. after [`Event::Closed`], closing the transport once the queue is empty if
///    [`should_close_transport`](Self::should_close_transport) (a client otherwise waits, with a
///    timeout, for the server to close it: RFC 6455 §7.1.1).
///
/// ```
/// use herald_proto::{Config, Connection, Event, Message, SeededEntropy};
///
/// let mut client = Connection::client(Config::default(), Box::new(SeededEntropy::new(7)));
/// let mut server = Connection::server(Config::default());
/// client.send_text("hello").unwrap();
/// let mut wire = Vec::new();
/// client.drain_transmit(&mut wire);
/// server.receive(&wire);
/// assert_eq!(server.poll_event(), Some(Event::Message(Message::Text("hello".into()))));
/// ```
pub struct Connection {
    role: Role,
    config: Config,
    entropy: Option<Box<dyn Entropy>>,
    recv: Recv,
    out: Transmit,
    state: State,
    /// A data message is being sent in fragments.
    sending_fragments: bool,
    /// Boxed, as is `closed`: both exist only at the end, and inline they would make every
    /// idle connection 150 bytes larger.
    sent_close: Option<Box<CloseFrame>>,
    closed: Option<Box<Closed>>,
    finished: bool,
    close_transport: bool,
    /// permessage-deflate, when negotiated.
    codec: Option<Box<Codec>>,
    /// The transport ended; what is buffered is still parsed.
    eof: bool,
    /// The Pong answering the latest Ping, held while the transmit queue is over
    /// `pong_coalesce_threshold`. Boxed: rare, and inline it is 24 bytes more per connection.
    pending_pong: Option<Box<Bytes>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered", &self.recv.buf.len())
            .field("queued", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection: it expects masked frames and sends unmasked ones.
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None)
    }

    /// A client-side connection: it masks each frame with a key from `entropy`.
    pub fn client(config: Config, entropy: Box<dyn Entropy>) -> Self {
        Self::new(Role::Client, config, Some(entropy))
    }

    fn new(role: Role, config: Config, entropy: Option<Box<dyn Entropy>>) -> Self {
        Self {
            role,
            config,
            entropy,
            recv: Recv::new(),
            out: Transmit::default(),
            state: State::Open,
            sending_fragments: false,
            sent_close: None,
            closed: None,
            finished: false,
            close_transport: false,
            eof: false,
            codec: None,
            pending_pong: None,
        }
    }

    /// Turns on permessage-deflate (RFC 7692) with the parameters the handshake agreed on;
    /// `config` gives the level and the size below which messages go uncompressed.
    pub fn with_deflate(mut self, params: DeflateParams, config: &DeflateConfig) -> Self {
        self.codec = Some(Box::new(Codec::new(params, self.role, config)));
        self
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.codec.as_deref().map(Codec::params)
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- input ------------------------------------------------------------------------------

    /// Appends bytes read from the transport. Parsing happens in [`poll_event`](Self::poll_event).
    pub fn receive(&mut self, data: &[u8]) {
        if !self.finished && !self.eof && self.state != State::Closed {
            self.recv.buf.extend_from_slice(data);
        }
    }

    /// The buffer that [`receive`](Self::receive) appends to, for drivers that read into it
    /// directly and save a copy. Only append to it.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.recv.buf
    }

    /// How many more bytes would let parsing make progress (at least 1): the rest of the frame
    /// in progress, or a whole header. A driver may size its next read with it.
    pub fn read_hint(&self) -> usize {
        self.recv.wanted()
    }

    /// The transport reached its end. [`poll_event`](Self::poll_event) still reports what
    /// arrived before it (a Close among it completes the closing handshake); then, unless the
    /// closing handshake completed, the connection ends abnormally (1006).
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    /// Everything buffered was parsed and no more will come.
    fn on_eof(&mut self) {
        let initiator = match self.state {
            State::CloseSent => Initiator::Local,
            _ => Initiator::Remote,
        };
        self.finish(initiator, None, None);
    }

    // ---- output to the application ----------------------------------------------------------

    /// The next event, or `None` until more bytes arrive.
    ///
    /// A peer's violation fails the connection: a Close frame with the violation's code is
    /// queued and [`Event::Closed`] reports the error.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        while self.state != State::Closed {
            match self
                .recv
                .poll(self.role, &self.config, self.codec.as_deref_mut())
            {
                Ok(None) if self.eof => self.on_eof(),
                Ok(None) => return None,
                Ok(Some(incoming)) => {
                    if let Some(event) = self.on_incoming(incoming) {
                        return Some(event);
                    }
                }
                Err(error) => self.fail(error),
            }
        }
        self.finished = true;
        self.closed.take().map(|closed| Event::Closed(*closed))
    }

    fn on_incoming(&mut self, incoming: Incoming) -> Option<Event> {
        match incoming {
            Incoming::Message(message) => Some(Event::Message(message)),
            Incoming::Ping(payload) => {
                // RFC 6455 §5.5.2: answer with a Pong carrying the same payload, unless closing.
                // §5.5.3: behind a long queue, answering only the most recent Ping is enough.
                if self.state == State::Open {
                    if let Some(pending) = &mut self.pending_pong {
                        **pending = payload.clone();
                    } else if self.out.len() > self.config.pong_coalesce_threshold {
                        self.pending_pong = Some(Box::new(payload.clone()));
                    } else {
                        self.queue_frame(Opcode::Pong, true, payload.clone());
                    }
                }
                Some(Event::Ping(payload))
            }
            Incoming::Pong(payload) => Some(Event::Pong(payload)),
            Incoming::Close(frame) => {
                self.on_close(frame);
                None
            }
        }
    }

    /// RFC 6455 §5.5.1: answer a Close with a Close (the same code, or 1000 when it had none)
    /// unless one was sent already; then no more data is accepted.
    fn on_close(&mut self, received: CloseFrame) {
        let initiator = match self.state {
            State::Open => {
                let code = if received.code == CloseCode::NO_STATUS {
                    CloseCode::NORMAL
                } else {
                    received.code
                };
                self.queue_close(CloseFrame::new(code, ""));
                Initiator::Remote
            }
            _ => Initiator::Local,
        };
        self.finish(initiator, Some(received), None);
    }

    /// RFC 6455 §7.1.7: _Fail the WebSocket Connection_.
    fn fail(&mut self, error: ProtocolError) {
        if self.state == State::Open {
            // RFC 6455 §5.5: the Close payload fits in 125 bytes, so the reason is cut at a
            // character boundary (an extension's message can be longer).
            let mut reason = error.to_string();
            reason.truncate(reason.floor_char_boundary(MAX_REASON_LEN));
            self.queue_close(CloseFrame::new(error.close_code(), Utf8Bytes::from(reason)));
        }
        self.finish(Initiator::Local, None, Some(error));
    }

    fn finish(
        &mut self,
        initiator: Initiator,
        received: Option<CloseFrame>,
        error: Option<ProtocolError>,
    ) {
        self.state = State::Closed;
        self.recv = Recv::new();
        self.close_transport = self.role == Role::Server || error.is_some() || received.is_none();
        self.closed = Some(Box::new(Closed {
            initiator,
            sent: self.sent_close.as_deref().cloned(),
            received,
            error,
        }));
    }

    /// The driver gave up on the transport without a closing handshake (e.g. the peer stopped
    /// reading and a write made no progress for too long). The buffered input, the transmit
    /// queue and a pending Pong are dropped; the connection ends abnormally (1006, initiated
    /// locally) and [`poll_event`](Self::poll_event) reports [`Event::Closed`] next. Nothing
    /// is sent afterwards.
    pub fn abandon(&mut self) {
        self.out = Transmit::default();
        self.pending_pong = None;
        if self.state != State::Closed {
            self.finish(Initiator::Local, None, None);
        }
    }

    /// Whether the driver should close the transport once the transmit queue is empty: the
    /// connection ended and this is the server (RFC 6455 §7.1.1), or it ended by failure or EOF.
    pub fn should_close_transport(&self) -> bool {
        self.close_transport
    }

    /// Whether the connection ended: the closing handshake completed or failed, or
    /// [`poll_event`](Self::poll_event) reached the end of the transport.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether this endpoint may still send data (no Close sent yet).
    pub fn can_send(&self) -> bool {
        self.state == State::Open
    }

    // ---- commands ---------------------------------------------------------------------------

    /// Queues a message.
    ///
    /// # Errors
    /// [`MisuseError::Closed`] after a Close was sent.
    pub fn send(&mut self, message: Message) -> Result<(), MisuseError> {
        match message {
            Message::Text(text) => self.send_frame(Opcode::Text, true, text.into_bytes()),
            Message::Binary(data) => self.send_frame(Opcode::Binary, true, data),
        }
    }

    /// Queues a text message.
    ///
    /// # Errors
    /// [`MisuseError::Closed`] after a Close was sent.
    pub fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), MisuseError> {
        self.send_frame(Opcode::Text, true, text.into().into_bytes())
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// [`MisuseError::Closed`] after a Close was sent.
    pub fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<(), MisuseError> {
        self.send_frame(Opcode::Binary, true, data.into())
    }

    /// Queues one data frame of a possibly fragmented message (RFC 6455 §5.4): `Text` or
    /// `Binary` first, then `Continuation` frames; `fin` ends the message. A text message's
    /// fragments together must be UTF-8.
    ///
    /// # Errors
    /// [`MisuseError::Closed`] after a Close was sent; [`MisuseError::InvalidFragment`] for a
    /// control opcode or a frame out of sequence.
    pub fn send_frame(
        &mut self,
        opcode: Opcode,
        fin: bool,
        payload: Bytes,
    ) -> Result<(), MisuseError> {
        self.check_open()?;
        let in_sequence = match opcode {
            Opcode::Continuation => self.sending_fragments,
            Opcode::Text | Opcode::Binary => !self.sending_fragments,
            _ => false,
        };
        if !in_sequence {
            return Err(MisuseError::InvalidFragment);
        }
        self.sending_fragments = !fin;
        // A whole message may be compressed; fragments of a longer one go uncompressed.
        match &mut self.codec {
            Some(codec)
                if fin
                    && opcode != Opcode::Continuation
                    && codec.should_compress(payload.len()) =>
            {
                let compressed = codec.compress(&payload);
                self.queue_frame_rsv(opcode, true, RSV1, compressed);
            }
            _ => self.queue_frame(opcode, fin, payload),
        }
        Ok(())
    }

    /// Queues a Ping.
    ///
    /// # Errors
    /// [`MisuseError::ControlPayloadTooLong`] over 125 bytes; [`MisuseError::Closed`] after a
    /// Close was sent.
    pub fn ping(&mut self, payload: impl Into<Bytes>) -> Result<(), MisuseError> {
        self.send_control(Opcode::Ping, payload.into())
    }

    /// Queues an unsolicited Pong (a heartbeat; RFC 6455 §5.5.3).
    ///
    /// # Errors
    /// As for [`ping`](Self::ping).
    pub fn pong(&mut self, payload: impl Into<Bytes>) -> Result<(), MisuseError> {
        self.send_control(Opcode::Pong, payload.into())
    }

    fn send_control(&mut self, opcode: Opcode, payload: Bytes) -> Result<(), MisuseError> {
        self.check_open()?;
        if payload.len() > 125 {
            return Err(MisuseError::ControlPayloadTooLong);
        }
        self.queue_frame(opcode, true, payload);
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2). [`Event::Closed`] follows when the peer
    /// answers or the transport ends.
    ///
    /// # Errors
    /// [`MisuseError::CloseCodeNotSendable`] for 1005, 1006, 1015 and reserved codes;
    /// [`MisuseError::ControlPayloadTooLong`] for a reason over 123 bytes;
    /// [`MisuseError::Closed`] when a Close was already sent.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), MisuseError> {
        self.check_open()?;
        if !code.is_sendable() {
            return Err(MisuseError::CloseCodeNotSendable(code.as_u16()));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(MisuseError::ControlPayloadTooLong);
        }
        self.queue_close(CloseFrame::new(code, reason));
        Ok(())
    }

    fn check_open(&self) -> Result<(), MisuseError> {
        if self.state == State::Open {
            Ok(())
        } else {
            Err(MisuseError::Closed)
        }
    }

    fn queue_close(&mut self, frame: CloseFrame) {
        let mut payload = BytesMut::with_capacity(frame.payload_len());
        frame.encode_payload(&mut payload);
        self.queue_frame(Opcode::Close, true, payload.freeze());
        // RFC 6455 §5.5.1: nothing follows a Close, not even a Pong still waiting.
        self.pending_pong = None;
        self.sent_close = Some(Box::new(frame));
        self.state = State::CloseSent;
    }

    fn queue_frame(&mut self, opcode: Opcode, fin: bool, payload: Bytes) {
        self.queue_frame_rsv(opcode, fin, 0, payload);
    }

    fn queue_frame_rsv(&mut self, opcode: Opcode, fin: bool, rsv: u8, payload: Bytes) {
        let mask = self.entropy.as_mut().map(|entropy| {
            let mut key = [0u8; 4];
            entropy.fill(&mut key);
            key
        });
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let tail = self.out.tail();
        let start = tail.len();
        header.encode(tail);
        match mask {
            // RFC 6455 §5.3: a client masks every frame; the masked copy goes in the tail.
            // Small payloads: copy, then mask in place while the bytes are in L1. Large ones:
            // mask while copying, one pass that also avoids `memcpy`'s slow alignments.
            Some(key) if payload.len() < 4096 => {
                let at = tail.len();
                tail.extend_from_slice(&payload);
                apply_mask(&mut tail[at..], key, 0);
            }
            Some(key) => {
                let at = tail.len();
                tail.resize(at + payload.len(), 0);
                mask_into(&mut tail[at..], &payload, key);
            }
            None if payload.len() < SHARE_THRESHOLD => tail.extend_from_slice(&payload),
            None => {
                let n = tail.len() - start;
                self.out.grew(n);
                self.out.push_shared(payload);
                return;
            }
        }
        let n = self.out.tail().len() - start;
        self.out.grew(n);
    }

    // ---- output to the transport ------------------------------------------------------------

    /// The number of bytes waiting to be written.
    pub fn transmit_len(&self) -> usize {
        self.out.len()
    }

    /// Fills `dst` with the queued bytes in order, for a vectored write; returns how many slices
    /// it filled.
    pub fn transmit_chunks<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.out.chunks(dst)
    }

    /// Marks the first `n` queued bytes as written. Once the queue is down to
    /// [`Config::pong_coalesce_threshold`], the Pong waiting for it (if any) is queued.
    pub fn transmit_advance(&mut self, n: usize) {
        self.out.advance(n);
        if self.out.len() <= self.config.pong_coalesce_threshold
            && let Some(payload) = self.pending_pong.take()
        {
            // Set only while open: queue_close clears it.
            self.queue_frame(Opcode::Pong, true, *payload);
        }
    }

    /// Whether a Pong waits for the transmit queue to drain (see
    /// [`Config::pong_coalesce_threshold`]).
    pub fn has_pending_pong(&self) -> bool {
        self.pending_pong.is_some()
    }

    /// Moves every queued byte into `dst` (for simple drivers and tests).
    pub fn drain_transmit(&mut self, dst: &mut Vec<u8>) {
        while self.out.len() > 0 {
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.out.chunks(&mut slices);
            let mut written = 0;
            for slice in &slices[..n] {
                dst.extend_from_slice(slice);
                written += slice.len();
            }
            self.transmit_advance(written);
        }
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §5.5 and §7.1.7: the Close frame that fails a connection is a valid control frame.
    use super::*;

    #[test]
    fn failure_reason_longer_than_123_bytes_is_cut_at_a_character_boundary() {
        let message: &'static str = "é".repeat(100).leak();
        let mut server = Connection::server(Config::default());
        server.fail(ProtocolError::Extension(message));
        let mut wire = Vec::new();
        server.drain_transmit(&mut wire);
        assert_eq!(wire[..4], [0x88, 124, 0x03, 0xea]);
        assert_eq!(std::str::from_utf8(&wire[4..]), Ok("é".repeat(61).as_str()));
    }
}
