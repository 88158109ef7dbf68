//! RFC 6455 §8.1: text is UTF-8, and invalid text fails the connection with 1007 as soon as it
//! is seen ("fail fast"), even before its frame or message is complete.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{assert_failed, assert_fails, endpoint, frame_to, poll_all};
use herald_proto::{Config, Event, Message, ProtocolError, Role};

fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

/// Length of the header `frame_to` writes for a short payload.
fn header_len(role: Role) -> usize {
    if role == Role::Server { 6 } else { 2 }
}

/// Feeds `input` one byte at a time and returns the index of the byte after which the
/// connection reported `Closed`, with the events.
fn first_event_at(role: Role, input: &[u8]) -> (usize, herald_proto::Connection, Vec<Event>) {
    let mut conn = endpoint(role, Config::default());
    for (i, byte) in input.iter().enumerate() {
        conn.receive(std::slice::from_ref(byte));
        let events = poll_all(&mut conn);
        if !events.is_empty() {
            return (i, conn, events);
        }
    }
    panic!("no event");
}

for_both_roles! {
    fn invalid_byte_in_a_single_frame_fails_with_1007(role) {
        let input = frame_to(role, 0x81, b"Hello\xffworld");
        assert_fails(role, Config::default(), &input, ProtocolError::InvalidUtf8);
    }

    fn invalid_byte_fails_as_soon_as_it_arrives_before_the_frame_completes(role) {
        let input = frame_to(role, 0x81, b"Hello \xc0 and a long tail that never needs to arrive");
        let (at, mut conn, events) = first_event_at(role, &input);
        assert_eq!(at, header_len(role) + 6, "fails at the 0xc0 byte");
        assert_failed(role, &mut conn, &events, &ProtocolError::InvalidUtf8);
    }

    fn code_point_above_u10ffff_fails_at_its_second_byte(role) {
        let input = frame_to(role, 0x81, b"ab\xf4\x90\x80\x80cd");
        let (at, mut conn, events) = first_event_at(role, &input);
        assert_eq!(at, header_len(role) + 3);
        assert_failed(role, &mut conn, &events, &ProtocolError::InvalidUtf8);
    }

    fn invalid_byte_in_a_later_fragment_fails_before_the_message_completes(role) {
        let first = frame_to(role, 0x01, "κόσμε ".as_bytes());
        let second = frame_to(role, 0x00, b"ok \xed\xa0\x80 surrogate");
        let last = frame_to(role, 0x80, b"end");
        let input = [first.clone(), second, last].concat();
        let (at, mut conn, events) = first_event_at(role, &input);
        assert_eq!(at, first.len() + header_len(role) + 4, "fails at the surrogate's 2nd byte");
        assert_failed(role, &mut conn, &events, &ProtocolError::InvalidUtf8);
    }

    fn code_point_split_across_fragments_is_valid(role) {
        let euro = "€".as_bytes();
        let clef = "𝄞".as_bytes();
        let input = [
            frame_to(role, 0x01, &[b"a", &euro[..1]].concat()),
            frame_to(role, 0x00, &euro[1..2]),
            frame_to(role, 0x00, &[&euro[2..], &clef[..3]].concat()),
            frame_to(role, 0x80, &[&clef[3..], b"z"].concat()),
        ];
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input.concat());
        assert_eq!(poll_all(&mut conn), [text("a€𝄞z")]);
    }

    fn invalid_code_point_split_across_fragments_fails_with_1007(role) {
        let first = frame_to(role, 0x01, b"x\xf4");
        let input = [first.clone(), frame_to(role, 0x80, b"\x90\x80\x80")].concat();
        let (at, mut conn, events) = first_event_at(role, &input);
        assert_eq!(at, first.len() + header_len(role), "fails at the continuation's 1st byte");
        assert_failed(role, &mut conn, &events, &ProtocolError::InvalidUtf8);
    }

    fn overlong_encoding_split_across_fragments_fails_with_1007(role) {
        let input = [frame_to(role, 0x01, b"\xe0"), frame_to(role, 0x80, b"\x80\xaf")].concat();
        assert_fails(role, Config::default(), &input, ProtocolError::InvalidUtf8);
    }

    fn message_ending_inside_a_code_point_fails_with_1007(role) {
        let input = [frame_to(role, 0x01, b"ok"), frame_to(role, 0x80, b"\xe2\x82")].concat();
        assert_fails(role, Config::default(), &input, ProtocolError::InvalidUtf8);
    }

    fn single_frame_ending_inside_a_code_point_fails_with_1007(role) {
        let input = frame_to(role, 0x81, b"\xf0\x9f\x98");
        assert_fails(role, Config::default(), &input, ProtocolError::InvalidUtf8);
    }

    fn validation_restarts_with_each_message(role) {
        let input = [
            frame_to(role, 0x01, b"\xe2"),
            frame_to(role, 0x80, b"\x82\xac"),
            frame_to(role, 0x81, "ü".as_bytes()),
        ];
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input.concat());
        assert_eq!(poll_all(&mut conn), [text("€"), text("ü")]);
    }

    fn control_frames_between_text_fragments_are_not_text(role) {
        let input = [
            frame_to(role, 0x01, b"\xe2\x82"),
            frame_to(role, 0x89, b"\xff"),
            frame_to(role, 0x8a, b"\xfe"),
            frame_to(role, 0x80, b"\xac"),
        ];
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input.concat());
        let events = poll_all(&mut conn);
        assert_eq!(events.len(), 3);
        assert_eq!(events[2], text("€"));
    }

    fn binary_messages_are_not_validated(role) {
        let input = [frame_to(role, 0x02, b"\xff"), frame_to(role, 0x80, b"\xc0")].concat();
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input);
        assert_eq!(
            poll_all(&mut conn),
            [Event::Message(Message::Binary(vec![0xff, 0xc0].into()))]
        );
    }

    fn text_fed_one_byte_at_a_time_is_valid(role) {
        let s = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞";
        let input = frame_to(role, 0x81, s.as_bytes());
        let (at, _, events) = first_event_at(role, &input);
        assert_eq!((at, events), (input.len() - 1, vec![text(s)]));
    }
}
