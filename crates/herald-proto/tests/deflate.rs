//! RFC 7692: permessage-deflate between a client and a server, both roles.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{Pair, frame_to, peer, poll_all, transmitted};
use herald_proto::{Config, DeflateConfig, DeflateParams, Event, Message, ProtocolError, Role};

fn params(takeover: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
    }
}

fn settings(threshold: usize) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.threshold = threshold;
    config
}

fn compressed_pair(params: DeflateParams, threshold: usize) -> Pair {
    let mut pair = Pair::new();
    let config = settings(threshold);
    pair.client = std::mem::replace(
        &mut pair.client,
        common::endpoint(Role::Client, Config::default()),
    )
    .with_deflate(params, &config);
    pair.server = std::mem::replace(
        &mut pair.server,
        common::endpoint(Role::Server, Config::default()),
    )
    .with_deflate(params, &config);
    pair
}

fn text(n: usize, seed: usize) -> String {
    (0..n)
        .map(|i| ["alpha ", "beta ", "γάμμα ", "δ "][(i * 7 + seed) % 4])
        .collect()
}

/// Sends `messages` from `from` and returns what the peer received, checking RSV1 on the wire.
fn exchange(pair: &mut Pair, from: Role, messages: &[Message], threshold: usize) -> Vec<Message> {
    for m in messages {
        pair.get(from).send(m.clone()).unwrap();
    }
    let wire = transmitted(pair.get(from));
    let frames = common::parse_frames(&wire);
    for (frame, m) in frames.iter().zip(messages) {
        let compressed = frame.header.rsv == 0b100;
        assert_eq!(
            compressed,
            m.as_bytes().len() >= threshold,
            "RSV1 by the threshold"
        );
    }
    let to = pair.get(peer(from));
    to.receive(&wire);
    poll_all(to)
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

for_both_roles! {
    fn messages_round_trip_compressed_with_context_takeover(role) {
        let mut pair = compressed_pair(params(true, 15, 15), 16);
        let sent: Vec<Message> = (0..20).map(|i| Message::Text(text(50 + i * 10, i).into())).collect();
        assert_eq!(exchange(&mut pair, role, &sent, 16), sent);
    }

    fn messages_round_trip_without_context_takeover_and_small_windows(role) {
        for bits in [8u8, 9, 12] {
            let mut pair = compressed_pair(params(false, bits, bits), 16);
            let sent: Vec<Message> = (0..10)
                .map(|i| Message::Binary(text(400, i).into_bytes().into()))
                .collect();
            assert_eq!(exchange(&mut pair, role, &sent, 16), sent, "{bits} bits");
        }
    }

    fn uncompressed_message_below_threshold_does_not_desynchronise_the_windows(role) {
        // With context takeover, the third message refers back into the first. Had either side
        // fed the small uncompressed message into its window, the distances would be off.
        let mut pair = compressed_pair(params(true, 15, 15), 64);
        let big = text(300, 1);
        let sent = vec![
            Message::Text(big.clone().into()),
            Message::Text("tiny, sent as is".into()),
            Message::Text(big.into()),
            Message::Text("another tiny one".into()),
            Message::Text(text(300, 2).into()),
        ];
        assert_eq!(exchange(&mut pair, role, &sent, 64), sent);
    }

    fn fragmented_compressed_message_inflates_across_frames(role) {
        let mut sender = compressed_pair(params(true, 15, 15), 1);
        let original = text(2000, 3);
        sender.get(peer(role)).send_text(original.clone()).unwrap();
        let wire = transmitted(sender.get(peer(role)));
        let frame = common::parse_frames(&wire).remove(0);
        assert_eq!(frame.header.rsv, 0b100);
        // Cut the compressed payload into three frames: RSV1 on the first only (§6.1).
        let p = &frame.payload;
        let (a, rest) = p.split_at(p.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let mut input = frame_to(role, 0x41, a);
        input.extend(frame_to(role, 0x89, b"ping between"));
        input.extend(frame_to(role, 0x00, b));
        input.extend(frame_to(role, 0x80, c));
        let mut receiver = compressed_pair(params(true, 15, 15), 1);
        let conn = receiver.get(role);
        conn.receive(&input);
        let events = poll_all(conn);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1], Event::Message(Message::Text(original.into())));
    }

    fn rsv1_on_a_continuation_frame_fails_with_1002(role) {
        let mut pair = compressed_pair(params(true, 15, 15), 1);
        let mut input = frame_to(role, 0x01, b"start");
        input.extend(frame_to(role, 0xc0, b"more"));
        let conn = pair.get(role);
        conn.receive(&input);
        let events = poll_all(conn);
        assert_eq!(common::closed(&events).error, Some(ProtocolError::ReservedBits));
    }

    fn rsv1_on_a_control_frame_fails_with_1002(role) {
        let mut pair = compressed_pair(params(true, 15, 15), 1);
        let conn = pair.get(role);
        conn.receive(&frame_to(role, 0xc9, b"ping"));
        let events = poll_all(conn);
        assert_eq!(common::closed(&events).error, Some(ProtocolError::ReservedBits));
    }

    fn rsv1_without_negotiation_fails_with_1002(role) {
        let events = common::assert_fails(
            role,
            Config::default(),
            &frame_to(role, 0xc1, b"\xf2\x48\xcd\xc9\xc9\x07\x00"),
            ProtocolError::ReservedBits,
        );
        assert!(events.is_empty());
    }

    fn corrupt_compressed_data_fails_with_1007(role) {
        let mut pair = compressed_pair(params(true, 15, 15), 1);
        let conn = pair.get(role);
        conn.receive(&frame_to(role, 0xc1, &[0xff; 16]));
        let events = poll_all(conn);
        let closed = common::closed(&events);
        assert_eq!(closed.error, Some(ProtocolError::InvalidCompressedData));
        assert_eq!(closed.sent.as_ref().unwrap().code.as_u16(), 1007);
    }

    fn compressed_text_that_is_not_utf8_fails_with_1007(role) {
        let mut sender = compressed_pair(params(true, 15, 15), 1);
        sender.get(peer(role)).send_binary(vec![b'a', 0xff, 0xfe, b'b']).unwrap();
        let wire = transmitted(sender.get(peer(role)));
        let frame = common::parse_frames(&wire).remove(0);
        let mut receiver = compressed_pair(params(true, 15, 15), 1);
        let conn = receiver.get(role);
        conn.receive(&frame_to(role, 0xc1, &frame.payload));
        let events = poll_all(conn);
        assert_eq!(common::closed(&events).error, Some(ProtocolError::InvalidUtf8));
    }
}

