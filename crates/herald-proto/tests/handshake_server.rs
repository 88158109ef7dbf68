//! RFC 6455 §4.2: the server reads the client's opening handshake from any split of its bytes,
//! refuses what §4.2.1 forbids with the right HTTP status, and writes the §4.2.2 response.
#![allow(clippy::unwrap_used)]

use herald_proto::handshake::{HandshakeLimits, Request, RequestReader, Response};
use herald_proto::{Config, Connection, Event, Message};
use http::header;

/// The headers of a valid request, in order; tests replace or drop some.
const HEADERS: [(&str, &str); 9] = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Origin", "http://example.com"),
    ("Sec-WebSocket-Protocol", "chat, superchat"),
    (
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits, x-custom",
    ),
    ("Cookie", "session=abc; theme=dark"),
    ("Sec-WebSocket-Version", "13"),
];

fn request_with(start: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("{start}\r\n");
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += "\r\n";
    out.into_bytes()
}

fn valid_request() -> Vec<u8> {
    request_with("GET /chat?room=lobby&x=1 HTTP/1.1", &HEADERS)
}

/// The valid request with header `name` set to `value`, or dropped when `value` is `None`.
fn changed(name: &str, value: Option<&str>) -> Vec<u8> {
    let headers: Vec<(&str, &str)> = HEADERS
        .iter()
        .filter_map(|&(n, v)| {
            if n == name {
                value.map(|v| (n, v))
            } else {
                Some((n, v))
            }
        })
        .collect();
    request_with("GET /chat HTTP/1.1", &headers)
}

/// The valid request plus another header line.
fn added(name: &str, value: &str) -> Vec<u8> {
    let mut headers = HEADERS.to_vec();
    headers.insert(1, (name, value));
    request_with("GET /chat HTTP/1.1", &headers)
}

fn read(bytes: &[u8]) -> Result<Option<Request>, Response> {
    let mut reader = RequestReader::default();
    reader.receive(bytes);
    reader.poll_request()
}

fn accepted(bytes: &[u8]) -> Request {
    read(bytes).unwrap().expect("a complete request")
}

fn refused(bytes: &[u8], status: u16) -> Response {
    let response = read(bytes).expect_err("a refusal");
    assert_eq!(response.status.as_u16(), status, "{response:?}");
    response
}

mod reading {
    //! Any split of the request's bytes, and the limits on its head.
    use super::*;

    #[test]
    fn valid_request_is_read_from_every_split_of_its_bytes() {
        let bytes = valid_request();
        for at in 0..bytes.len() {
            let mut reader = RequestReader::default();
            reader.receive(&bytes[..at]);
            assert!(reader.poll_request().unwrap().is_none(), "complete at {at}");
            reader.receive(&bytes[at..]);
            assert_eq!(reader.poll_request().unwrap().unwrap().path(), "/chat");
        }
    }

    #[test]
    fn valid_request_is_read_one_byte_at_a_time() {
        let bytes = valid_request();
        let mut reader = RequestReader::default();
        for (i, byte) in bytes.iter().enumerate() {
            reader.read_buffer().extend_from_slice(&[*byte]);
            let polled = reader.poll_request().unwrap();
            assert_eq!(polled.is_some(), i == bytes.len() - 1);
        }
    }

    #[test]
    fn frames_pipelined_after_the_head_are_returned_by_into_remaining() {
        let frame = [0x81, 0x82, 0, 0, 0, 0, b'h', b'i'];
        let mut reader = RequestReader::default();
        reader.receive(&[valid_request(), frame.to_vec()].concat());
        reader.poll_request().unwrap().unwrap();
        let remaining = reader.into_remaining();
        assert_eq!(remaining[..], frame);
        let mut server = Connection::server(Config::default());
        server.receive(&remaining);
        assert_eq!(
            server.poll_event(),
            Some(Event::Message(Message::Text("hi".into())))
        );
    }

    #[test]
    fn nothing_remains_after_a_head_alone() {
        let mut reader = RequestReader::default();
        reader.receive(&valid_request());
        reader.poll_request().unwrap().unwrap();
        assert!(reader.into_remaining().is_empty());
    }

    #[test]
    fn request_with_too_many_headers_is_refused_with_431() {
        let many: Vec<(String, &str)> = (0..65).map(|i| (format!("X-Filler-{i}"), "1")).collect();
        let mut headers: Vec<(&str, &str)> = HEADERS.to_vec();
        headers.extend(many.iter().map(|(n, v)| (n.as_str(), *v)));
        refused(&request_with("GET / HTTP/1.1", &headers), 431);
    }

    #[test]
    fn head_growing_past_max_head_size_is_refused_with_431_before_it_ends() {
        let long = "a".repeat(17 << 10);
        let mut bytes = request_with("GET / HTTP/1.1", &[("Host", "h"), ("X-Long", &long)]);
        bytes.truncate(bytes.len() - 4);
        refused(&bytes, 431);
    }

    #[test]
    fn complete_head_over_a_configured_max_head_size_is_refused_with_431() {
        let mut limits = HandshakeLimits::default();
        limits.max_head_size = 200;
        let mut reader = RequestReader::new(limits);
        reader.receive(&valid_request());
        assert_eq!(reader.poll_request().unwrap_err().status.as_u16(), 431);
    }

