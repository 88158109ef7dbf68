//! The codes in Rust are the table in `codes.json`, which herald.js's copy is checked against too.

use herald_hub_protocol::{Disconnect, ErrorCode};
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("../codes.json");
    serde_json::from_str(text).expect("codes.json is JSON")
}

#[test]
fn error_codes_match_the_shared_fixture() {
    let fixture = fixture();
    let errors = fixture["errors"].as_object().expect("errors object");
    assert_eq!(errors.len(), ErrorCode::ALL.len());
    for (name, code) in ErrorCode::ALL {
        let entry = &errors[name];
        assert_eq!(entry["code"], u64::from(code.0), "{name}");
        assert_eq!(entry["temporary"], code.is_temporary(), "{name}");
        assert_eq!(entry["message"], code.message(), "{name}");
    }
}

#[test]
fn disconnect_codes_match_the_shared_fixture() {
    let fixture = fixture();
    let disconnects = fixture["disconnects"]
        .as_object()
        .expect("disconnects object");
    assert_eq!(disconnects.len(), Disconnect::ALL.len());
    for (name, d) in Disconnect::ALL {
        let entry = &disconnects[name];
        assert_eq!(entry["code"], u64::from(d.code), "{name}");
        assert_eq!(entry["reason"], d.reason, "{name}");
        assert_eq!(
            entry["reconnect"],
            Disconnect::should_reconnect(d.code),
            "{name}"
        );
    }
}

#[test]
fn the_reconnect_ranges_match_the_shared_fixture() {
    let fixture = fixture();
    let ranges = &fixture["reconnect_ranges"];
    let range = |name: &str| -> std::ops::RangeInclusive<u16> {
        let bound = |i: usize| {
            let n = ranges[name][i].as_u64().expect("a range bound");
            u16::try_from(n).expect("a close code")
        };
        bound(0)..=bound(1)
    };
    assert!(range("reconnect").all(Disconnect::should_reconnect));
    assert!(!range("terminal").any(Disconnect::should_reconnect));
}

#[test]
fn close_codes_4000_to_4499_ask_for_a_reconnect_and_4500_to_4999_do_not() {
    assert!((4000..=4499).all(Disconnect::should_reconnect));
    assert!(!(4500..=4999).any(Disconnect::should_reconnect));
}
