//! The client's response checker on arbitrary bytes in arbitrary pieces, then the end of the
//! transport: it accepts only a 101 that answers its key with offered choices, refuses other
//! statuses with a bounded body, and always decides once the transport has ended.
#![no_main]

use herald_proto::handshake::{ClientHandshake, ClientRequest, HandshakeLimits};
use herald_proto::{HandshakeError, SeededEntropy};
use herald_proto_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Input::new(data);
    let mut limits = HandshakeLimits::default();
    if input.small_limits {
        limits.max_head_size = 512;
        limits.max_headers = 8;
        limits.max_body_size = 64;
    }
    // Seed 0 gives the key "r80dezmoIOL0Zbmhap54bg==", so seeds can hold the right accept value.
    let request = ClientRequest::new("ws://example.com/chat")
        .expect("a valid URL")
        .subprotocol("chat")
        .subprotocol("superchat")
        .extension("permessage-deflate; client_max_window_bits")
        .extension("x-test");
    let (mut handshake, _) =
        ClientHandshake::with_limits(&request, &mut SeededEntropy::new(0), limits.clone());
    let mut outcome = None;
    for piece in input.pieces() {
        handshake.receive(piece);
        match handshake.poll_response() {
            Ok(None) => continue,
            decided => {
                outcome = Some(decided);
                break;
            }
        }
    }
    let outcome = outcome.unwrap_or_else(|| {
        handshake.receive_eof();
        handshake.poll_response()
    });
    match outcome {
        Ok(None) => panic!("undecided after the end of the transport"),
        Ok(Some(accepted)) => {
            if let Some(protocol) = &accepted.subprotocol {
                assert!(protocol == "chat" || protocol == "superchat");
            }
            for extension in &accepted.extensions {
                assert!(extension.name == "permessage-deflate" || extension.name == "x-test");
            }
            let accept = accepted
                .headers
                .get("sec-websocket-accept")
                .expect("checked");
            assert_eq!(accept, "iHMz0/J1GsQtRh2NfVC0Q7CZKMQ=");
        }
        Err(HandshakeError::Rejected(response)) => {
            assert_ne!(response.status.as_u16(), 101);
            assert!(response.body.len() <= limits.max_body_size);
        }
        Err(_) => {}
    }
});