    #[test]
    fn bytes_that_are_not_http_are_refused_with_400() {
        refused(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400);
        refused(b"GET /\x01 HTTP/1.1\r\n\r\n", 400);
    }
}

mod validation {
    //! RFC 6455 §4.2.1: what a client's handshake MUST hold, and §4.2.2's refusals.
    use super::*;

    #[test]
    fn post_is_refused_with_405_and_allow_get() {
        let response = refused(&request_with("POST /chat HTTP/1.1", &HEADERS), 405);
        assert_eq!(response.headers.get(header::ALLOW).unwrap(), "GET");
    }

    #[test]
    fn http_1_0_is_refused_with_400() {
        refused(&request_with("GET /chat HTTP/1.0", &HEADERS), 400);
    }

    #[test]
    fn missing_host_is_refused_with_400() {
        refused(&changed("Host", None), 400);
    }

    #[test]
    fn duplicate_host_is_refused_with_400() {
        refused(&added("Host", "other.example.com"), 400);
    }

    #[test]
    fn key_decoding_to_15_bytes_is_refused_with_400() {
        refused(
            &changed("Sec-WebSocket-Key", Some("AAAAAAAAAAAAAAAAAAAA")),
            400,
        );
    }

    #[test]
    fn key_decoding_to_17_bytes_is_refused_with_400() {
        refused(
            &changed("Sec-WebSocket-Key", Some("AAAAAAAAAAAAAAAAAAAAAAA=")),
            400,
        );
    }

    #[test]
    fn key_that_is_not_base64_is_refused_with_400() {
        refused(
            &changed("Sec-WebSocket-Key", Some("not*base64*at*all*here==")),
            400,
        );
    }

    #[test]
    fn missing_key_is_refused_with_400() {
        refused(&changed("Sec-WebSocket-Key", None), 400);
    }

    #[test]
    fn duplicate_keys_are_refused_with_400() {
        refused(&added("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="), 400);
    }

    #[test]
    fn version_8_is_refused_with_426_naming_version_13() {
        let response = refused(&changed("Sec-WebSocket-Version", Some("8")), 426);
        assert_eq!(
            response.headers.get(header::SEC_WEBSOCKET_VERSION).unwrap(),
            "13"
        );
    }

    #[test]
    fn missing_version_is_refused_with_426_naming_version_13() {
        let response = refused(&changed("Sec-WebSocket-Version", None), 426);
        assert_eq!(
            response.headers.get(header::SEC_WEBSOCKET_VERSION).unwrap(),
            "13"
        );
    }

    #[test]
    fn missing_upgrade_is_refused_with_426() {
        let response = refused(&changed("Upgrade", None), 426);
        assert_eq!(response.headers.get(header::UPGRADE).unwrap(), "websocket");
    }

    #[test]
    fn upgrade_to_another_protocol_is_refused_with_426() {
        refused(&changed("Upgrade", Some("h2c")), 426);
    }

    #[test]
    fn missing_connection_upgrade_token_is_refused_with_426() {
        refused(&changed("Connection", None), 426);
        refused(&changed("Connection", Some("keep-alive")), 426);
        refused(&changed("Connection", Some("upgrader")), 426);
    }

    #[test]
    fn connection_token_list_and_upgrade_are_matched_without_case() {
        let mut bytes = changed("Connection", Some("keep-alive, Upgrade"));
        accepted(&bytes);
        bytes = changed("Upgrade", Some("WebSocket"));
        accepted(&bytes);
        bytes = changed("Connection", Some("KEEP-ALIVE,upgrade"));
        accepted(&bytes);
    }

    #[test]
    fn connection_tokens_spread_over_two_headers_are_accepted() {
        let mut bytes = changed("Connection", Some("keep-alive"));
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(b"connection: upgrade\r\n\r\n");
        accepted(&bytes);
    }

    #[test]
    fn refusal_is_written_with_status_line_length_and_connection_close() {
        let response = refused(&request_with("PUT /chat HTTP/1.1", &HEADERS), 405);
        let expected = "HTTP/1.1 405 Method Not Allowed\r\n\
            content-type: text/plain; charset=utf-8\r\n\
            allow: GET\r\n\
            Content-Length: 21\r\n\
            Connection: close\r\n\
            \r\n\
            only GET can upgrade\n";
        assert_eq!(std::str::from_utf8(&response.encode()).unwrap(), expected);
    }
}

mod already_parsed {
    //! The same §4.2.1 checks on a request an HTTP server parsed (an upgrade route).
    use super::*;
    use http::{HeaderMap, HeaderValue, Method, Uri, Version};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    const VALID: [(&str, &str); 5] = [
        ("host", "h"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    #[test]
    fn valid_parsed_request_is_accepted() {
        let uri: Uri = "/chat?x=1".parse().unwrap();
        let request = Request::from_http(&Method::GET, Version::HTTP_11, uri, headers(&VALID));
        assert_eq!(request.unwrap().query(), Some("x=1"));
    }

    #[test]
    fn parsed_post_or_http_2_is_refused() {
        let uri = || Uri::from_static("/");
        let post = Request::from_http(&Method::POST, Version::HTTP_11, uri(), headers(&VALID));
        assert_eq!(post.unwrap_err().status.as_u16(), 405);
        let h2 = Request::from_http(&Method::GET, Version::HTTP_2, uri(), headers(&VALID));
        assert_eq!(h2.unwrap_err().status.as_u16(), 400);
    }
}
