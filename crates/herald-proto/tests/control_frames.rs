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
