//! RFC 6455 §4.2.2 and §1.3: what the server learns from a valid request, and the response
//! with which it accepts or refuses it.
#![allow(clippy::unwrap_used)]

use herald_proto::handshake::{
    Accept, AcceptResponse, ClientHandshake, ClientRequest, ExtensionOffer, Request, RequestReader,
    Response,
};
use herald_proto::{DeflateConfig, MisuseError, SeededEntropy};
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
        let response = rfc_request().accept(Accept::default(), None).unwrap();
        assert_eq!(
            std::str::from_utf8(&response.encode()).unwrap(),
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
        let response = rfc_request().accept(accept, None).unwrap();
        assert_eq!(response.subprotocol(), Some("chat"));
        let text = std::str::from_utf8(&response.encode()).unwrap().to_owned();
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
            rfc_request().accept(accept, None).unwrap_err(),
            MisuseError::SubprotocolNotOffered
        );
    }

    #[test]
    fn accepting_with_extra_headers_writes_them_after_the_handshake_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("id=42; HttpOnly"),
        );
        headers.append("x-served-by", HeaderValue::from_static("herald"));
        let accept = Accept {
            headers,
            ..Accept::default()
        };
        let response = rfc_request().accept(accept, None).unwrap();
        let text = std::str::from_utf8(&response.encode()).unwrap().to_owned();
        assert!(text.ends_with(
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             set-cookie: id=42; HttpOnly\r\n\
             x-served-by: herald\r\n\r\n"
        ));
    }

    #[test]
    fn accepting_with_a_header_the_handshake_sets_is_misuse() {
        // An application cannot claim an extension the engine would not run, nor rewrite the
        // upgrade: the peer would fail the connection on its first compressed frame.
        for name in [
            header::SEC_WEBSOCKET_EXTENSIONS,
            header::SEC_WEBSOCKET_ACCEPT,
            header::SEC_WEBSOCKET_PROTOCOL,
            header::UPGRADE,
            header::CONNECTION,
            header::CONTENT_LENGTH,
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("x-custom"));
            let accept = Accept {
                headers,
                ..Accept::default()
            };
            assert_eq!(
                rfc_request().accept(accept, None).unwrap_err(),
                MisuseError::HandshakeHeader(name)
            );
        }
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
        client.receive(&server_side.accept(accept, None).unwrap().encode());
        let accepted = client.poll_response().unwrap().unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("v1"));
    }
}

mod negotiating {
    //! RFC 7692 §5.1 and §7.1: the engine answers a permessage-deflate offer from the server's
    //! configuration; the application has no say in it.
    use super::*;

    fn request_offering(extensions: Option<&str>) -> Request {
        let offer = extensions.map_or(String::new(), |e| {
            format!("Sec-WebSocket-Extensions: {e}\r\n")
        });
        let mut reader = RequestReader::default();
        reader.receive(
            format!(
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Protocol: chat\r\n{offer}\r\n"
            )
            .as_bytes(),
        );
        reader.poll_request().unwrap().unwrap()
    }

    fn extensions(response: &AcceptResponse) -> Option<&str> {
        response
            .headers()
            .get(header::SEC_WEBSOCKET_EXTENSIONS)
            .map(|v| v.to_str().unwrap())
    }

    #[test]
    fn server_with_deflate_answers_the_first_offer_it_can_honour() {
        let request = request_offering(Some(
            "permessage-deflate; mystery, permessage-deflate; client_max_window_bits=10",
        ));
        let response = request
            .accept(Accept::default(), Some(&DeflateConfig::default()))
            .unwrap();
        let params = response.deflate().unwrap();
        assert_eq!(params.client_max_window_bits, 10);
        assert_eq!(
            extensions(&response),
            Some("permessage-deflate; client_max_window_bits=10")
        );
        assert!(std::str::from_utf8(&response.encode()).unwrap().ends_with(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n\r\n"
        ));
    }

    #[test]
    fn server_without_deflate_answers_no_extension() {
        let request = request_offering(Some("permessage-deflate"));
        let response = request.accept(Accept::default(), None).unwrap();
        assert_eq!((response.deflate(), extensions(&response)), (None, None));
    }

    #[test]
    fn server_with_deflate_and_no_offer_answers_no_extension() {
        let request = request_offering(None);
        let response = request
            .accept(Accept::default(), Some(&DeflateConfig::default()))
            .unwrap();
        assert_eq!((response.deflate(), extensions(&response)), (None, None));
    }

    #[test]
    fn server_declines_an_extension_it_does_not_run() {
        let request = request_offering(Some("x-webkit-deflate-frame"));
        let response = request
            .accept(Accept::default(), Some(&DeflateConfig::default()))
            .unwrap();
        assert_eq!((response.deflate(), extensions(&response)), (None, None));
    }

    #[test]
    fn encoded_bytes_and_the_http_response_carry_the_same_headers() {
        let with_cookie = || {
            let mut headers = HeaderMap::new();
            headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
            headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
            Accept {
                subprotocol: Some("chat".into()),
                headers,
            }
        };
        for offer in [None, Some("permessage-deflate; client_max_window_bits")] {
            for deflate in [None, Some(DeflateConfig::default())] {
                let response = request_offering(offer)
                    .accept(with_cookie(), deflate.as_ref())
                    .unwrap();
                let bytes = response.encode();
                let http = response.into_http(());
                let mut storage = [httparse::EMPTY_HEADER; 16];
                let mut parsed = httparse::Response::new(&mut storage);
                assert!(parsed.parse(&bytes).unwrap().is_complete());
                assert_eq!(parsed.code, Some(http.status().as_u16()));
                let raw: Vec<(String, &[u8])> = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value))
                    .collect();
                let converted: Vec<(String, &[u8])> = http
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes()))
                    .collect();
                assert_eq!(raw, converted, "offer {offer:?}, deflate {deflate:?}");
            }
        }
    }
}
