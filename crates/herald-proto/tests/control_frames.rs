//! RFC 6455 §5.5: control frames are at most 125 bytes; a Ping is answered with a Pong of the
//! same payload (§5.5.2); an unsolicited Pong is a heartbeat (§5.5.3).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::Bytes;
use common::{Pair, assert_fails, endpoint, frame_to, parse_frames, peer, poll_all, transmitted};
use herald_proto::{CloseCode, Config, Event, MisuseError, Opcode, ProtocolError};

for_both_roles! {
    fn ping_of_126_bytes_fails_with_1002(role) {
        let input = frame_to(role, 0x89, &[0u8; 126]);
        assert_fails(role, Config::default(), &input, ProtocolError::ControlFrameTooLong);
    }

    fn pong_of_126_bytes_fails_with_1002(role) {
        let input = frame_to(role, 0x8a, &[0u8; 126]);
        assert_fails(role, Config::default(), &input, ProtocolError::ControlFrameTooLong);
    }

    fn close_of_126_bytes_fails_with_1002(role) {
        let mut payload = vec![b'x'; 126];
        payload[..2].copy_from_slice(&1000u16.to_be_bytes());
        let input = frame_to(role, 0x88, &payload);
        assert_fails(role, Config::default(), &input, ProtocolError::ControlFrameTooLong);
    }

    fn control_frame_announcing_a_huge_length_fails_from_its_header(role) {
        let input = common::long_header_to(role, 0x89, 1 << 40);
        assert_fails(role, Config::default(), &input, ProtocolError::ControlFrameTooLong);
    }

    fn ping_of_125_bytes_is_answered_with_the_same_125_bytes(role) {
        let payload: Vec<u8> = (0..125).collect();
        let mut conn = endpoint(role, Config::default());
        conn.receive(&frame_to(role, 0x89, &payload));
        assert_eq!(poll_all(&mut conn), [Event::Ping(payload.clone().into())]);
        let frames = parse_frames(&transmitted(&mut conn));
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header.opcode, Opcode::Pong);
        assert!(frames[0].header.fin);
        assert_eq!(frames[0].payload, payload);
    }

    fn each_ping_is_answered_in_order(role) {
        let input = [frame_to(role, 0x89, b"1"), frame_to(role, 0x89, b""), frame_to(role, 0x89, b"3")];
        let mut conn = endpoint(role, Config::default());
        conn.receive(&input.concat());
        assert_eq!(poll_all(&mut conn).len(), 3);
        let pongs: Vec<Vec<u8>> = parse_frames(&transmitted(&mut conn))
            .into_iter()
            .map(|f| f.payload)
            .collect();
        assert_eq!(pongs, [b"1".to_vec(), b"".to_vec(), b"3".to_vec()]);
    }

    fn ping_sent_by_the_application_comes_back_as_a_pong_event(role) {
        let mut pair = Pair::new();
        pair.get(role).ping(&b"are you there"[..]).unwrap();
        pair.settle();
        assert_eq!(pair.take_events(peer(role)), [Event::Ping(Bytes::from_static(b"are you there"))]);
        assert_eq!(pair.take_events(role), [Event::Pong(Bytes::from_static(b"are you there"))]);
    }

    fn unsolicited_pong_is_reported_and_not_answered(role) {
        let mut pair = Pair::new();
        pair.get(role).pong(&b"heartbeat"[..]).unwrap();
        pair.deliver(role);
        assert_eq!(pair.take_events(peer(role)), [Event::Pong(Bytes::from_static(b"heartbeat"))]);
        assert_eq!(pair.get(peer(role)).transmit_len(), 0);
    }

    fn application_ping_of_126_bytes_is_misuse(role) {
        let mut conn = endpoint(role, Config::default());
        assert_eq!(conn.ping(vec![0u8; 126]), Err(MisuseError::ControlPayloadTooLong));
        assert_eq!(conn.pong(vec![0u8; 126]), Err(MisuseError::ControlPayloadTooLong));
        assert_eq!(conn.transmit_len(), 0);
        conn.ping(vec![0u8; 125]).unwrap();
        conn.pong(vec![0u8; 125]).unwrap();
        let frames = parse_frames(&transmitted(&mut conn));
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.payload.len() == 125));
    }

    fn application_ping_and_pong_after_close_are_misuse(role) {
        let mut conn = endpoint(role, Config::default());
        conn.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(conn.ping(Bytes::new()), Err(MisuseError::Closed));
        assert_eq!(conn.pong(Bytes::new()), Err(MisuseError::Closed));
    }

    /// §5.5.2: after sending a Close this endpoint sends nothing more, not even a Pong.
    fn ping_received_after_sending_close_is_reported_but_not_answered(role) {
        let mut conn = endpoint(role, Config::default());
        conn.close(CloseCode::NORMAL, "").unwrap();
        let _ = transmitted(&mut conn);
        conn.receive(&frame_to(role, 0x89, b"late"));
        assert_eq!(poll_all(&mut conn), [Event::Ping(Bytes::from_static(b"late"))]);
        assert_eq!(conn.transmit_len(), 0);
    }
}

