//! Round trips: whatever one role sends, in any mix of text (any Unicode), binary, fragmented
//! messages and pings, the other role reports exactly, whatever the split of the bytes between
//! them (RFC 6455 §5.2–§5.5); Pongs come back for every Ping, and a Close ends both cleanly.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use bytes::Bytes;
use common::{Pair, closed, peer, poll_all, take_transmit};
use herald_proto::{CloseCode, Connection, Event, Message, Opcode, Role};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

#[derive(Clone, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// A message sent with `send_frame`, cut into fragments at the given points (code points of
    /// text may be cut in two).
    Fragmented {
        text: bool,
        data: Vec<u8>,
        cuts: Vec<Index>,
    },
}

fn unicode(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn binary() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (65_530usize..65_540).prop_map(|n| vec![n as u8; n]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        unicode(40).prop_map(Op::Text),
        binary().prop_map(Op::Binary),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
        (unicode(40), prop::collection::vec(any::<Index>(), 0..4)).prop_map(|(s, cuts)| {
            Op::Fragmented {
                text: true,
                data: s.into_bytes(),
                cuts,
            }
        }),
        (binary(), prop::collection::vec(any::<Index>(), 0..4)).prop_map(|(data, cuts)| {
            Op::Fragmented {
                text: false,
                data,
                cuts,
            }
        }),
    ]
}

/// Sends `op` from `conn`; returns the event the peer must report.
fn send(conn: &mut Connection, op: &Op) -> Event {
    match op {
        Op::Text(s) => {
            conn.send_text(s.as_str()).unwrap();
            Event::Message(Message::Text(s.as_str().into()))
        }
        Op::Binary(data) => {
            conn.send_binary(data.clone()).unwrap();
            Event::Message(Message::Binary(data.clone().into()))
        }
        Op::Ping(data) => {
            conn.ping(data.clone()).unwrap();
            Event::Ping(data.clone().into())
        }
        Op::Fragmented { text, data, cuts } => send_fragments(conn, *text, data, cuts),
    }
}

fn send_fragments(conn: &mut Connection, text: bool, data: &[u8], cuts: &[Index]) -> Event {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    points.push(data.len());
    points.sort_unstable();
    let (mut opcode, mut start) = (if text { Opcode::Text } else { Opcode::Binary }, 0);
    for (i, &end) in points.iter().enumerate() {
        let fin = i == points.len() - 1;
        conn.send_frame(opcode, fin, Bytes::copy_from_slice(&data[start..end]))
            .unwrap();
        (opcode, start) = (Opcode::Continuation, end);
    }
    if text {
        let s = String::from_utf8(data.to_vec()).unwrap();
        Event::Message(Message::Text(s.into()))
    } else {
        Event::Message(Message::Binary(data.to_vec().into()))
    }
}

/// Moves every byte `from` queued to its peer, cut at `cuts`, polling after each piece.
fn deliver_in_pieces(pair: &mut Pair, from: Role, cuts: &[Index]) {
    let total = pair.get(from).transmit_len();
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(total + 1)).collect();
    points.push(total);
    points.sort_unstable();
    let mut moved = 0;
    for point in points {
        while moved < point {
            moved += pair.deliver_some(from, point - moved);
        }
    }
    assert_eq!(moved, total);
}

fn round_trip(sender: Role, ops: &[Op], cuts: &[Index], close: Option<(u16, String)>) {
    let mut pair = Pair::new();
    let expected: Vec<Event> = ops.iter().map(|op| send(pair.get(sender), op)).collect();
    if let Some((code, reason)) = &close {
        pair.get(sender)
            .close(CloseCode::from(*code), reason)
            .unwrap();
    }
    deliver_in_pieces(&mut pair, sender, cuts);
    let mut received = pair.take_events(peer(sender));
    if let Some((code, reason)) = &close {
        let closed = closed(&received).clone();
        assert_eq!(
            (closed.code().as_u16(), closed.reason()),
            (*code, reason.as_str())
        );
        assert!(closed.is_clean());
        received.pop();
    }
    assert_eq!(received, expected);

    // Every Ping comes back as a Pong with its payload, in order, through any split too.
    deliver_in_pieces(&mut pair, peer(sender), cuts);
    let mut returned = pair.take_events(sender);
    if close.is_some() {
        assert!(closed(&returned).is_clean());
        returned.pop();
        assert!(pair.get(sender).is_closed() && pair.get(peer(sender)).is_closed());
    }
    let pings: Vec<Event> = expected
        .iter()
        .filter_map(|e| match e {
            Event::Ping(p) => Some(Event::Pong(p.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(returned, pings);
    assert_eq!(poll_all(pair.get(sender)), []);
    assert_eq!(take_transmit(pair.get(sender), usize::MAX), []);
}

fn close_frame() -> impl Strategy<Value = (u16, String)> {
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999];
    let reason = unicode(40).prop_map(|mut s| {
        while s.len() > 123 {
            s.pop();
        }
        s
    });
    (code, reason)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn client_messages_arrive_at_the_server_in_any_split(
        ops in prop::collection::vec(op(), 0..8),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        round_trip(Role::Client, &ops, &cuts, None);
    }

    #[test]
    fn server_messages_arrive_at_the_client_in_any_split(
        ops in prop::collection::vec(op(), 0..8),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        round_trip(Role::Server, &ops, &cuts, None);
    }

    #[test]
    fn messages_then_close_end_both_sides_cleanly(
        sender in prop_oneof![Just(Role::Client), Just(Role::Server)],
        ops in prop::collection::vec(op(), 0..6),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
        close in close_frame(),
    ) {
        round_trip(sender, &ops, &cuts, Some(close));
    }

    #[test]
    fn any_bytes_in_any_split_give_the_same_events(
        role in prop_oneof![Just(Role::Client), Just(Role::Server)],
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let whole = {
            let mut conn = common::endpoint(role, Default::default());
            conn.receive(&bytes);
            poll_all(&mut conn)
        };
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.push(bytes.len());
        points.sort_unstable();
        let mut conn = common::endpoint(role, Default::default());
        let (mut events, mut start) = (Vec::new(), 0);
        for end in points {
            conn.receive(&bytes[start..end]);
            events.extend(poll_all(&mut conn));
            start = end;
        }
        prop_assert_eq!(events, whole);
    }
}
