//! The pair harness: arbitrary operations on a client and a server joined by an in-memory
//! transport. Both ends conform, so neither may fail the connection; each must report exactly
//! what the other sent, in order; every command succeeds or fails as documented.

use crate::endpoint;
use crate::frames::{check_closed, check_output, poll_all};
use arbitrary::Arbitrary;
use bytes::Bytes;
use herald_proto::Role;
use herald_proto::{CloseCode, Config, Connection, Event, Initiator, Message, MisuseError, Opcode};
use std::collections::VecDeque;
use std::io::IoSlice;

/// One step; `client` picks the end that acts.
#[derive(Arbitrary, Debug)]
pub enum Op {
    SendText {
        client: bool,
        text: String,
    },
    SendBinary {
        client: bool,
        data: Vec<u8>,
    },
    /// `send_frame` with the opcode in the low nibble; the payload is text, so a text message
    /// made of such fragments is UTF-8.
    SendFrame {
        client: bool,
        opcode: u8,
        fin: bool,
        data: String,
    },
    Ping {
        client: bool,
        data: Vec<u8>,
    },
    Pong {
        client: bool,
        data: Vec<u8>,
    },
    Close {
        client: bool,
        code: u16,
        reason: String,
    },
    /// Moves at most `max` bytes (all when 0) from this end to the other.
    Deliver {
        client: bool,
        max: u16,
    },
    Eof {
        client: bool,
    },
}

/// What the peer must report next, in order.
#[derive(Debug, PartialEq)]
enum Expected {
    Message(Message),
    Ping(Bytes),
    Pong(Bytes),
    Close(CloseCode, String),
}

struct Side {
    conn: Connection,
    /// Sent to the peer and not yet reported by it.
    outgoing: VecDeque<Expected>,
    /// The message being sent in fragments: whether it is text, and its bytes so far.
    partial: Option<(bool, Vec<u8>)>,
    sent_close: bool,
    ended: bool,
    eof: bool,
    wire: Vec<u8>,
}

impl Side {
    fn new(role: Role) -> Self {
        Self {
            conn: endpoint(role, Config::default()),
            outgoing: VecDeque::new(),
            partial: None,
            sent_close: false,
            ended: false,
            eof: false,
            wire: Vec::new(),
        }
    }

    fn open(&self) -> bool {
        !self.sent_close && !self.ended
    }

    /// Checks a command's result against the documented rules; `expected` is what the
    /// command queues when it succeeds.
    fn command(
        &mut self,
        result: Result<(), MisuseError>,
        rule: Result<(), MisuseError>,
        expected: Option<Expected>,
    ) {
        assert_eq!(result, rule);
        if let (Ok(()), Some(expected)) = (result, expected) {
            self.outgoing.push_back(expected);
        }
        assert_eq!(self.conn.can_send(), self.open());
    }

    fn send_frame(&mut self, opcode: Opcode, fin: bool, data: String) {
        let result = self.conn.send_frame(opcode, fin, Bytes::from(data.clone()));
        let in_sequence = match opcode {
            Opcode::Continuation => self.partial.is_some(),
            Opcode::Text | Opcode::Binary => self.partial.is_none(),
            _ => false,
        };
        let rule = match (self.open(), in_sequence) {
            (false, _) => Err(MisuseError::Closed),
            (true, false) => Err(MisuseError::InvalidFragment),
            (true, true) => Ok(()),
        };
        assert_eq!(result, rule);
        if result.is_err() {
            return;
        }
        let (text, mut bytes) = self
            .partial
            .take()
            .unwrap_or((opcode == Opcode::Text, Vec::new()));
        bytes.extend_from_slice(data.as_bytes());
        if !fin {
            self.partial = Some((text, bytes));
            return;
        }
        let message = match text {
            true => Message::Text(String::from_utf8(bytes).expect("whole strings").into()),
            false => Message::Binary(bytes.into()),
        };
        self.outgoing.push_back(Expected::Message(message));
    }
}

/// Runs `ops`, then moves every byte both ways and checks that nothing was lost.
pub fn run(ops: Vec<Op>) {
    let mut sides = [Side::new(Role::Client), Side::new(Role::Server)];
    for op in ops {
        apply(&mut sides, op);
    }
    while deliver(&mut sides, 0, 0) + deliver(&mut sides, 1, 0) > 0 {}
    for from in 0..2 {
        let to = 1 - from;
        if !sides[to].eof {
            assert!(
                sides[from].outgoing.is_empty(),
                "lost: {:?}",
                sides[from].outgoing
            );
        }
        check_output(role_of(from), &sides[from].wire, true);
    }
}

fn role_of(index: usize) -> Role {
    if index == 0 {
        Role::Client
    } else {
        Role::Server
    }
}

