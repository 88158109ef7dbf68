//! The hub's command parser on arbitrary text: it never panics, an error names the id it
//! answers, and a parsed command encodes to JSON that parses back to the same command.
#![no_main]

use herald_hub_protocol::{Call, Command, CommandError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Command::parse(&text) {
        Ok(command) => check_round_trip(&command),
        Err(CommandError::UnknownMethod { id } | CommandError::BadParams { id, .. }) => {
            check_id(&text, id);
        }
        Err(CommandError::Malformed) => {}
    }
});

/// `to_json` then `parse` gives the same command, whose encoding is the same text.
fn check_round_trip(command: &Command) {
    let json = command.to_json();
    assert!(!json.is_empty(), "{command:?} encodes");
    let again = match Command::parse(&json) {
        Ok(again) => again,
        Err(e) => panic!("{json} does not parse back: {e:?}"),
    };
    assert_eq!(again.id, command.id);
    assert_eq!(again.to_json(), json, "{command:?}");
    if let (Call::Publish(a), Call::Publish(b)) = (&command.call, &again.call) {
        // Publish data is kept byte for byte.
        assert_eq!(a.data.get(), b.data.get());
    }
}

/// An error that is answered carries the command's own id.
fn check_id(text: &str, id: u64) {
    // serde_json::Value stops at 128 levels of nesting, the parser's ignored fields do not.
    // A command that is not an object is Malformed (never answered), so an answered one is.
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(fields)) => assert_eq!(
            fields.get("id").and_then(|v| v.as_u64()),
            Some(id),
            "{text}"
        ),
        Ok(other) => panic!("{other} is answered with id {id}"),
        Err(_) => {}
    }
}
