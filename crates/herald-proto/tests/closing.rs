//! RFC 6455 §5.5.1 and §7: the closing handshake, and how a closed connection is reported:
//! who closed, with which code and reason, cleanly or not (1006 when the transport ends first).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{Pair, closed, endpoint, frame_to, parse_frames, peer, poll_all, transmitted};
use herald_proto::{CloseCode, Config, Event, Initiator, Message, MisuseError, Opcode, Role};

/// The payloads of the Close frames `role` queued; all its bytes go to the peer.
fn sent_closes(pair: &mut Pair, role: Role) -> Vec<Vec<u8>> {
    let out = transmitted(pair.get(role));
    let frames = parse_frames(&out);
    pair.get(peer(role)).receive(&out);
    frames
        .into_iter()
        .filter(|f| f.header.opcode == Opcode::Close)
        .map(|f| f.payload)
        .collect()
}

mod closing_handshake {
    //! RFC 6455 §7.1.2–§7.1.4: start, answer, and report.
    use super::*;

    for_both_roles! {
        fn close_is_sent_once_and_a_second_close_is_misuse(role) {
            let mut conn = endpoint(role, Config::default());
            conn.close(CloseCode::GOING_AWAY, "bye").unwrap();
            let err = conn.close(CloseCode::NORMAL, "");
            assert_eq!(err, Err(MisuseError::Closed));
            let frames = parse_frames(&transmitted(&mut conn));
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].payload, b"\x03\xe9bye");
        }

        fn data_after_sending_close_is_misuse(role) {
            let mut conn = endpoint(role, Config::default());
            conn.close(CloseCode::NORMAL, "").unwrap();
            assert!(!conn.can_send());
            assert_eq!(conn.send_text("late"), Err(MisuseError::Closed));
            assert_eq!(conn.send_binary(vec![1]), Err(MisuseError::Closed));
            let frame = conn.send_frame(Opcode::Text, true, Default::default());
            assert_eq!(frame, Err(MisuseError::Closed));
        }

        fn received_close_is_answered_with_the_same_code(role) {
            let mut pair = Pair::new();
            pair.get(peer(role)).close(CloseCode::from(4321), "custom").unwrap();
            let _ = sent_closes(&mut pair, peer(role));
            let events = poll_all(pair.get(role));
            assert_eq!(closed(&events).code().as_u16(), 4321);
            assert_eq!(closed(&events).reason(), "custom");
            assert_eq!(sent_closes(&mut pair, role), [4321u16.to_be_bytes().to_vec()]);
        }

        fn received_empty_close_is_answered_with_1000_and_reported_as_1005(role) {
            let mut conn = endpoint(role, Config::default());
            conn.receive(&frame_to(role, 0x88, b""));
            let events = poll_all(&mut conn);
            let closed = closed(&events);
            assert_eq!(closed.code(), CloseCode::NO_STATUS);
            assert_eq!(closed.reason(), "");
            assert_eq!(closed.sent.as_ref().unwrap().code, CloseCode::NORMAL);
            let frames = parse_frames(&transmitted(&mut conn));
            assert_eq!(frames[0].payload, b"\x03\xe8");
        }

        fn data_after_a_received_close_is_ignored(role) {
            let input = [
                frame_to(role, 0x81, b"before"),
                frame_to(role, 0x88, b"\x03\xe8"),
                frame_to(role, 0x81, b"after"),
                frame_to(role, 0x89, b"ping"),
            ];
            let mut conn = endpoint(role, Config::default());
            conn.receive(&input.concat());
            let events = poll_all(&mut conn);
            assert_eq!(events.len(), 2, "{events:?}");
            assert_eq!(events[0], Event::Message(Message::Text("before".into())));
            conn.receive(&frame_to(role, 0x81, b"later still"));
            assert_eq!(conn.poll_event(), None);
            let frames = parse_frames(&transmitted(&mut conn));
            assert_eq!(frames.len(), 1, "only the Close answer, no Pong");
            assert_eq!(conn.send_text("x"), Err(MisuseError::Closed));
        }

        fn data_received_after_sending_close_is_still_delivered(role) {
            let mut pair = Pair::new();
            pair.get(role).close(CloseCode::NORMAL, "").unwrap();
            pair.get(peer(role)).send_text("in flight").unwrap();
            pair.deliver(peer(role));
            assert_eq!(
                pair.take_events(role),
                [Event::Message(Message::Text("in flight".into()))]
            );
        }

        fn both_sides_report_who_closed_with_which_code_and_reason(role) {
            let mut pair = Pair::new();
            pair.get(role).close(CloseCode::GOING_AWAY, "shutting down").unwrap();
            pair.settle();
            let local = closed(&pair.take_events(role)).clone();
            let remote = closed(&pair.take_events(peer(role))).clone();

            assert_eq!(local.initiator, Initiator::Local);
            assert_eq!(local.sent.as_ref().unwrap().reason, "shutting down");
            assert_eq!(local.code(), CloseCode::GOING_AWAY, "the peer echoes the code");
            assert_eq!(local.reason(), "");
            assert_eq!(local.error, None);
            assert!(local.is_clean());

            assert_eq!(remote.initiator, Initiator::Remote);
            assert_eq!(remote.code(), CloseCode::GOING_AWAY);
            assert_eq!(remote.reason(), "shutting down");
            assert_eq!(remote.error, None);
            assert!(remote.is_clean());
            assert!(pair.client.is_closed() && pair.server.is_closed());
        }

        fn both_sides_closing_at_once_is_clean_on_both(role) {
            let mut pair = Pair::new();
            pair.get(role).close(CloseCode::NORMAL, "a").unwrap();
            pair.get(peer(role)).close(CloseCode::GOING_AWAY, "b").unwrap();
            pair.settle();
            for side in [role, peer(role)] {
                let events = pair.take_events(side);
                assert_eq!(events.len(), 1);
                assert_eq!(closed(&events).initiator, Initiator::Local);
                assert!(closed(&events).is_clean());
            }
        }

        fn messages_queued_before_close_arrive_before_it(role) {
            let mut pair = Pair::new();
            pair.get(role).send_text("first").unwrap();
            pair.get(role).close(CloseCode::NORMAL, "").unwrap();
            pair.deliver(role);
            let events = pair.take_events(peer(role));
            assert_eq!(events[0], Event::Message(Message::Text("first".into())));
            assert_eq!(closed(&events).code(), CloseCode::NORMAL);
        }
    }

    #[test]
    fn server_closes_the_transport_after_the_handshake() {
        let mut pair = Pair::new();
        pair.client.close(CloseCode::NORMAL, "").unwrap();
        pair.settle();
        assert!(pair.server.should_close_transport());
        assert!(
            !pair.client.should_close_transport(),
            "the client waits for the server"
        );
    }

    #[test]
    fn server_closes_the_transport_after_the_handshake_it_started() {
        let mut pair = Pair::new();
        pair.server.close(CloseCode::NORMAL, "").unwrap();
        assert!(
            !pair.server.should_close_transport(),
            "not before the answer"
        );
        pair.settle();
        assert!(pair.server.should_close_transport());
        assert!(!pair.client.should_close_transport());
    }

    #[test]
    fn client_closes_the_transport_after_a_failure() {
        let mut client = endpoint(Role::Client, Config::default());
        client.receive(&frame_to(Role::Client, 0x83, b""));
        assert_eq!(poll_all(&mut client).len(), 1);
        assert!(client.should_close_transport());
    }
}

