//! RFC 6455 §4.2.2 and §1.3: what the server learns from a valid request, and the response
//! with which it accepts or refuses it.
#![allow(clippy::unwrap_used)]

use herald_proto::handshake::{
    Accept, ClientHandshake, ClientRequest, ExtensionOffer, Request, RequestReader, Response,
};
use herald_proto::{MisuseError, SeededEntropy};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The example handshake of RFC 6455 §1.3, with the optional headers of §4.1.
const RFC_REQUEST: &str = "GET /chat?room=lobby HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-custom; a=\"1\"\r\n\
    Cookie: session=abc; theme=dark\r\n\
    Cookie: lang=en\r\n\
    Sec-WebSocket-Version: 13\r\n\
    \r\n";

fn rfc_request() -> Request {
    let mut reader = RequestReader::default();
    reader.receive(RFC_REQUEST.as_bytes());
    reader.poll_request().unwrap().unwrap()
}

mod accessors {
    //! The parts of the request an application decides on (§4.2.1 items 1–10).
    use super::*;

    #[test]
    fn request_exposes_path_and_query() {
        let request = rfc_request();
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.query(), Some("room=lobby"));
        assert_eq!(request.uri().to_string(), "/chat?room=lobby");
    }

    #[test]
    fn request_exposes_origin() {
        assert_eq!(rfc_request().origin(), Some("http://example.com"));
    }

    #[test]
    fn request_exposes_cookies_of_every_cookie_header() {
        let request = rfc_request();
        let cookies: Vec<(&str, &str)> = request.cookies().collect();
        assert_eq!(
            cookies,
            [("session", "abc"), ("theme", "dark"), ("lang", "en")]
        );
    }

    #[test]
    fn request_exposes_subprotocols_in_order_of_preference() {
        assert_eq!(rfc_request().subprotocols(), ["chat", "superchat"]);
    }

    #[test]
    fn request_exposes_extension_offers_with_parameters() {
        let request = rfc_request();
        let extensions: &[ExtensionOffer] = request.extensions();
        assert_eq!(extensions.len(), 2);
        assert_eq!(extensions[0].name, "permessage-deflate");
        assert_eq!(
            extensions[0].params,
            [("client_max_window_bits".to_owned(), None)]
        );
        assert_eq!(extensions[1].name, "x-custom");
        assert_eq!(
            extensions[1].params,
            [("a".to_owned(), Some("1".to_owned()))]
        );
    }

    #[test]
    fn request_exposes_every_header() {
        let request = rfc_request();
        assert_eq!(
            request.headers().get(header::HOST).unwrap(),
            "server.example.com"
        );
        assert_eq!(request.headers().get_all(header::COOKIE).iter().count(), 2);
    }

    #[test]
    fn request_without_optional_headers_has_none_of_them() {
        let mut reader = RequestReader::default();
        reader.receive(
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        let request = reader.poll_request().unwrap().unwrap();
        assert_eq!(
            (request.path(), request.query(), request.origin()),
            ("/", None, None)
        );
        assert_eq!(request.cookies().count(), 0);
        assert!(request.subprotocols().is_empty() && request.extensions().is_empty());
    }
}

mod accepting {
    //! §4.2.2 item 5: the 101 response.
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example_is_s3pplmbitxaq9kygzzhzrbk_xoo() {
        assert_eq!(
            herald_proto::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accepting_the_rfc_request_writes_the_rfc_response() {
        let response = rfc_request().accept(Accept::default()).unwrap();
        assert_eq!(
            std::str::from_utf8(&response).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             \r\n"
        );
    }

    #[test]
    fn accepting_with_an_offered_subprotocol_names_it() {
        let accept = Accept {
            subprotocol: Some("chat".into()),
            ..Accept::default()
        };
        let response = rfc_request().accept(accept).unwrap();
        let text = std::str::from_utf8(&response).unwrap();
        assert!(
            text.ends_with("\r\nSec-WebSocket-Protocol: chat\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn accepting_with_a_subprotocol_that_was_not_offered_is_misuse() {
        let accept = Accept {
            subprotocol: Some("mqtt".into()),
            ..Accept::default()
        };
        assert_eq!(
            rfc_request().accept(accept).unwrap_err(),
            MisuseError::SubprotocolNotOffered
        );
    }

    #[test]
    fn accepting_with_extensions_and_extra_headers_writes_them() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("id=42; HttpOnly"),
        );
        headers.append("x-served-by", HeaderValue::from_static("herald"));
        let accept = Accept {
            extensions: Some("x-custom".into()),
            headers,
            ..Accept::default()
        };
        let response = rfc_request().accept(accept).unwrap();
        let text = std::str::from_utf8(&response).unwrap();
        assert!(text.ends_with(
            "Sec-WebSocket-Extensions: x-custom\r\n\
             set-cookie: id=42; HttpOnly\r\n\
             x-served-by: herald\r\n\r\n"
        ));
    }

    #[test]
    fn accepting_with_a_header_value_that_breaks_http_is_misuse() {
        let accept = Accept {
            extensions: Some("x\r\nInjected: 1".into()),
            ..Accept::default()
        };
        assert_eq!(
            rfc_request().accept(accept).unwrap_err(),
            MisuseError::InvalidHeader
        );
    }

    #[test]
    fn rejecting_writes_the_applications_response() {
        let response = Response::text(StatusCode::FORBIDDEN, "origin not allowed")
            .with_header(header::WWW_AUTHENTICATE, "Bearer");
        let bytes = rfc_request().reject(&response);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "HTTP/1.1 403 Forbidden\r\n\
             content-type: text/plain; charset=utf-8\r\n\
             www-authenticate: Bearer\r\n\
             Content-Length: 19\r\n\
             Connection: close\r\n\
             \r\n\
             origin not allowed\n"
        );
    }

    #[test]
    fn client_request_is_accepted_and_the_response_satisfies_the_client() {
        let request = ClientRequest::new("ws://localhost:9001/echo?x=1")
            .unwrap()
            .subprotocol("v2")
            .subprotocol("v1");
        let (mut client, bytes) = ClientHandshake::new(&request, &mut SeededEntropy::new(3));
        let mut reader = RequestReader::default();
        reader.receive(&bytes);
        let server_side = reader.poll_request().unwrap().unwrap();
        assert_eq!(server_side.subprotocols(), ["v2", "v1"]);
        let accept = Accept {
            subprotocol: Some("v1".into()),
            ..Accept::default()
        };
        client.receive(&server_side.accept(accept).unwrap());
        let accepted = client.poll_response().unwrap().unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("v1"));
    }
}
