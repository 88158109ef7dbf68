//! RFC 6455 §4.1: the client's opening handshake, byte-exact for a seeded key, and the checks
//! it makes on the server's response, from any split of its bytes.
#![allow(clippy::unwrap_used)]

use herald_proto::handshake::{Accepted, ClientHandshake, ClientRequest, HandshakeLimits};
use herald_proto::{Config, Connection, Event, HandshakeError, Message, SeededEntropy};
use http::{HeaderValue, header};

/// The key `SeededEntropy::new(1)` yields, and its accept value (computed independently).
const KEY_1: &str = "wVwCiewtCpFn7I5loY3rvg==";
const ACCEPT_1: &str = "N5nKR3YXrMAhPTm+l7izTUefAAo=";

fn start(request: &ClientRequest) -> (ClientHandshake, String) {
    let (handshake, bytes) = ClientHandshake::new(request, &mut SeededEntropy::new(1));
    (handshake, String::from_utf8(bytes.to_vec()).unwrap())
}

fn offering(protocols: &[&str], extensions: &[&str]) -> ClientHandshake {
    let mut request = ClientRequest::new("ws://example.com/").unwrap();
    for p in protocols {
        request = request.subprotocol(*p);
    }
    for e in extensions {
        request = request.extension(*e);
    }
    start(&request).0
}

/// A 101 response with the right accept value and `extra` header lines.
fn switching(extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT_1}\r\n{extra}\r\n"
    )
}

fn respond(
    mut handshake: ClientHandshake,
    response: &str,
) -> Result<Option<Accepted>, HandshakeError> {
    handshake.receive(response.as_bytes());
    handshake.poll_response()
}

