//! RFC 6455 §5.1–§5.2: masking direction, reserved bits, opcodes and payload lengths. Each
//! violation fails the connection (§7.1.7) with 1002.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{KEY, assert_fails, endpoint, frame_to, long_header_to, poll_all, raw_frame};
use herald_proto::{Config, Event, Message, ProtocolError, Role};

mod masking {
    //! RFC 6455 §5.1: a server MUST close on an unmasked frame, a client on a masked one.
    use super::*;

    #[test]
    fn server_receives_unmasked_frame_fails_with_1002() {
        let input = raw_frame(0x81, None, b"Hello");
        assert_fails(
            Role::Server,
            Config::default(),
            &input,
            ProtocolError::UnmaskedFrame,
        );
    }

    #[test]
    fn server_receives_unmasked_control_frame_fails_with_1002() {
        let input = raw_frame(0x89, None, b"");
        assert_fails(
            Role::Server,
            Config::default(),
            &input,
            ProtocolError::UnmaskedFrame,
        );
    }

    #[test]
    fn client_receives_masked_frame_fails_with_1002() {
        let input = raw_frame(0x81, Some(KEY), b"Hello");
        assert_fails(
            Role::Client,
            Config::default(),
            &input,
            ProtocolError::MaskedFrame,
        );
    }

    #[test]
    fn client_receives_masked_close_fails_with_1002() {
        let input = raw_frame(0x88, Some(KEY), b"\x03\xe8");
        assert_fails(
            Role::Client,
            Config::default(),
            &input,
            ProtocolError::MaskedFrame,
        );
    }

    #[test]
    fn server_accepts_an_all_zero_masking_key() {
        let mut server = endpoint(Role::Server, Config::default());
        server.receive(&raw_frame(0x82, Some([0; 4]), b"\x01\x02"));
        assert_eq!(
            poll_all(&mut server),
            [Event::Message(Message::Binary(vec![1, 2].into()))]
        );
    }

    #[test]
    fn client_masks_every_frame_with_a_fresh_key() {
        let mut client = endpoint(Role::Client, Config::default());
        for _ in 0..4 {
            client.send_text("same").unwrap();
        }
        let frames = common::parse_frames(&common::transmitted(&mut client));
        let keys: Vec<[u8; 4]> = frames.iter().map(|f| f.header.mask.unwrap()).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(key), "key {key:?} reused");
        }
        assert!(frames.iter().all(|f| f.payload == b"same"));
    }

    #[test]
    fn server_never_masks() {
        let mut server = endpoint(Role::Server, Config::default());
        server.send_text("x").unwrap();
        server.ping("p").unwrap();
        let frames = common::parse_frames(&common::transmitted(&mut server));
        assert!(frames.iter().all(|f| f.header.mask.is_none()));
    }
}

for_both_roles! {
    /// RFC 6455 §5.2: RSV1–3 MUST be 0 unless an extension defines them.
    fn frame_with_rsv1_fails_with_1002(role) {
        let input = frame_to(role, 0xc1, b"Hello");
        assert_fails(role, Config::default(), &input, ProtocolError::ReservedBits);
    }

    fn frame_with_rsv2_fails_with_1002(role) {
        let input = frame_to(role, 0xa2, b"\x00");
        assert_fails(role, Config::default(), &input, ProtocolError::ReservedBits);
    }

    fn control_frame_with_rsv3_fails_with_1002(role) {
        let input = frame_to(role, 0x99, b"");
        assert_fails(role, Config::default(), &input, ProtocolError::ReservedBits);
    }

    /// RFC 6455 §5.2: an unknown opcode MUST fail the connection.
    fn every_reserved_opcode_fails_with_1002(role) {
        for opcode in [0x3u8, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            let input = frame_to(role, 0x80 | opcode, b"");
            assert_fails(role, Config::default(), &input, ProtocolError::UnknownOpcode(opcode));
        }
    }

    fn reserved_opcode_after_a_message_fails_after_delivering_it(role) {
        let input = [frame_to(role, 0x81, b"ok"), frame_to(role, 0x83, b"")].concat();
        let before = assert_fails(role, Config::default(), &input, ProtocolError::UnknownOpcode(3));
        assert_eq!(before, [Event::Message(Message::Text("ok".into()))]);
    }

    /// RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
    fn sixty_four_bit_length_with_top_bit_set_fails_with_1002(role) {
        let input = long_header_to(role, 0x82, 1 << 63);
        assert_fails(role, Config::default(), &input, ProtocolError::InvalidLength);
    }

    fn sixty_four_bit_length_of_all_ones_fails_with_1002(role) {
        let input = long_header_to(role, 0x82, u64::MAX);
        assert_fails(role, Config::default(), &input, ProtocolError::InvalidLength);
    }

    /// The RFC says senders MUST use the minimal length form; receivers may be liberal.
    fn non_minimal_length_encodings_are_accepted(role) {
        let mut input = long_header_to(role, 0x82, 3);
        let payload = if role == Role::Server {
            vec![1 ^ KEY[0], 2 ^ KEY[1], 3 ^ KEY[2]]
        } else {
            vec![1, 2, 3]
        };
        input.extend_from_slice(&payload);
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input);
        assert_eq!(
            poll_all(&mut conn),
            [Event::Message(Message::Binary(vec![1, 2, 3].into()))]
        );
    }

    fn empty_text_and_binary_frames_are_messages(role) {
        let input = [frame_to(role, 0x81, b""), frame_to(role, 0x82, b"")].concat();
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input);
        assert_eq!(
            poll_all(&mut conn),
            [
                Event::Message(Message::Text("".into())),
                Event::Message(Message::Binary(Default::default())),
            ]
        );
    }
}

mod prepared_frames {
    //! RFC 6455 §5.2: a prepared message's server frame is byte for byte the frame a server
    //! connection without extensions sends for it (unmasked, FIN set, shortest length).
    use super::*;
    use bytes::Bytes;
    use herald_proto::{Connection, PreparedMessage};

    fn sent_by_a_server(prepared: &PreparedMessage) -> Vec<u8> {
        let mut server = Connection::server(Config::default());
        server.send_prepared(prepared).unwrap();
        let mut wire = Vec::new();
        server.drain_transmit(&mut wire);
        wire
    }

    #[test]
    fn server_frame_is_the_frame_a_server_sends_for_every_length_encoding() {
        for len in [0, 125, 126, 0xffff, 0x10000] {
            let binary = PreparedMessage::new(Message::Binary(Bytes::from(vec![7u8; len])), None);
            assert_eq!(
                binary.server_frame()[..],
                sent_by_a_server(&binary)[..],
                "{len}"
            );
            let text = PreparedMessage::new(Message::Text("é".repeat(len / 2).into()), None);
            assert_eq!(
                text.server_frame()[..],
                sent_by_a_server(&text)[..],
                "{len}"
            );
        }
    }

    #[test]
    fn server_frame_is_built_once_and_shared() {
        let prepared = PreparedMessage::new(Message::Text("hello".into()), None);
        let first = prepared.server_frame().clone();
        assert_eq!(&first[..], b"\x81\x05hello");
        assert_eq!(prepared.server_frame().as_ptr(), first.as_ptr());
    }
}
