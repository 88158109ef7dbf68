//! RFC 6455 §5.7: the examples, byte for byte, in both directions.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::Bytes;
use common::{KEY, client_with_rfc_key, endpoint, poll_all, transmitted};
use herald_proto::{Config, Event, Message, Role};

const HELLO: [u8; 5] = [0x48, 0x65, 0x6c, 0x6c, 0x6f];

fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

fn received_by(role: Role, wire: &[u8]) -> Vec<Event> {
    let mut conn = endpoint(role, Config::default());
    conn.receive(wire);
    poll_all(&mut conn)
}

mod receiving {
    //! The RFC's frames, received.
    use super::*;

    #[test]
    fn client_receives_single_frame_unmasked_text() {
        let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(received_by(Role::Client, &wire), [text("Hello")]);
    }

    #[test]
    fn server_receives_single_frame_masked_text() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(received_by(Role::Server, &wire), [text("Hello")]);
    }

    #[test]
    fn client_receives_fragmented_unmasked_text() {
        let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(received_by(Role::Client, &wire), [text("Hello")]);
    }

    #[test]
    fn client_receives_unmasked_ping_and_answers_with_the_rfc_masked_pong() {
        let mut client = client_with_rfc_key();
        client.receive(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            poll_all(&mut client),
            [Event::Ping(Bytes::from_static(&HELLO))]
        );
        assert_eq!(
            transmitted(&mut client),
            [
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn server_receives_the_rfc_masked_pong() {
        let wire = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            received_by(Role::Server, &wire),
            [Event::Pong(Bytes::from_static(&HELLO))]
        );
    }

    #[test]
    fn client_receives_256_byte_binary_with_16_bit_length() {
        let mut wire = vec![0x82, 0x7e, 0x01, 0x00];
        wire.extend((0..256).map(|i| i as u8));
        let payload: Vec<u8> = (0..256).map(|i| i as u8).collect();
        assert_eq!(
            received_by(Role::Client, &wire),
            [Event::Message(Message::Binary(payload.into()))]
        );
    }

    #[test]
    fn client_receives_64_kib_binary_with_64_bit_length() {
        let mut wire = vec![0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
        wire.resize(wire.len() + 65536, 0xab);
        assert_eq!(
            received_by(Role::Client, &wire),
            [Event::Message(Message::Binary(vec![0xab; 65536].into()))]
        );
    }
}

mod sending {
    //! The same frames, produced by this implementation.
    use super::*;

    #[test]
    fn server_sends_hello_as_the_rfc_unmasked_frame() {
        let mut server = endpoint(Role::Server, Config::default());
        server.send_text("Hello").unwrap();
        assert_eq!(
            transmitted(&mut server),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
    }

    #[test]
    fn client_sends_hello_as_the_rfc_masked_frame_given_the_rfc_key() {
        let mut client = client_with_rfc_key();
        client.send_text("Hello").unwrap();
        assert_eq!(
            transmitted(&mut client),
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn server_sends_unmasked_ping_as_the_rfc_frame() {
        let mut server = endpoint(Role::Server, Config::default());
        server.ping(&HELLO[..]).unwrap();
        assert_eq!(
            transmitted(&mut server),
            [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
    }

    #[test]
    fn server_sends_fragmented_text_as_the_rfc_frames() {
        let mut server = endpoint(Role::Server, Config::default());
        server
            .send_frame(
                herald_proto::Opcode::Text,
                false,
                Bytes::from_static(b"Hel"),
            )
            .unwrap();
        server
            .send_frame(
                herald_proto::Opcode::Continuation,
                true,
                Bytes::from_static(b"lo"),
            )
            .unwrap();
        assert_eq!(
            transmitted(&mut server),
            [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        );
    }

    #[test]
    fn server_sends_256_byte_binary_with_header_82_7e_0100() {
        let mut server = endpoint(Role::Server, Config::default());
        server.send_binary(vec![7u8; 256]).unwrap();
        let wire = transmitted(&mut server);
        assert_eq!(wire[..4], [0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(wire.len(), 4 + 256);
    }

    #[test]
    fn server_sends_64_kib_binary_with_header_82_7f_0000000000010000() {
        let mut server = endpoint(Role::Server, Config::default());
        server.send_binary(vec![7u8; 65536]).unwrap();
        let wire = transmitted(&mut server);
        assert_eq!(wire[..10], [0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!(wire.len(), 10 + 65536);
        assert!(wire[10..].iter().all(|&b| b == 7));
    }

    #[test]
    fn client_sends_256_byte_binary_with_masked_16_bit_header() {
        let mut client = client_with_rfc_key();
        client.send_binary(vec![0u8; 256]).unwrap();
        let wire = transmitted(&mut client);
        assert_eq!(wire[..8], [0x82, 0xfe, 0x01, 0x00, 0x37, 0xfa, 0x21, 0x3d]);
        let expected: Vec<u8> = (0..256).map(|i| KEY[i % 4]).collect();
        assert_eq!(wire[8..], expected[..]);
    }

    #[test]
    fn client_sends_64_kib_binary_with_masked_64_bit_header() {
        let mut client = client_with_rfc_key();
        client.send_binary(vec![0u8; 65536]).unwrap();
        let wire = transmitted(&mut client);
        assert_eq!(
            wire[..14],
            [
                0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x37, 0xfa, 0x21, 0x3d
            ]
        );
        assert_eq!(wire.len(), 14 + 65536);
    }
}