mod most_recent_ping {
    //! RFC 6455 §5.5.3: "If an endpoint receives a Ping frame and has not yet sent Pong
    //! frame(s) in response to previous Ping frame(s), the endpoint MAY elect to send a Pong
    //! frame for only the most recently processed Ping frame." Behind a long transmit queue at
    //! most one Pong waits; with a short queue every Ping is answered at once.
    use super::*;
    use common::{take_transmit, transmitted};

    const THRESHOLD: usize = 1024;

    fn config() -> Config {
        Config::default().with_pong_coalesce_threshold(THRESHOLD)
    }

    fn pings_to(role: Role, payloads: &[&[u8]]) -> Vec<u8> {
        payloads
            .iter()
            .flat_map(|p| frame_to(role, 0x89, p))
            .collect()
    }

    fn pongs(wire: &[u8]) -> Vec<Vec<u8>> {
        parse_frames(wire)
            .into_iter()
            .filter(|f| f.header.opcode == Opcode::Pong)
            .map(|f| f.payload)
            .collect()
    }

    /// An endpoint whose queue holds one binary message of `len` bytes.
    fn with_queued(role: Role, len: usize) -> herald_proto::Connection {
        let mut conn = endpoint(role, config());
        conn.send_binary(vec![0u8; len]).unwrap();
        conn
    }

    use herald_proto::Role;

