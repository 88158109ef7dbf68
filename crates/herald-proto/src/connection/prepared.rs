//! Messages prepared once and sent to many connections (broadcast).

use super::{Connection, Message, RSV1};
use crate::config::Role;
use crate::deflate::{Codec, DeflateConfig, DeflateParams};
use crate::error::MisuseError;
use crate::frame::{FrameHeader, Opcode};
use bytes::{Bytes, BytesMut};
use std::sync::OnceLock;

/// A message whose compressed form is computed once, for a broadcast.
///
/// With permessage-deflate and `server_no_context_takeover`, every message is compressed on
/// its own, so one compressed payload serves every recipient whose window is at least as large
/// ([`Connection::send_prepared`]); others get the message compressed for them, or plain.
#[derive(Clone, Debug)]
pub struct PreparedMessage {
    opcode: Opcode,
    payload: Bytes,
    /// The payload compressed without context, and the window bits it needs.
    compressed: Option<(Bytes, u8)>,
    /// The whole uncompressed frame a server sends, built on first use.
    frame: OnceLock<Bytes>,
}

impl PreparedMessage {
    /// Prepares `message`; compresses it once when `deflate` is given and the message reaches
    /// its threshold, with the server window `deflate.server_max_window_bits`.
    pub fn new(message: Message, deflate: Option<&DeflateConfig>) -> Self {
        let (opcode, payload) = match message {
            Message::Text(text) => (Opcode::Text, text.into_bytes()),
            Message::Binary(data) => (Opcode::Binary, data),
        };
        let compressed = deflate
            .filter(|config| payload.len() >= config.threshold)
            .map(|config| {
                let bits = config.server_max_window_bits;
                let params = DeflateParams {
                    server_max_window_bits: bits,
                    client_max_window_bits: 15,
                    server_no_context_takeover: true,
                    client_no_context_takeover: false,
                };
                (
                    Codec::new(params, Role::Server, config).compress(&payload),
                    bits,
                )
            });
        Self {
            opcode,
            payload,
            compressed,
            frame: OnceLock::new(),
        }
    }

    /// The uncompressed payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The message as one unmasked, uncompressed frame (header and payload), the bytes a
    /// server connection without permessage-deflate queues for it: for a driver that writes
    /// a broadcast straight to many transports. Built once, on the first call, and shared.
    pub fn server_frame(&self) -> &Bytes {
        self.frame.get_or_init(|| {
            let header = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: self.opcode,
                mask: None,
                payload_len: self.payload.len() as u64,
            };
            let mut frame = BytesMut::with_capacity(header.encoded_len() + self.payload.len());
            header.encode(&mut frame);
            frame.extend_from_slice(&self.payload);
            frame.freeze()
        })
    }
}

impl Connection {
    /// Queues a prepared message: a server whose peer agreed to `server_no_context_takeover`
    /// with a large enough window gets the shared compressed payload, without compressing or
    /// copying again; any other connection sends it as [`send`](Self::send) would.
    ///
    /// # Errors
    /// [`MisuseError::Closed`] after a Close was sent; [`MisuseError::InvalidFragment`] while a
    /// fragmented message is being sent.
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), MisuseError> {
        let shared = match (&self.codec, &prepared.compressed) {
            (Some(codec), Some((bytes, bits)))
                if self.role == Role::Server
                    && codec.params().server_no_context_takeover
                    && *bits <= codec.params().server_max_window_bits =>
            {
                Some(bytes.clone())
            }
            _ => None,
        };
        match shared {
            Some(compressed) => {
                self.check_open()?;
                if self.sending_fragments {
                    return Err(MisuseError::InvalidFragment);
                }
                self.queue_frame_rsv(prepared.opcode, true, RSV1, compressed);
                Ok(())
            }
            None => self.send_frame(prepared.opcode, true, prepared.payload.clone()),
        }
    }
}
