//! The server's request reader on arbitrary bytes in arbitrary pieces: a request it accepts
//! can be answered; a refusal has a documented status; an unfinished head stays under the limit.
#![no_main]

use herald_proto::handshake::{Accept, HandshakeLimits, Request, RequestReader};
use herald_proto::{DeflateConfig, MisuseError};
use herald_proto_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Input::new(data);
    let mut limits = HandshakeLimits::default();
    if input.small_limits {
        limits.max_head_size = 512;
        limits.max_headers = 8;
    }
    let mut reader = RequestReader::new(limits.clone());
    for piece in input.pieces() {
        reader.receive(piece);
        match reader.poll_request() {
            Ok(None) => continue,
            Ok(Some(request)) => {
                check_request(&request);
                assert!(reader.into_remaining().len() <= input.stream.len());
                return;
            }
            Err(response) => {
                let status = response.status.as_u16();
                assert!(matches!(status, 400 | 405 | 426 | 431), "status {status}");
                let bytes = response.encode();
                assert!(bytes.starts_with(b"HTTP/1.1 4"));
                assert!(bytes.windows(4).any(|w| w == b"\r\n\r\n"));
                return;
            }
        }
    }
    assert!(
        input.stream.len() <= limits.max_head_size,
        "an unfinished head is bounded"
    );
});

fn check_request(request: &Request) {
    let _ = (
        request.path(),
        request.query(),
        request.origin(),
        request.headers(),
    );
    let _ = request.cookies().count();
    assert!(request.subprotocols().iter().all(|p| !p.is_empty()));
    assert!(request.extensions().iter().all(|e| !e.name.is_empty()));
    let deflate = DeflateConfig::default();
    let response = request
        .accept(Accept::default(), Some(&deflate))
        .expect("a valid request can be accepted");
    let bytes = response.encode();
    assert!(bytes.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(bytes.ends_with(b"\r\n\r\n"));
    if let Some(first) = request.subprotocols().first() {
        let accept = Accept {
            subprotocol: Some(first.clone()),
            ..Accept::default()
        };
        request
            .accept(accept, None)
            .expect("an offered subprotocol can be chosen");
    }
    let unoffered = Accept {
        subprotocol: Some("\u{7f}unoffered".into()),
        ..Accept::default()
    };
    assert_eq!(
        request.accept(unoffered, None),
        Err(MisuseError::SubprotocolNotOffered)
    );
}
