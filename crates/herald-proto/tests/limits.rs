//! RFC 6455 §10.4 and §7.4.1 (1009): frame and message limits, checked from the header before
//! any payload is buffered.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{assert_failed, assert_fails, endpoint, frame_to, long_header_to, poll_all};
use herald_proto::{Config, Event, Message, ProtocolError};

/// Bytes the endpoint may hold after a header that announced a huge payload.
const SMALL: usize = 4096;

fn limits(frame: usize, message: usize) -> Config {
    Config::default()
        .with_max_frame_size(frame)
        .with_max_message_size(message)
}

for_both_roles! {
    fn frame_at_max_frame_size_is_accepted(role) {
        let mut conn = endpoint(role, limits(100, 1000));
        conn.receive(&frame_to(role, 0x82, &[9u8; 100]));
        assert_eq!(poll_all(&mut conn), [Event::Message(Message::Binary(vec![9u8; 100].into()))]);
    }

    fn frame_over_max_frame_size_fails_with_1009(role) {
        let input = frame_to(role, 0x82, &[9u8; 101]);
        assert_fails(role, limits(100, 1000), &input, ProtocolError::FrameTooLarge);
    }

    fn continuation_over_max_frame_size_fails_with_1009(role) {
        let input = [frame_to(role, 0x01, b"ok"), frame_to(role, 0x80, &[b'a'; 101])].concat();
        assert_fails(role, limits(100, 1000), &input, ProtocolError::FrameTooLarge);
    }

    fn frame_over_max_frame_size_fails_from_its_header_alone(role) {
        let header_len = if role == herald_proto::Role::Server { 6 } else { 2 };
        let input = &frame_to(role, 0x82, &[9u8; 101])[..header_len];
        assert_fails(role, limits(100, 1000), input, ProtocolError::FrameTooLarge);
    }

    fn single_frame_over_max_message_size_fails_with_1009(role) {
        let input = frame_to(role, 0x81, &[b'a'; 60]);
        assert_fails(role, limits(100, 50), &input, ProtocolError::MessageTooLarge);
    }

    fn fragmented_message_at_max_message_size_is_accepted(role) {
        let input = [frame_to(role, 0x01, &[b'a'; 60]), frame_to(role, 0x80, &[b'b'; 40])];
        let mut conn = endpoint(role, limits(100, 100));
        conn.receive(&input.concat());
        let expected = "a".repeat(60) + &"b".repeat(40);
        assert_eq!(poll_all(&mut conn), [Event::Message(Message::Text(expected.into()))]);
    }

    fn fragmented_message_over_max_message_size_fails_with_1009(role) {
        let input = [frame_to(role, 0x01, &[b'a'; 60]), frame_to(role, 0x80, &[b'b'; 41])];
        let before =
            assert_fails(role, limits(100, 100), &input.concat(), ProtocolError::MessageTooLarge);
        assert!(before.is_empty());
    }

    fn fragmented_message_over_max_message_size_fails_at_the_offending_header(role) {
        let first = frame_to(role, 0x02, &[1u8; 80]);
        let second = long_header_to(role, 0x00, 30);
        let input = [first, second].concat();
        assert_fails(role, limits(100, 100), &input, ProtocolError::MessageTooLarge);
    }

    fn control_frames_between_fragments_do_not_count_toward_the_message(role) {
        let input = [
            frame_to(role, 0x02, &[1u8; 50]),
            frame_to(role, 0x89, &[2u8; 125]),
            frame_to(role, 0x80, &[3u8; 50]),
        ];
        let mut conn = endpoint(role, limits(100, 100));
        conn.receive(&input.concat());
        let events = poll_all(&mut conn);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(&events[1], Event::Message(Message::Binary(b)) if b.len() == 100));
    }

    /// A peer announcing 2^62 bytes gets 1009 at once; nothing of it is buffered.
    fn frame_announcing_2_pow_62_bytes_fails_with_1009_having_buffered_nothing(role) {
        let mut conn = endpoint(role, Config::default());
        conn.receive(&long_header_to(role, 0x82, 1 << 62));
        let events = poll_all(&mut conn);
        assert!(conn.read_buffer().capacity() < SMALL, "{}", conn.read_buffer().capacity());
        assert_failed(role, &mut conn, &events, &ProtocolError::FrameTooLarge);
        assert!(conn.read_buffer().capacity() < SMALL);
    }

    fn frame_announcing_2_pow_62_bytes_fails_with_1009_even_with_no_frame_limit(role) {
        let config = limits(usize::MAX, 64 << 20);
        let mut conn = endpoint(role, config);
        conn.receive(&long_header_to(role, 0x81, 1 << 62));
        let events = poll_all(&mut conn);
        assert!(conn.read_buffer().capacity() < SMALL);
        assert_failed(role, &mut conn, &events, &ProtocolError::MessageTooLarge);
    }

    fn continuation_announcing_2_pow_62_bytes_fails_with_1009(role) {
        let input = [frame_to(role, 0x01, b"start"), long_header_to(role, 0x00, 1 << 62)].concat();
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input);
        let events = poll_all(&mut conn);
        assert!(conn.read_buffer().capacity() < SMALL);
        assert_failed(role, &mut conn, &events, &ProtocolError::FrameTooLarge);
    }
}
