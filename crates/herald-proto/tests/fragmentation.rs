//! RFC 6455 §5.4: fragmented messages, with control frames between fragments, and the rules of
//! a fragment sequence for both the receiver (1002) and the local sender (misuse).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::Bytes;
use common::{Pair, assert_fails, endpoint, frame_to, peer, poll_all, transmitted};
use herald_proto::{Config, Event, Message, MisuseError, Opcode, ProtocolError, Role};

fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

fn receive(role: Role, frames: &[Vec<u8>]) -> (Vec<Event>, Vec<u8>) {
    let mut conn = endpoint(role, Config::default());
    conn.receive(&frames.concat());
    (poll_all(&mut conn), transmitted(&mut conn))
}

for_both_roles! {
    fn text_in_three_fragments_is_one_message(role) {
        let frames = [
            frame_to(role, 0x01, b"Hel"),
            frame_to(role, 0x00, b"l"),
            frame_to(role, 0x80, b"o"),
        ];
        assert_eq!(receive(role, &frames).0, [text("Hello")]);
    }

    fn binary_with_empty_fragments_is_one_message(role) {
        let frames = [
            frame_to(role, 0x02, b""),
            frame_to(role, 0x00, b"\x00\x01"),
            frame_to(role, 0x00, b""),
            frame_to(role, 0x80, b"\x02"),
        ];
        let expected = Event::Message(Message::Binary(Bytes::from_static(b"\x00\x01\x02")));
        assert_eq!(receive(role, &frames).0, [expected]);
    }

    /// §5.4: control frames MAY be injected in the middle of a fragmented message.
    fn ping_between_fragments_is_reported_and_answered_before_the_message(role) {
        let frames = [
            frame_to(role, 0x01, b"Hel"),
            frame_to(role, 0x89, b"mid"),
            frame_to(role, 0x80, b"lo"),
        ];
        let (events, out) = receive(role, &frames);
        assert_eq!(events, [Event::Ping(Bytes::from_static(b"mid")), text("Hello")]);
        let pong = &common::parse_frames(&out)[0];
        assert_eq!((pong.header.opcode, &pong.payload[..]), (Opcode::Pong, &b"mid"[..]));
    }

    fn pong_between_fragments_is_reported_before_the_message(role) {
        let frames = [
            frame_to(role, 0x02, b"\x01"),
            frame_to(role, 0x8a, b"beat"),
            frame_to(role, 0x00, b"\x02"),
            frame_to(role, 0x89, b""),
            frame_to(role, 0x80, b"\x03"),
        ];
        let (events, _) = receive(role, &frames);
        assert_eq!(
            events,
            [
                Event::Pong(Bytes::from_static(b"beat")),
                Event::Ping(Bytes::new()),
                Event::Message(Message::Binary(Bytes::from_static(b"\x01\x02\x03"))),
            ]
        );
    }

    fn close_between_fragments_ends_the_connection_and_drops_the_partial_message(role) {
        let frames = [
            frame_to(role, 0x01, b"Hel"),
            frame_to(role, 0x88, b"\x03\xe9"),
            frame_to(role, 0x80, b"lo"),
        ];
        let (events, out) = receive(role, &frames);
        assert_eq!(events.len(), 1, "{events:?}");
        let closed = common::closed(&events);
        assert_eq!(closed.code().as_u16(), 1001);
        let reply = &common::parse_frames(&out)[0];
        assert_eq!((reply.header.opcode, &reply.payload[..]), (Opcode::Close, &b"\x03\xe9"[..]));
    }

    fn continuation_without_a_message_fails_with_1002(role) {
        let input = frame_to(role, 0x80, b"lo");
        assert_fails(role, Config::default(), &input, ProtocolError::UnexpectedContinuation);
    }

    fn continuation_after_a_finished_message_fails_with_1002(role) {
        let input = [frame_to(role, 0x81, b"done"), frame_to(role, 0x00, b"more")].concat();
        let before =
            assert_fails(role, Config::default(), &input, ProtocolError::UnexpectedContinuation);
        assert_eq!(before, [text("done")]);
    }

    fn text_frame_inside_an_unfinished_message_fails_with_1002(role) {
        let input = [frame_to(role, 0x01, b"Hel"), frame_to(role, 0x81, b"lo")].concat();
        assert_fails(role, Config::default(), &input, ProtocolError::ExpectedContinuation);
    }

    fn binary_frame_inside_an_unfinished_message_fails_with_1002(role) {
        let input = [frame_to(role, 0x02, b"\x01"), frame_to(role, 0x02, b"\x02")].concat();
        assert_fails(role, Config::default(), &input, ProtocolError::ExpectedContinuation);
    }

    /// §5.5: control frames MUST NOT be fragmented.
    fn ping_without_fin_fails_with_1002(role) {
        let input = frame_to(role, 0x09, b"x");
        assert_fails(role, Config::default(), &input, ProtocolError::FragmentedControlFrame);
    }

    fn close_without_fin_fails_with_1002(role) {
        let input = frame_to(role, 0x08, b"\x03\xe8");
        assert_fails(role, Config::default(), &input, ProtocolError::FragmentedControlFrame);
    }

    fn pong_without_fin_between_fragments_fails_with_1002(role) {
        let input = [frame_to(role, 0x01, b"a"), frame_to(role, 0x0a, b"")].concat();
        assert_fails(role, Config::default(), &input, ProtocolError::FragmentedControlFrame);
    }

    fn fragments_sent_with_send_frame_arrive_as_one_message(role) {
        let mut pair = Pair::new();
        let sender = pair.get(role);
        sender.send_frame(Opcode::Text, false, Bytes::from_static(b"frag")).unwrap();
        sender.ping("between").unwrap();
        sender.send_frame(Opcode::Continuation, false, Bytes::new()).unwrap();
        sender.send_frame(Opcode::Continuation, true, Bytes::from_static(b"ments")).unwrap();
        sender.send_text("next").unwrap();
        pair.deliver(role);
        assert_eq!(
            pair.take_events(peer(role)),
            [Event::Ping(Bytes::from_static(b"between")), text("fragments"), text("next")]
        );
    }

    fn continuation_with_nothing_to_continue_is_misuse(role) {
        let mut conn = endpoint(role, Config::default());
        let err = conn.send_frame(Opcode::Continuation, true, Bytes::new());
        assert_eq!(err, Err(MisuseError::InvalidFragment));
        assert_eq!(conn.transmit_len(), 0);
    }

    fn new_message_inside_an_unfinished_one_is_misuse(role) {
        let mut conn = endpoint(role, Config::default());
        conn.send_frame(Opcode::Binary, false, Bytes::from_static(b"a")).unwrap();
        let queued = conn.transmit_len();
        let text = Bytes::from_static(b"b");
        assert_eq!(conn.send_frame(Opcode::Text, true, text), Err(MisuseError::InvalidFragment));
        let binary = Bytes::from_static(b"b");
        assert_eq!(conn.send_frame(Opcode::Binary, false, binary), Err(MisuseError::InvalidFragment));
        assert_eq!(conn.send_text("c"), Err(MisuseError::InvalidFragment));
        assert_eq!(conn.send_binary(&b"d"[..]), Err(MisuseError::InvalidFragment));
        assert_eq!(conn.transmit_len(), queued);
        conn.send_frame(Opcode::Continuation, true, Bytes::new()).unwrap();
        conn.send_text("after").unwrap();
    }

    fn control_opcode_given_to_send_frame_is_misuse(role) {
        let mut conn = endpoint(role, Config::default());
        for opcode in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
            let err = conn.send_frame(opcode, true, Bytes::new());
            assert_eq!(err, Err(MisuseError::InvalidFragment));
        }
        assert_eq!(conn.transmit_len(), 0);
    }
}