mod abnormal_closure {
    //! RFC 6455 §7.1.5 and §7.4.1: a transport that ends without a Close is 1006.
    use super::*;

    for_both_roles! {
        fn eof_mid_connection_is_1006_and_not_clean(role) {
            let mut pair = Pair::new();
            pair.eof(role);
            let events = pair.take_events(role);
            assert_eq!(events.len(), 1);
            let closed = closed(&events);
            assert_eq!(closed.code(), CloseCode::ABNORMAL);
            assert_eq!(closed.initiator, Initiator::Remote);
            assert_eq!((closed.sent.clone(), closed.error.clone()), (None, None));
            assert!(!closed.is_clean());
            assert!(pair.get(role).is_closed());
            assert!(pair.get(role).should_close_transport());
            assert_eq!(pair.get(role).transmit_len(), 0, "nothing to say to a closed transport");
        }

        fn eof_after_sending_close_is_1006_started_locally(role) {
            let mut pair = Pair::new();
            pair.get(role).close(CloseCode::NORMAL, "").unwrap();
            pair.eof(role);
            let closed = closed(&pair.take_events(role)).clone();
            assert_eq!(closed.initiator, Initiator::Local);
            assert_eq!(closed.code(), CloseCode::ABNORMAL);
            assert!(!closed.is_clean());
        }

        fn eof_after_a_clean_close_changes_nothing(role) {
            let mut pair = Pair::new();
            pair.get(role).close(CloseCode::NORMAL, "").unwrap();
            pair.settle();
            assert!(closed(&pair.take_events(role)).is_clean());
            pair.eof(role);
            assert_eq!(pair.take_events(role), []);
        }

        fn messages_that_arrived_with_the_eof_are_delivered_first(role) {
            let mut conn = endpoint(role, Config::default());
            conn.receive(&frame_to(role, 0x81, b"last words"));
            conn.receive_eof();
            let events = poll_all(&mut conn);
            assert_eq!(events[0], Event::Message(Message::Text("last words".into())));
            assert_eq!(closed(&events).code(), CloseCode::ABNORMAL);
        }

        fn close_that_arrived_with_the_eof_is_a_clean_close(role) {
            let mut pair = Pair::new();
            pair.get(role).close(CloseCode::NORMAL, "").unwrap();
            pair.deliver(role);
            let reply = transmitted(pair.get(peer(role)));
            let conn = pair.get(role);
            conn.receive(&reply);
            conn.receive_eof();
            let events = poll_all(conn);
            assert_eq!(events.len(), 1);
            assert_eq!(closed(&events).code(), CloseCode::NORMAL);
            assert!(closed(&events).is_clean());
        }

        fn partial_frame_at_eof_is_1006(role) {
            let mut conn = endpoint(role, Config::default());
            conn.receive(&frame_to(role, 0x81, b"cut short")[..5]);
            conn.receive_eof();
            let events = poll_all(&mut conn);
            assert_eq!(events.len(), 1);
            assert_eq!(closed(&events).code(), CloseCode::ABNORMAL);
        }
    }
}