fn invalid(response: &str) -> &'static str {
    match respond(offering(&["chat"], &["x-known"]), response) {
        Err(HandshakeError::InvalidResponse(why)) => why,
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

mod request {
    //! §4.1: the request the client writes.
    use super::*;

    #[test]
    fn request_is_byte_exact_for_a_seeded_key() {
        let request = ClientRequest::new("ws://chat.example.com:8080/room/1?token=abc")
            .unwrap()
            .origin("https://example.com")
            .subprotocol("chat")
            .subprotocol("superchat")
            .extension("permessage-deflate; client_max_window_bits")
            .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"))
            .header(header::COOKIE, HeaderValue::from_static("a=1"));
        let expected = format!(
            "GET /room/1?token=abc HTTP/1.1\r\n\
             Host: chat.example.com:8080\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY_1}\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Origin: https://example.com\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
             authorization: Bearer t\r\n\
             cookie: a=1\r\n\
             \r\n"
        );
        assert_eq!(start(&request).1, expected);
    }

    #[test]
    fn url_without_a_path_requests_the_root() {
        let (_, bytes) = start(&ClientRequest::new("ws://example.com").unwrap());
        assert!(
            bytes.starts_with("GET / HTTP/1.1\r\nHost: example.com\r\n"),
            "{bytes}"
        );
    }

    /// RFC 6455 §3: the resource name is "/" when the path is empty, then "?" and the query.
    #[test]
    fn url_with_a_query_and_no_path_requests_the_root_with_the_query() {
        for url in [
            "ws://example.com?x=1",
            "wss://example.com:443?x=1",
            "ws://example.com/?x=1",
        ] {
            let (_, bytes) = start(&ClientRequest::new(url).unwrap());
            assert!(
                bytes.starts_with("GET /?x=1 HTTP/1.1\r\n"),
                "{url}: {bytes}"
            );
        }
    }

    #[test]
    fn default_ports_are_left_out_of_host() {
        for (url, host) in [
            ("ws://example.com:80/", "example.com"),
            ("wss://example.com:443/", "example.com"),
            ("wss://example.com:80/", "example.com:80"),
            ("ws://example.com:443/", "example.com:443"),
            ("ws://[::1]:9001/", "[::1]:9001"),
            ("ws://[::1]/", "[::1]"),
        ] {
            let (_, bytes) = start(&ClientRequest::new(url).unwrap());
            assert!(
                bytes.contains(&format!("\r\nHost: {host}\r\n")),
                "{url}: {bytes}"
            );
        }
    }

    #[test]
    fn url_gives_transport_host_and_port() {
        let request = ClientRequest::new("wss://[2001:db8::1]/x").unwrap();
        assert!(request.is_tls());
        assert_eq!((request.host(), request.port()), ("2001:db8::1", 443));
        let request = ClientRequest::new("ws://localhost:9001").unwrap();
        assert!(!request.is_tls());
        assert_eq!((request.host(), request.port()), ("localhost", 9001));
    }

    #[test]
    fn urls_that_are_not_websocket_urls_are_refused() {
        for url in [
            "http://example.com/",
            "ws://",
            "ws://example.com/#top",
            "example.com",
            "",
        ] {
            let err = ClientRequest::new(url).unwrap_err();
            assert!(
                matches!(err, HandshakeError::InvalidUrl(_)),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn every_handshake_draws_a_fresh_key() {
        let request = ClientRequest::new("ws://example.com/").unwrap();
        let mut entropy = SeededEntropy::new(1);
        let (_, first) = ClientHandshake::new(&request, &mut entropy);
        let (_, second) = ClientHandshake::new(&request, &mut entropy);
        assert_ne!(first, second);
    }
}

mod response {
    //! §4.1, the client's checks of a 101 response (items 1–6 after "the client MUST").
    use super::*;

    #[test]
    fn valid_101_is_accepted() {
        let accepted = respond(offering(&[], &[]), &switching(""))
            .unwrap()
            .unwrap();
        assert_eq!((accepted.subprotocol, accepted.extensions), (None, vec![]));
        assert_eq!(
            accepted.headers.get(header::SEC_WEBSOCKET_ACCEPT).unwrap(),
            ACCEPT_1
        );
    }

    #[test]
    fn valid_101_with_offered_subprotocol_and_extension_is_accepted() {
        let response =
            switching("Sec-WebSocket-Protocol: v1\r\nSec-WebSocket-Extensions: x-b; p=1\r\n");
        let accepted = respond(offering(&["v2", "v1"], &["x-a", "x-b; p"]), &response).unwrap();
        let accepted = accepted.unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("v1"));
        assert_eq!(accepted.extensions.len(), 1);
        assert_eq!(accepted.extensions[0].name, "x-b");
    }

    #[test]
    fn upgrade_and_connection_tokens_are_matched_without_case() {
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
             sec-websocket-accept: {ACCEPT_1}\r\n\r\n"
        );
        assert!(respond(offering(&[], &[]), &response).unwrap().is_some());
    }

    #[test]
    fn response_split_at_every_byte_is_accepted_once_complete() {
        let response = switching("Sec-WebSocket-Protocol: chat\r\n");
        for at in 0..response.len() {
            let mut handshake = offering(&["chat"], &[]);
            handshake.receive(&response.as_bytes()[..at]);
            assert!(
                handshake.poll_response().unwrap().is_none(),
                "complete at {at}"
            );
            handshake.receive(&response.as_bytes()[at..]);
            assert!(
                handshake.poll_response().unwrap().is_some(),
                "split at {at}"
            );
        }
    }

    #[test]
    fn wrong_accept_value_is_refused() {
        let response = switching("").replace(ACCEPT_1, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(invalid(&response), "wrong Sec-WebSocket-Accept");
    }

    #[test]
    fn missing_accept_value_is_refused() {
        let response = switching("").replace(&format!("Sec-WebSocket-Accept: {ACCEPT_1}\r\n"), "");
        assert_eq!(invalid(&response), "wrong Sec-WebSocket-Accept");
    }

    #[test]
    fn missing_upgrade_is_refused() {
        assert_eq!(
            invalid(&switching("").replace("Upgrade: websocket\r\n", "")),
            "missing Upgrade: websocket"
        );
    }

    #[test]
    fn missing_connection_upgrade_is_refused() {
        let response = switching("").replace("Connection: Upgrade", "Connection: keep-alive");
        assert_eq!(invalid(&response), "missing Connection: Upgrade");
    }

    #[test]
    fn subprotocol_that_was_not_offered_is_refused() {
        let response = switching("Sec-WebSocket-Protocol: superchat\r\n");
        assert_eq!(invalid(&response), "subprotocol was not offered");
    }

    #[test]
    fn subprotocol_when_none_was_offered_is_refused() {
        let response = switching("Sec-WebSocket-Protocol: chat\r\n");
        let err = respond(offering(&[], &[]), &response).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::InvalidResponse("subprotocol was not offered")
        );
    }

    #[test]
    fn two_subprotocols_are_refused() {
        let response = switching("Sec-WebSocket-Protocol: chat, chat\r\n");
        assert_eq!(invalid(&response), "subprotocol was not offered");
    }

    #[test]
    fn extension_that_was_not_offered_is_refused() {
        let response = switching("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(invalid(&response), "extension was not offered");
    }

    #[test]
    fn extension_answer_that_breaks_the_grammar_is_refused() {
        let response = switching("Sec-WebSocket-Extensions: x-known; =\r\n");
        assert_eq!(invalid(&response), "extension was not offered");
    }

    #[test]
    fn frames_pipelined_after_the_101_are_returned_by_into_remaining() {
        let frames = [0x81, 0x02, b'h', b'i', 0x89, 0x00];
        let mut handshake = offering(&[], &[]);
        handshake.receive(&[switching("").as_bytes(), &frames[..]].concat());
        handshake.poll_response().unwrap().unwrap();
        let remaining = handshake.into_remaining();
        assert_eq!(remaining[..], frames);
        let mut client = Connection::client(Config::default(), Box::new(SeededEntropy::new(1)));
        client.receive(&remaining);
        assert_eq!(
            client.poll_event(),
            Some(Event::Message(Message::Text("hi".into())))
        );
        assert!(matches!(client.poll_event(), Some(Event::Ping(_))));
    }

    #[test]
    fn response_head_over_max_head_size_is_too_large() {
        let mut limits = HandshakeLimits::default();
        limits.max_head_size = 64;
        let request = ClientRequest::new("ws://example.com/").unwrap();
        let (mut handshake, _) =
            ClientHandshake::with_limits(&request, &mut SeededEntropy::new(1), limits);
        handshake.receive(switching("").as_bytes());
        assert_eq!(
            handshake.poll_response().unwrap_err(),
            HandshakeError::TooLarge
        );
    }

    #[test]
    fn response_with_more_headers_than_max_headers_is_too_large() {
        let filler: String = (0..65).map(|i| format!("X-Filler-{i}: 1\r\n")).collect();
        let err = respond(offering(&[], &[]), &switching(&filler)).unwrap_err();
        assert_eq!(err, HandshakeError::TooLarge);
    }

    #[test]
    fn response_that_is_not_http_is_malformed() {
        let err = respond(offering(&[], &[]), "SSH-2.0-OpenSSH_9.6\r\n\r\n").unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn transport_ending_before_the_head_is_incomplete() {
        let mut handshake = offering(&[], &[]);
        handshake.receive(b"HTTP/1.1 101 Switching");
        assert!(handshake.poll_response().unwrap().is_none());
        handshake.receive_eof();
        assert_eq!(
            handshake.poll_response().unwrap_err(),
            HandshakeError::Incomplete
        );
    }
}