    for_both_roles! {
        /// Autobahn 2.10: ten Pings, ten Pongs, in order.
        fn ten_pings_with_a_short_queue_get_ten_pongs_at_once(role) {
            let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 10]).collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let mut conn = endpoint(role, config());
            conn.receive(&pings_to(role, &refs));
            assert_eq!(poll_all(&mut conn).len(), 10);
            assert!(!conn.has_pending_pong());
            assert_eq!(pongs(&transmitted(&mut conn)), payloads);
        }

        fn pings_behind_a_long_queue_leave_one_pong_with_the_latest_payload(role) {
            let mut conn = with_queued(role, 2 * THRESHOLD);
            let queued = conn.transmit_len();
            conn.receive(&pings_to(role, &[b"1", b"2", b"3"]));
            let events = poll_all(&mut conn);
            assert_eq!(events.len(), 3, "every Ping is still reported: {events:?}");
            assert!(conn.has_pending_pong());
            assert_eq!(conn.transmit_len(), queued, "no Pong is queued behind the backlog");
            assert_eq!(pongs(&transmitted(&mut conn)), [b"3".to_vec()]);
            assert!(!conn.has_pending_pong());
        }

        fn pending_pong_is_queued_once_the_queue_drains_to_the_threshold(role) {
            let mut conn = with_queued(role, 2 * THRESHOLD);
            conn.receive(&pings_to(role, &[b"a", b"b"]));
            poll_all(&mut conn);
            let over = conn.transmit_len() - THRESHOLD;
            // Still one byte over the threshold: the Pong keeps waiting.
            let mut wire = take_transmit(&mut conn, over - 1);
            assert!(conn.has_pending_pong());
            assert_eq!(conn.transmit_len(), THRESHOLD + 1);
            wire.extend(take_transmit(&mut conn, 1));
            assert!(!conn.has_pending_pong());
            assert_eq!(conn.transmit_len(), THRESHOLD + 2 + 1 + usize::from(role == Role::Client) * 4);
            wire.extend(transmitted(&mut conn));
            let frames = parse_frames(&wire);
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].header.opcode, Opcode::Binary);
            assert_eq!(frames[1].header.opcode, Opcode::Pong);
            assert_eq!(frames[1].payload, b"b");
        }

        fn ping_after_the_queue_drained_is_answered_at_once_again(role) {
            let mut conn = with_queued(role, 2 * THRESHOLD);
            conn.receive(&pings_to(role, &[b"x"]));
            poll_all(&mut conn);
            let first = transmitted(&mut conn);
            assert_eq!(pongs(&first), [b"x".to_vec()]);
            conn.receive(&pings_to(role, &[b"y", b"z"]));
            poll_all(&mut conn);
            assert!(!conn.has_pending_pong());
            assert_eq!(pongs(&transmitted(&mut conn)), [b"y".to_vec(), b"z".to_vec()]);
        }

        /// §5.5.1: nothing is sent after a Close, not even the Pong that waited.
        fn pending_pong_is_dropped_when_a_close_is_queued_first(role) {
            let mut conn = with_queued(role, 2 * THRESHOLD);
            conn.receive(&pings_to(role, &[b"late"]));
            poll_all(&mut conn);
            conn.close(CloseCode::NORMAL, "").unwrap();
            assert!(!conn.has_pending_pong());
            let frames = parse_frames(&transmitted(&mut conn));
            let opcodes: Vec<Opcode> = frames.iter().map(|f| f.header.opcode).collect();
            assert_eq!(opcodes, [Opcode::Binary, Opcode::Close]);
        }

        fn pending_pong_is_dropped_when_the_peer_closes_first(role) {
            let mut conn = with_queued(role, 2 * THRESHOLD);
            let mut close = vec![0x03, 0xe8];
            close.extend_from_slice(b"bye");
            let mut input = pings_to(role, &[b"late"]);
            input.extend(frame_to(role, 0x88, &close));
            conn.receive(&input);
            let events = poll_all(&mut conn);
            assert!(matches!(events.last(), Some(Event::Closed(_))));
            let frames = parse_frames(&transmitted(&mut conn));
            let opcodes: Vec<Opcode> = frames.iter().map(|f| f.header.opcode).collect();
            assert_eq!(opcodes, [Opcode::Binary, Opcode::Close]);
        }

        /// Through the pair: the peer sees every Ping answered by the latest one's Pong.
        fn flood_of_pings_behind_a_long_queue_is_answered_by_one_pong(role) {
            let mut pair = Pair::with_config(config());
            pair.get(role).send_binary(vec![0u8; 4 * THRESHOLD]).unwrap();
            for i in 0..100u8 {
                pair.get(peer(role)).ping(vec![i]).unwrap();
            }
            pair.deliver(peer(role));
            assert_eq!(pair.take_events(role).len(), 100);
            assert!(pair.get(role).transmit_len() < 4 * THRESHOLD + 16);
            // The Pong joins the queue once the message has gone: a second delivery takes it.
            while pair.deliver(role) > 0 {}
            let events = pair.take_events(peer(role));
            let pongs: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Pong(_))).collect();
            assert_eq!(pongs, [&Event::Pong(Bytes::from_static(&[99]))]);
        }
    }
}