mod abandoned_transport {
    //! RFC 6455 §7.1.7 allows an endpoint to drop the connection when it cannot go on; a
    //! driver that gives up on a peer that stopped reading abandons the transport: 1006,
    //! nothing more is sent, what was buffered either way is dropped.
    use super::*;

    for_both_roles! {
        fn abandoned_connection_drops_its_queue_and_ends_with_1006(role) {
            let mut conn = endpoint(role, Config::default().with_pong_coalesce_threshold(16));
            conn.send_binary(vec![0u8; 64]).unwrap();
            conn.receive(&frame_to(role, 0x89, b"unanswered"));
            assert_eq!(poll_all(&mut conn), [Event::Ping("unanswered".into())]);
            assert!(conn.has_pending_pong());
            conn.receive(&frame_to(role, 0x81, b"never parsed"));
            conn.abandon();
            assert_eq!(conn.transmit_len(), 0);
            assert!(!conn.has_pending_pong());
            let events = poll_all(&mut conn);
            assert_eq!(events.len(), 1, "input buffered before is dropped: {events:?}");
            let closed = closed(&events);
            assert_eq!(closed.code(), CloseCode::ABNORMAL);
            assert_eq!(closed.initiator, Initiator::Local);
            assert_eq!((closed.received.clone(), closed.error.clone()), (None, None));
            assert!(!closed.is_clean());
            assert!(conn.is_closed());
            assert!(conn.should_close_transport());
            assert_eq!(conn.send_text("late"), Err(MisuseError::Closed));
            conn.receive(&frame_to(role, 0x81, b"late"));
            assert_eq!(conn.poll_event(), None);
            assert_eq!(conn.transmit_len(), 0);
        }

        fn abandoning_after_sending_close_keeps_the_sent_close(role) {
            let mut conn = endpoint(role, Config::default());
            conn.close(CloseCode::GOING_AWAY, "").unwrap();
            conn.abandon();
            assert_eq!(conn.transmit_len(), 0);
            let closed = closed(&poll_all(&mut conn)).clone();
            assert_eq!(closed.sent.as_ref().map(|c| c.code), Some(CloseCode::GOING_AWAY));
            assert_eq!(closed.code(), CloseCode::ABNORMAL);
        }
    }
}