fn apply(sides: &mut [Side; 2], op: Op) {
    let index = |client: bool| if client { 0 } else { 1 };
    match op {
        Op::SendText { client, text } => {
            let side = &mut sides[index(client)];
            let rule = side.rule_for_message();
            let result = side.conn.send_text(text.as_str());
            side.command(
                result,
                rule,
                Some(Expected::Message(Message::Text(text.into()))),
            );
        }
        Op::SendBinary { client, data } => {
            let side = &mut sides[index(client)];
            let rule = side.rule_for_message();
            let result = side.conn.send_binary(data.clone());
            side.command(
                result,
                rule,
                Some(Expected::Message(Message::Binary(data.into()))),
            );
        }
        Op::SendFrame {
            client,
            opcode,
            fin,
            data,
        } => {
            if let Ok(opcode) = Opcode::from_bits(opcode & 0x0f) {
                sides[index(client)].send_frame(opcode, fin, data);
            }
        }
        Op::Ping { client, data } => {
            let side = &mut sides[index(client)];
            let rule = side.rule_for_control(data.len());
            let result = side.conn.ping(data.clone());
            side.command(result, rule, Some(Expected::Ping(data.into())));
        }
        Op::Pong { client, data } => {
            let side = &mut sides[index(client)];
            let rule = side.rule_for_control(data.len());
            let result = side.conn.pong(data.clone());
            side.command(result, rule, Some(Expected::Pong(data.into())));
        }
        Op::Close {
            client,
            code,
            reason,
        } => close(&mut sides[index(client)], code, reason),
        Op::Deliver { client, max } => {
            deliver(sides, index(client), usize::from(max));
        }
        Op::Eof { client } => eof(&mut sides[index(client)]),
    }
}

impl Side {
    fn rule_for_message(&self) -> Result<(), MisuseError> {
        match (self.open(), self.partial.is_some()) {
            (false, _) => Err(MisuseError::Closed),
            (true, true) => Err(MisuseError::InvalidFragment),
            (true, false) => Ok(()),
        }
    }

    fn rule_for_control(&self, len: usize) -> Result<(), MisuseError> {
        match (self.open(), len <= 125) {
            (false, _) => Err(MisuseError::Closed),
            (true, false) => Err(MisuseError::ControlPayloadTooLong),
            (true, true) => Ok(()),
        }
    }
}

fn close(side: &mut Side, code: u16, reason: String) {
    let code = CloseCode::from(code);
    let rule = if !side.open() {
        Err(MisuseError::Closed)
    } else if !code.is_sendable() {
        Err(MisuseError::CloseCodeNotSendable(code.as_u16()))
    } else if reason.len() > 123 {
        Err(MisuseError::ControlPayloadTooLong)
    } else {
        Ok(())
    };
    let result = side.conn.close(code, &reason);
    side.sent_close |= result.is_ok();
    side.command(result, rule, Some(Expected::Close(code, reason)));
}

/// Moves at most `max` bytes (all when 0) from `sides[from]` to the other; returns how many.
fn deliver(sides: &mut [Side; 2], from: usize, max: usize) -> usize {
    let max = if max == 0 { usize::MAX } else { max };
    let bytes = take(&mut sides[from].conn, max);
    sides[from].wire.extend_from_slice(&bytes);
    let to = 1 - from;
    sides[to].conn.receive(&bytes);
    for event in poll_all(&mut sides[to].conn) {
        on_event(sides, to, event);
    }
    bytes.len()
}

fn take(conn: &mut Connection, max: usize) -> Vec<u8> {
    let mut slices = [IoSlice::new(&[]); 4];
    let n = conn.transmit_chunks(&mut slices);
    let mut out = Vec::new();
    for slice in &slices[..n] {
        let room = max - out.len();
        out.extend_from_slice(&slice[..slice.len().min(room)]);
    }
    conn.transmit_advance(out.len());
    out
}

/// Checks an event of `sides[to]` against what its peer sent.
fn on_event(sides: &mut [Side; 2], to: usize, event: Event) {
    let from = 1 - to;
    let expected = |sides: &mut [Side; 2]| sides[from].outgoing.pop_front();
    match event {
        Event::Message(message) => assert_eq!(expected(sides), Some(Expected::Message(message))),
        Event::Ping(payload) => {
            assert_eq!(expected(sides), Some(Expected::Ping(payload.clone())));
            if sides[to].open() {
                sides[to].outgoing.push_back(Expected::Pong(payload));
            }
        }
        Event::Pong(payload) => assert_eq!(expected(sides), Some(Expected::Pong(payload))),
        Event::Closed(closed) => {
            check_closed(&closed);
            assert_eq!(
                closed.error, None,
                "a conforming peer never fails the connection"
            );
            let received = closed.received.clone().expect("bytes end only in a Close");
            let reason = received.reason.as_str().to_owned();
            assert_eq!(
                expected(sides),
                Some(Expected::Close(received.code, reason))
            );
            let me = &mut sides[to];
            assert_eq!(closed.initiator == Initiator::Local, me.sent_close);
            if !me.sent_close {
                me.outgoing
                    .push_back(Expected::Close(received.code, String::new()));
                me.sent_close = true;
            }
            me.ended = true;
            assert!(closed.is_clean());
        }
    }
}

fn eof(side: &mut Side) {
    side.conn.receive_eof();
    let events = poll_all(&mut side.conn);
    if side.ended {
        assert!(events.is_empty());
    } else {
        assert_eq!(events.len(), 1, "{events:?}");
        let Event::Closed(closed) = &events[0] else {
            panic!("{events:?}")
        };
        check_closed(closed);
        assert_eq!(closed.code(), CloseCode::ABNORMAL);
        assert_eq!(closed.initiator == Initiator::Local, side.sent_close);
    }
    side.ended = true;
    side.eof = true;
}
