//! RFC 6455 §5.2 and §5.4: a stream of frames means the same in any split, down to one byte
//! at a time ("an intermediary might coalesce and/or split frames" — the transport does too).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::Bytes;
use common::{endpoint, frame_to, poll_all, transmitted};
use herald_proto::{Config, Event, Message, Role};

/// Text, a fragmented text with multi-byte code points split across fragments, a ping between
/// fragments, a 16-bit-length binary, an empty binary, a pong, and a Close.
fn stream_to(role: Role) -> Vec<u8> {
    let snowman = "☃ and 𝄞".as_bytes();
    let binary: Vec<u8> = (0..300).map(|i| (i * 7) as u8).collect();
    [
        frame_to(role, 0x81, b"Hello"),
        frame_to(role, 0x01, &snowman[..2]),
        frame_to(role, 0x89, b"keepalive"),
        frame_to(role, 0x00, &snowman[2..9]),
        frame_to(role, 0x80, &snowman[9..]),
        frame_to(role, 0x82, &binary),
        frame_to(role, 0x82, b""),
        frame_to(role, 0x8a, b""),
        frame_to(role, 0x88, b"\x03\xe8done"),
    ]
    .concat()
}

/// What the endpoint reports and sends for `pieces` of input, polling after each piece.
fn run(role: Role, pieces: &[&[u8]]) -> (Vec<Event>, Vec<u8>) {
    let mut conn = endpoint(role, Config::default());
    let mut events = Vec::new();
    for piece in pieces {
        conn.receive(piece);
        events.extend(poll_all(&mut conn));
    }
    (events, transmitted(&mut conn))
}

for_both_roles! {
    fn whole_stream_yields_every_message_and_control_frame(role) {
        let (events, _) = run(role, &[&stream_to(role)]);
        assert_eq!(events.len(), 7, "{events:?}");
        assert_eq!(events[0], Event::Message(Message::Text("Hello".into())));
        assert_eq!(events[1], Event::Ping(Bytes::from_static(b"keepalive")));
        assert_eq!(events[2], Event::Message(Message::Text("☃ and 𝄞".into())));
        assert!(matches!(&events[3], Event::Message(Message::Binary(b)) if b.len() == 300));
        assert_eq!(events[4], Event::Message(Message::Binary(Bytes::new())));
        assert_eq!(events[5], Event::Pong(Bytes::new()));
        let closed = common::closed(&events);
        assert_eq!((closed.code().as_u16(), closed.reason()), (1000, "done"));
        assert!(closed.is_clean());
    }

    fn stream_fed_one_byte_at_a_time_yields_the_same_events_and_output(role) {
        let stream = stream_to(role);
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(role, &pieces), run(role, &[&stream]));
    }

    fn stream_split_at_every_point_yields_the_same_events_and_output(role) {
        let stream = stream_to(role);
        let whole = run(role, &[&stream]);
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(run(role, &[a, b]), whole, "split at {at}");
        }
    }

    fn stream_split_at_every_pair_of_points_near_frame_boundaries_yields_the_same_events(role) {
        let stream = stream_to(role);
        let whole = run(role, &[&stream]);
        // The first 60 bytes hold five headers and the split code points.
        for i in 0..60 {
            for j in i..60 {
                let pieces = [&stream[..i], &stream[i..j], &stream[j..]];
                assert_eq!(run(role, &pieces), whole, "split at {i} and {j}");
            }
        }
    }

    fn stream_appended_to_the_read_buffer_directly_yields_the_same_events(role) {
        let stream = stream_to(role);
        let mut conn = endpoint(role, Config::default());
        let mut events = Vec::new();
        for chunk in stream.chunks(7) {
            conn.read_buffer().extend_from_slice(chunk);
            events.extend(poll_all(&mut conn));
        }
        assert_eq!(events, run(role, &[&stream]).0);
    }

    fn read_hint_never_asks_past_the_frame_in_progress(role) {
        let frame = frame_to(role, 0x82, &[1u8; 1000]);
        let mut conn = endpoint(role, Config::default());
        let mut fed = 0;
        while fed < frame.len() {
            let hint = conn.read_hint();
            assert!(hint >= 1);
            assert!(fed + hint <= frame.len().max(fed + 14), "hint {hint} at {fed}");
            let n = hint.min(frame.len() - fed);
            conn.receive(&frame[fed..fed + n]);
            fed += n;
            let events = poll_all(&mut conn);
            assert_eq!(events.is_empty(), fed < frame.len(), "at {fed}");
        }
    }
}
