//! RFC 6455 §4.1: "If the status code received from the server is not 101, the client handles
//! the response per HTTP procedures": the refusal reaches the application with its status,
//! headers and body, whether the body is delimited by Content-Length or by the end of the
//! transport.
#![allow(clippy::unwrap_used)]

use herald_proto::handshake::{ClientHandshake, ClientRequest, HandshakeLimits, Response};
use herald_proto::{HandshakeError, SeededEntropy};
use http::header;

fn handshake() -> ClientHandshake {
    handshake_with(HandshakeLimits::default())
}

fn handshake_with(limits: HandshakeLimits) -> ClientHandshake {
    let request = ClientRequest::new("ws://example.com/").unwrap();
    ClientHandshake::with_limits(&request, &mut SeededEntropy::new(1), limits).0
}

fn rejected(result: Result<Option<impl std::fmt::Debug>, HandshakeError>) -> Response {
    match result {
        Err(HandshakeError::Rejected(response)) => *response,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

const FORBIDDEN: &str =
    "HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\nX-Reason: origin\r\n\r\nbad origin!\n";

#[test]
fn refusal_with_content_length_is_rejected_with_status_headers_and_body() {
    let mut hs = handshake();
    hs.receive(FORBIDDEN.as_bytes());
    let response = rejected(hs.poll_response());
    assert_eq!(response.status.as_u16(), 403);
    assert_eq!(response.headers.get("x-reason").unwrap(), "origin");
    assert_eq!(&response.body[..], b"bad origin!\n");
}

#[test]
fn refusal_waits_for_its_whole_content_length_body() {
    let mut hs = handshake();
    let (head, body) = FORBIDDEN.split_at(FORBIDDEN.len() - 12);
    hs.receive(head.as_bytes());
    assert!(hs.poll_response().unwrap().is_none());
    hs.receive(&body.as_bytes()[..5]);
    assert!(hs.poll_response().unwrap().is_none());
    hs.receive(&body.as_bytes()[5..]);
    assert_eq!(&rejected(hs.poll_response()).body[..], b"bad origin!\n");
}

#[test]
fn refusal_split_at_every_byte_gives_the_same_response() {
    let whole = {
        let mut hs = handshake();
        hs.receive(FORBIDDEN.as_bytes());
        rejected(hs.poll_response())
    };
    for at in 0..FORBIDDEN.len() {
        let mut hs = handshake();
        hs.receive(&FORBIDDEN.as_bytes()[..at]);
        assert!(hs.poll_response().unwrap().is_none(), "complete at {at}");
        hs.receive(&FORBIDDEN.as_bytes()[at..]);
        assert_eq!(rejected(hs.poll_response()), whole, "split at {at}");
    }
}

#[test]
fn refusal_body_stops_at_content_length() {
    let mut hs = handshake();
    hs.receive(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\nRetry-After: 5\r\n\r\nslowEXTRA",
    );
    let response = rejected(hs.poll_response());
    assert_eq!(response.status.as_u16(), 429);
    assert_eq!(response.headers.get(header::RETRY_AFTER).unwrap(), "5");
    assert_eq!(&response.body[..], b"slow");
}

#[test]
fn refusal_without_content_length_reads_its_body_until_eof() {
    let mut hs = handshake();
    hs.receive(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nback ");
    assert!(hs.poll_response().unwrap().is_none());
    hs.receive(b"soon");
    assert!(hs.poll_response().unwrap().is_none());
    hs.receive_eof();
    let response = rejected(hs.poll_response());
    assert_eq!(response.status.as_u16(), 503);
    assert_eq!(&response.body[..], b"back soon");
}

#[test]
fn refusal_whose_transport_ends_before_its_content_length_keeps_what_arrived() {
    let mut hs = handshake();
    hs.receive(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\npartial");
    assert!(hs.poll_response().unwrap().is_none());
    hs.receive_eof();
    assert_eq!(&rejected(hs.poll_response()).body[..], b"partial");
}

#[test]
fn refusal_with_an_empty_body_is_rejected_at_once() {
    let mut hs = handshake();
    hs.receive(
        b"HTTP/1.1 302 Found\r\nLocation: wss://elsewhere.example/\r\nContent-Length: 0\r\n\r\n",
    );
    let response = rejected(hs.poll_response());
    assert_eq!(response.status.as_u16(), 302);
    assert_eq!(
        response.headers.get(header::LOCATION).unwrap(),
        "wss://elsewhere.example/"
    );
    assert!(response.body.is_empty());
}

#[test]
fn refusal_body_is_cut_at_max_body_size() {
    let mut limits = HandshakeLimits::default();
    limits.max_body_size = 8;
    let mut hs = handshake_with(limits.clone());
    hs.receive(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 20\r\n\r\n0123456789");
    assert_eq!(&rejected(hs.poll_response()).body[..], b"01234567");

    let mut hs = handshake_with(limits);
    hs.receive(b"HTTP/1.1 500 Internal Server Error\r\n\r\n0123456789");
    assert_eq!(
        &rejected(hs.poll_response()).body[..],
        b"01234567",
        "no EOF needed at the cap"
    );
}

#[test]
fn refusal_reads_as_its_status_in_the_error_message() {
    let mut hs = handshake();
    hs.receive(FORBIDDEN.as_bytes());
    let err = hs.poll_response().unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}
