//! RFC 8441 §4 and §5: the extended CONNECT that opens a WebSocket on an HTTP/2 stream, checked
//! and answered by the same engine as the HTTP/1.1 upgrade.
#![allow(clippy::unwrap_used)]

use herald_proto::DeflateConfig;
use herald_proto::handshake::{Accept, ClientRequest, Request, Response};
use herald_proto::{HandshakeError, MisuseError};
use http::{HeaderMap, Method, StatusCode, Uri, header};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

fn uri() -> Uri {
    "https://chat.example:8443/ws?room=1".parse().unwrap()
}

fn connect(
    protocol: Option<&str>,
    pairs: &[(&'static str, &'static str)],
) -> Result<Request, Response> {
    Request::from_extended_connect(&Method::CONNECT, protocol, uri(), headers(pairs))
}

mod server {
    //! RFC 8441 §4, §5: the server's checks and its 200.
    use super::*;

    #[test]
    fn extended_connect_without_a_key_is_accepted_with_200_and_no_accept_key() {
        let request = connect(
            Some("websocket"),
            &[
                ("sec-websocket-version", "13"),
                ("sec-websocket-protocol", "chat, superchat"),
            ],
        )
        .unwrap();
        assert!(request.is_extended_connect());
        assert_eq!(request.path(), "/ws");
        assert_eq!(request.query(), Some("room=1"));
        // :authority stands for Host (RFC 9113 §8.3.1).
        assert_eq!(request.headers()[header::HOST], "chat.example:8443");
        let accept = Accept {
            subprotocol: Some("chat".into()),
            ..Accept::default()
        };
        let response = request.accept(accept, None).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.subprotocol(), Some("chat"));
        for absent in [
            header::UPGRADE,
            header::CONNECTION,
            header::SEC_WEBSOCKET_ACCEPT,
        ] {
            assert!(response.headers().get(&absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn permessage_deflate_is_negotiated_as_over_http_1_1() {
        let request = connect(
            Some("websocket"),
            &[
                ("sec-websocket-version", "13"),
                (
                    "sec-websocket-extensions",
                    "permessage-deflate; client_max_window_bits",
                ),
            ],
        )
        .unwrap();
        let response = request
            .accept(Accept::default(), Some(&DeflateConfig::default()))
            .unwrap();
        assert!(response.deflate().is_some());
        let answer = response.headers()[header::SEC_WEBSOCKET_EXTENSIONS]
            .to_str()
            .unwrap();
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
    }

    #[test]
    fn a_subprotocol_not_offered_is_a_misuse() {
        let request = connect(Some("websocket"), &[("sec-websocket-version", "13")]).unwrap();
        let accept = Accept {
            subprotocol: Some("chat".into()),
            ..Accept::default()
        };
        assert!(matches!(
            request.accept(accept, None),
            Err(MisuseError::SubprotocolNotOffered)
        ));
    }

    #[test]
    fn connect_without_protocol_is_refused_with_400() {
        let refusal = connect(None, &[("sec-websocket-version", "13")]).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            &refusal.body[..],
            b"extended CONNECT with :protocol websocket required\n"
        );
    }

    #[test]
    fn another_protocol_is_refused_with_400() {
        let refusal =
            connect(Some("webtransport"), &[("sec-websocket-version", "13")]).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn another_version_is_refused_with_400_naming_13() {
        let refusal = connect(Some("websocket"), &[("sec-websocket-version", "8")]).unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal.headers[header::SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn a_host_that_differs_from_the_authority_is_refused_with_400() {
        let refusal = connect(
            Some("websocket"),
            &[("sec-websocket-version", "13"), ("host", "evil.example")],
        )
        .unwrap_err();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn get_is_refused_with_405_allowing_connect() {
        let refusal = Request::from_extended_connect(
            &Method::GET,
            None,
            uri(),
            headers(&[("sec-websocket-version", "13")]),
        )
        .unwrap_err();
        assert_eq!(refusal.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refusal.headers[header::ALLOW], "CONNECT");
    }
}

mod client {
    //! RFC 8441 §4, §5: the client's CONNECT and its checks of the answer.
    use super::*;

    #[test]
    fn the_request_is_a_connect_with_the_offers_and_no_key() {
        let request = ClientRequest::new("wss://chat.example/ws?room=1")
            .unwrap()
            .origin("https://app.example")
            .subprotocol("chat")
            .extension("permessage-deflate");
        let connect = request.extended_connect();
        assert_eq!(connect.method(), Method::CONNECT);
        assert_eq!(connect.uri().to_string(), "https://chat.example/ws?room=1");
        let h = connect.headers();
        assert_eq!(h[header::SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(h[header::ORIGIN], "https://app.example");
        assert_eq!(h[header::SEC_WEBSOCKET_PROTOCOL], "chat");
        assert_eq!(h[header::SEC_WEBSOCKET_EXTENSIONS], "permessage-deflate");
        assert!(h.get(header::SEC_WEBSOCKET_KEY).is_none());
    }

    #[test]
    fn a_200_with_offered_choices_is_accepted() {
        let request = ClientRequest::new("ws://chat.example/ws")
            .unwrap()
            .subprotocol("chat");
        let answer = Response {
            status: StatusCode::OK,
            headers: headers(&[("sec-websocket-protocol", "chat")]),
            body: Default::default(),
        };
        let accepted = request.check_extended_connect(answer).unwrap();
        assert_eq!(accepted.subprotocol.as_deref(), Some("chat"));
    }

    #[test]
    fn a_subprotocol_not_offered_fails_the_handshake() {
        let request = ClientRequest::new("ws://chat.example/ws").unwrap();
        let answer = Response {
            status: StatusCode::OK,
            headers: headers(&[("sec-websocket-protocol", "chat")]),
            body: Default::default(),
        };
        assert!(matches!(
            request.check_extended_connect(answer),
            Err(HandshakeError::InvalidResponse(_))
        ));
    }

    #[test]
    fn another_status_is_a_rejection_with_the_response() {
        let request = ClientRequest::new("ws://chat.example/ws").unwrap();
        let refusal = Response::text(StatusCode::FORBIDDEN, "origin not allowed");
        match request.check_extended_connect(refusal) {
            Err(HandshakeError::Rejected(response)) => {
                assert_eq!(response.status, StatusCode::FORBIDDEN);
                assert_eq!(&response.body[..], b"origin not allowed\n");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
