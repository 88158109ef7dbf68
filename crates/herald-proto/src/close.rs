//! Close codes and close frames (RFC 6455 §5.5.1, §7.4).

use crate::error::ProtocolError;
use crate::utf8::Utf8Bytes;
use bytes::{BufMut, Bytes};
use std::fmt;

/// A status code carried by a Close frame (RFC 6455 §7.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutting down, page navigated away).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the endpoint cannot accept this type of data.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no code was present; reported locally, never sent.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a Close frame; reported locally, never sent.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a text message was not valid UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);

    /// The code as a number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Whether an endpoint may put this code in a Close frame: 1000–1003, 1007–1014 and
    /// 3000–4999. The rest are reserved, or (1005, 1006, 1015) for local reporting only.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The content of a Close frame: a code and a UTF-8 reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code, or [`CloseCode::NO_STATUS`] for an empty Close frame.
    pub code: CloseCode,
    /// The reason, at most 123 bytes.
    pub reason: Utf8Bytes,
}

/// The largest reason that fits in a control frame beside the code.
pub const MAX_REASON_LEN: usize = 123;

impl CloseFrame {
    /// A Close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// Parses a received Close payload (RFC 6455 §5.5.1).
    ///
    /// # Errors
    /// A 1-byte payload or a code a peer may not send is a protocol error (1002); a reason that
    /// is not UTF-8 is 1007.
    pub fn parse(payload: Bytes) -> Result<Self, ProtocolError> {
        match payload.len() {
            0 => return Ok(Self::new(CloseCode::NO_STATUS, "")),
            1 => return Err(ProtocolError::InvalidClosePayload),
            _ => {}
        }
        let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
        if !code.is_sendable() {
            return Err(ProtocolError::InvalidCloseCode(code.0));
        }
        let reason = Utf8Bytes::try_from_bytes(payload.slice(2..))
            .map_err(|_| ProtocolError::InvalidCloseReason)?;
        Ok(Self { code, reason })
    }

    /// Writes the payload: nothing for [`CloseCode::NO_STATUS`], else the code and reason.
    pub(crate) fn encode_payload(&self, dst: &mut impl BufMut) {
        if self.code != CloseCode::NO_STATUS {
            dst.put_u16(self.code.0);
            dst.put_slice(self.reason.as_bytes());
        }
    }

    pub(crate) fn payload_len(&self) -> usize {
        if self.code == CloseCode::NO_STATUS {
            0
        } else {
            2 + self.reason.len()
        }
    }
}

/// Who started the closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// This endpoint: the application closed, or the peer broke the protocol.
    Local,
    /// The peer: it sent a Close first, or the transport ended.
    Remote,
}

/// How a connection ended: the last event a connection reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// Who started the close.
    pub initiator: Initiator,
    /// The Close frame this endpoint sent, if any.
    pub sent: Option<CloseFrame>,
    /// The Close frame received from the peer, if any.
    pub received: Option<CloseFrame>,
    /// The peer's violation that made this endpoint fail the connection, if that is how it ended.
    pub error: Option<ProtocolError>,
}

impl Closed {
    /// The WebSocket Connection Close Code (RFC 6455 §7.1.5): the code of the received Close
    /// frame, 1005 when it had none, 1006 when none was received.
    pub fn code(&self) -> CloseCode {
        self.received
            .as_ref()
            .map_or(CloseCode::ABNORMAL, |frame| frame.code)
    }

    /// The reason of the received Close frame, or empty.
    pub fn reason(&self) -> &str {
        self.received
            .as_ref()
            .map_or("", |frame| frame.reason.as_str())
    }

    /// Whether both endpoints sent a Close frame (RFC 6455 §7.1.4, "closed cleanly").
    pub fn is_clean(&self) -> bool {
        self.sent.is_some() && self.received.is_some()
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §7.4.1: defined status codes.
    use super::*;

    #[test]
    fn sendable_codes_are_exactly_the_defined_and_private_ranges() {
        for code in 0..=u16::MAX {
            let expected = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_sendable(), expected, "{code}");
        }
    }

    #[test]
    fn one_byte_close_payload_fails_with_1002() {
        let err = CloseFrame::parse(Bytes::from_static(&[0x03])).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn reserved_close_codes_fail_with_1002() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let err = CloseFrame::parse(Bytes::copy_from_slice(&code.to_be_bytes())).unwrap_err();
            assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR, "{code}");
        }
    }

    #[test]
    fn close_reason_that_is_not_utf8_fails_with_1007() {
        let err = CloseFrame::parse(Bytes::from_static(b"\x03\xe8\xce\xba\xe1")).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
    }

    #[test]
    fn empty_close_payload_reports_1005() {
        let frame = CloseFrame::parse(Bytes::new()).unwrap();
        assert_eq!(frame.code, CloseCode::NO_STATUS);
    }
}
