//! Errors: the peer's faults carry the close code to send; the local application's misuse is a
//! separate type.

use crate::close::CloseCode;

/// The peer broke RFC 6455 or a configured limit; the connection fails with [`close_code`].
///
/// [`close_code`]: ProtocolError::close_code
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1–3 set with no negotiated extension owning them (§5.2).
    #[error("reserved bits set")]
    ReservedBits,
    /// An opcode RFC 6455 reserves (§5.2).
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame with a payload over 125 bytes (§5.5).
    #[error("control frame too long")]
    ControlFrameTooLong,
    /// A control frame without FIN (§5.5).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A server received an unmasked frame (§5.1).
    #[error("frame not masked")]
    UnmaskedFrame,
    /// A client received a masked frame (§5.1).
    #[error("frame masked by server")]
    MaskedFrame,
    /// A continuation frame with no message in progress (§5.4).
    #[error("continuation without a message")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    #[error("expected a continuation frame")]
    ExpectedContinuation,
    /// A 64-bit payload length with its most significant bit set (§5.2).
    #[error("invalid payload length")]
    InvalidLength,
    /// A frame announced a payload over the configured maximum frame size.
    #[error("frame too large")]
    FrameTooLarge,
    /// A message would grow over the configured maximum message size.
    #[error("message too large")]
    MessageTooLarge,
    /// A text message that is not valid UTF-8 (§8.1).
    #[error("invalid UTF-8 in text")]
    InvalidUtf8,
    /// A Close payload of exactly one byte (§5.5.1).
    #[error("invalid close payload")]
    InvalidClosePayload,
    /// A Close code an endpoint may not send (§7.4).
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A Close reason that is not valid UTF-8 (§5.5.1).
    #[error("invalid UTF-8 in close reason")]
    InvalidCloseReason,
    /// A compressed message that does not inflate (RFC 7692 §7.2.2).
    #[error("invalid compressed data")]
    InvalidCompressedData,
    /// An extension reported a fault in a frame it owns (e.g. a corrupt compressed stream).
    #[error("{0}")]
    Extension(&'static str),
}

impl ProtocolError {
    /// The close code to send when failing the connection for this fault.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::FrameTooLarge | Self::MessageTooLarge => CloseCode::MESSAGE_TOO_BIG,
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

/// The local application used the connection wrongly; nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// A message or control frame after this endpoint sent a Close (§5.5.1); stop sending.
    #[error("connection is closing or closed")]
    Closed,
    /// A ping, pong or close payload over 125 bytes (§5.5); shorten it.
    #[error("control frame payload over 125 bytes")]
    ControlPayloadTooLong,
    /// A close code that may not be sent (1005, 1006, 1015, reserved ranges); pick another.
    #[error("close code {0} may not be sent")]
    CloseCodeNotSendable(u16),
    /// A control opcode given to `send_frame`, or a data frame out of its fragment sequence.
    #[error("frame out of fragmentation sequence")]
    InvalidFragment,
    /// A subprotocol the client did not offer; accept one of the offered ones or none.
    #[error("subprotocol was not offered by the client")]
    SubprotocolNotOffered,
    /// A header value that cannot appear in an HTTP/1.1 message.
    #[error("invalid header")]
    InvalidHeader,
    /// An extra header of an acceptance that the handshake sets itself (`Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`, `Content-Length`, `Transfer-Encoding`); drop it: the
    /// engine writes the accept key and the extensions it negotiated.
    #[error("header {0} is set by the handshake")]
    HandshakeHeader(http::HeaderName),
}

/// The client's opening handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The URL is not a `ws://` or `wss://` URL with a host; fix the URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The server answered with another status than 101; its status, headers and body say why.
    #[error("server refused the handshake: {}", .0.status)]
    Rejected(Box<crate::handshake::Response>),
    /// The 101 response breaks RFC 6455 §4.1 (accept key, upgrade headers, unoffered
    /// subprotocol or extension); the server is not a conforming WebSocket server.
    #[error("invalid handshake response: {0}")]
    InvalidResponse(&'static str),
    /// The response is not HTTP.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The response head is over the limits.
    #[error("response head too large")]
    TooLarge,
    /// The transport ended before the response head did.
    #[error("connection closed during the handshake")]
    Incomplete,
}
