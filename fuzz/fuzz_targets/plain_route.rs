//! Plain-mode rooms from arbitrary request targets (`path?query`) on a fixed route table: a
//! room is always a valid channel name made of the route and one `:`-free value per parameter,
//! and each refusal is the one a direct reading of the rule gives.
#![no_main]

use herald_hub::auth::query_param;
use herald_hub::config::PlainRoute;
use herald_hub::names::{RoomError, plain_room, valid_channel};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static ROUTES: LazyLock<Vec<PlainRoute>> = LazyLock::new(|| {
    let route = |path: &str, params: &[&str]| PlainRoute {
        path: path.into(),
        params: params.iter().map(|p| (*p).into()).collect(),
    };
    vec![
        route("/chat", &["groupId"]),
        route("/game", &["table", "seat"]),
        route("/lobby", &[]),
        route("/a/b", &["x", "x"]),
        route("/συζήτηση", &["θέμα"]),
        route("/", &[]),
    ]
});

fuzz_target!(|data: &[u8]| {
    let target = String::from_utf8_lossy(data);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (&*target, None),
    };
    let got = plain_room(&ROUTES, path, query);
    assert_eq!(got, expected(path, query), "{target:?}");
    if let Ok(room) = &got {
        assert!(valid_channel(room));
        check_channel_rule(room);
        // No value brought a `:` of its own: exactly one per parameter.
        let params = ROUTES
            .iter()
            .find(|r| r.path == path)
            .map_or(0, |r| r.params.len());
        assert_eq!(room.matches(':').count(), params, "{room:?}");
    }
    check_channel_rule(&target);
});

/// The rule read directly: the route's path, then each parameter; the first failure wins.
fn expected(path: &str, query: Option<&str>) -> Result<String, RoomError> {
    let route = ROUTES
        .iter()
        .find(|r| r.path == path)
        .ok_or(RoomError::NoRoute)?;
    let mut parts = vec![route.path[1..].to_owned()];
    for param in &route.params {
        let value = query
            .and_then(|q| query_param(q, param))
            .unwrap_or_default();
        if value.is_empty() {
            return Err(RoomError::MissingParam(param.clone()));
        }
        if value.contains(':') {
            return Err(RoomError::SeparatorInParam(param.clone()));
        }
        parts.push(value);
    }
    let room = parts.join(":");
    if valid_channel(&room) {
        Ok(room)
    } else {
        Err(RoomError::InvalidName)
    }
}

/// A name `valid_channel` accepts has 1..=255 bytes and none of the refused characters; one
/// of 1..=255 ASCII letters, digits and listed punctuation is accepted.
fn check_channel_rule(name: &str) {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_./@#=+,".contains(&b));
    if plain && (1..=255).contains(&name.len()) {
        assert!(valid_channel(name), "{name:?}");
    }
    if !valid_channel(name) {
        return;
    }
    assert!((1..=255).contains(&name.len()), "{name:?}");
    for c in name.chars() {
        let invisible = matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}' | '\u{00AD}' | '\u{3164}');
        let refused = c.is_whitespace() || c.is_control() || matches!(c, '*' | '?') || invisible;
        assert!(!refused, "{name:?} has {c:?}");
        assert!(
            c.is_alphanumeric() || ":-_./@#=+,".contains(c),
            "{name:?} has {c:?}"
        );
    }
}
