//! RFC 6455 §5.5.1 and §7.4: what a Close payload may hold, received (1002, 1007) and sent
//! (misuse).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{assert_fails, closed, endpoint, frame_to, parse_frames, poll_all, transmitted};
use herald_proto::{CloseCode, Config, MisuseError, ProtocolError};

/// Codes no endpoint may send: below the defined range, reserved, local-only, or above 4999.
const INVALID: [u16; 10] = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535];

mod received {
    //! §5.5.1: a Close body is empty, or a 2-byte code and a UTF-8 reason.
    use super::*;

    for_both_roles! {
        fn close_with_a_one_byte_payload_fails_with_1002(role) {
            let input = frame_to(role, 0x88, b"\x03");
            assert_fails(role, Config::default(), &input, ProtocolError::InvalidClosePayload);
        }

        fn close_with_each_invalid_code_fails_with_1002(role) {
            for code in INVALID {
                let input = frame_to(role, 0x88, &code.to_be_bytes());
                let error = ProtocolError::InvalidCloseCode(code);
                assert_fails(role, Config::default(), &input, error);
            }
        }

        fn close_with_an_invalid_utf8_reason_fails_with_1007(role) {
            let input = frame_to(role, 0x88, b"\x03\xe8bad \xff reason");
            assert_fails(role, Config::default(), &input, ProtocolError::InvalidCloseReason);
        }

        fn close_with_a_truncated_code_point_in_its_reason_fails_with_1007(role) {
            let input = frame_to(role, 0x88, b"\x03\xe8\xce\xba\xe1");
            assert_fails(role, Config::default(), &input, ProtocolError::InvalidCloseReason);
        }

        fn close_with_each_valid_code_is_reported_and_echoed(role) {
            for code in [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999] {
                let mut conn = endpoint(role, Config::default());
                conn.receive(&frame_to(role, 0x88, &code.to_be_bytes()));
                let events = poll_all(&mut conn);
                assert_eq!(closed(&events).code().as_u16(), code);
                assert_eq!(closed(&events).error, None);
                let frames = parse_frames(&transmitted(&mut conn));
                assert_eq!(frames[0].payload, code.to_be_bytes());
            }
        }

        fn close_with_a_123_byte_utf8_reason_is_reported(role) {
            let reason = "é".repeat(61) + "!";
            let payload = [&1000u16.to_be_bytes()[..], reason.as_bytes()].concat();
            assert_eq!(payload.len(), 125);
            let mut conn = endpoint(role, Config::default());
            conn.receive(&frame_to(role, 0x88, &payload));
            let events = poll_all(&mut conn);
            assert_eq!(closed(&events).reason(), reason);
        }
    }
}

mod sent {
    //! §7.4.1: 1005, 1006 and 1015 MUST NOT be set in a Close frame; reasons fit in 123 bytes.
    use super::*;

    for_both_roles! {
        fn local_only_and_reserved_codes_are_not_sendable(role) {
            let mut conn = endpoint(role, Config::default());
            for code in INVALID {
                let err = conn.close(CloseCode::from(code), "");
                assert_eq!(err, Err(MisuseError::CloseCodeNotSendable(code)));
            }
            assert_eq!(conn.transmit_len(), 0);
            assert!(conn.can_send(), "a refused close changes nothing");
        }

        fn reason_over_123_bytes_is_misuse(role) {
            let mut conn = endpoint(role, Config::default());
            let err = conn.close(CloseCode::NORMAL, &"x".repeat(124));
            assert_eq!(err, Err(MisuseError::ControlPayloadTooLong));
            conn.close(CloseCode::NORMAL, &"x".repeat(123)).unwrap();
            let frames = parse_frames(&transmitted(&mut conn));
            assert_eq!(frames[0].payload.len(), 125);
        }

        fn private_use_codes_are_sendable(role) {
            let mut conn = endpoint(role, Config::default());
            conn.close(CloseCode::from(4000), "app").unwrap();
            let frames = parse_frames(&transmitted(&mut conn));
            assert_eq!(frames[0].payload, b"\x0f\xa0app");
        }
    }
}