mod broadcast {
    //! One compressed payload shared by every recipient that allows it.
    use super::*;
    use herald_proto::PreparedMessage;

    #[test]
    fn prepared_message_is_compressed_once_and_shared_without_context_takeover() {
        let config = settings(16);
        let prepared = PreparedMessage::new(Message::Text(text(500, 4).into()), Some(&config));
        let mut wires = Vec::new();
        for _ in 0..3 {
            let mut pair = compressed_pair(params(false, 15, 15), 16);
            pair.server.send_prepared(&prepared).unwrap();
            let wire = transmitted(&mut pair.server);
            pair.client.receive(&wire);
            assert_eq!(
                poll_all(&mut pair.client),
                [Event::Message(Message::Text(text(500, 4).into()))]
            );
            wires.push(wire);
        }
        assert!(wires.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(common::parse_frames(&wires[0])[0].header.rsv, 0b100);
    }

    #[test]
    fn prepared_message_to_a_context_takeover_peer_is_compressed_for_it() {
        let config = settings(16);
        let prepared = PreparedMessage::new(Message::Text(text(500, 5).into()), Some(&config));
        let mut pair = compressed_pair(params(true, 15, 15), 16);
        for _ in 0..3 {
            pair.server.send_prepared(&prepared).unwrap();
        }
        let wire = transmitted(&mut pair.server);
        pair.client.receive(&wire);
        let expected = Event::Message(Message::Text(text(500, 5).into()));
        assert_eq!(
            poll_all(&mut pair.client),
            [expected.clone(), expected.clone(), expected]
        );
    }
}
