//! Channel names and plain-mode rooms: the one rule for what a channel may be called, and how
//! a plain-mode request's path and query become a room. Every entry point (protocol-mode
//! commands, plain mode, the HTTP API) checks names here, so the copies cannot disagree.

use crate::auth::query_param;
use crate::config::PlainRoute;

/// The longest channel name, in bytes of UTF-8.
pub const MAX_CHANNEL_LEN: usize = 255;

/// The ASCII punctuation a channel name may contain besides letters and digits.
pub const CHANNEL_PUNCTUATION: &str = ":-_./@#=+,";

/// What joins a plain-mode route's path and its parameters into a room name.
const SEPARATOR: char = ':';

/// Whether `name` is an acceptable channel name.
///
/// A channel name is 1 to [`MAX_CHANNEL_LEN`] (255) bytes of UTF-8 made only of:
/// - letters and digits of any script: characters with the Unicode property `Alphabetic` or
///   `Numeric` ([`char::is_alphanumeric`]), so `chat:1234`, `chat:αθήνα` and `新闻` are names;
/// - the ASCII punctuation `:` `-` `_` `.` `/` `@` `#` `=` `+` `,`.
///
/// Everything else is refused, in particular:
/// - spaces and all other whitespace, control characters, quotes, brackets, `%`, `\`;
/// - `*` and `?`, which are pattern syntax in permissions (`chat:*`), so that a channel name
///   never looks like a pattern;
/// - bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which can make a
///   name display as a different one;
/// - zero-width and other invisible characters: the whole Unicode `Default_Ignorable_Code_Point`
///   set (U+00AD, U+200B–U+200D, U+2060–U+2064, U+FEFF, variation selectors, tag characters,
///   …), which includes the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0 that are letters by
///   category but render as nothing;
/// - combining marks that are not part of a letter (`Alphabetic`): accents must be
///   precomposed, so send names in NFC.
///
/// Names are compared byte for byte, without normalisation or case folding. Letters of
/// different scripts that look alike (Latin `a`, Cyrillic `а`) make different names; since
/// permission patterns match bytes too, a look-alike name never gains a permission.
pub fn valid_channel(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_CHANNEL_LEN && name.chars().all(allowed_char)
}

fn allowed_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || CHANNEL_PUNCTUATION.contains(c)
    } else {
        c.is_alphanumeric() && !default_ignorable(c)
    }
}

/// Unicode 16 `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt): characters that
/// render as nothing unless a font makes them visible.
fn default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Why a plain-mode request names no room. The WebSocket upgrade answers each with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// No plain-mode route has this path: the client must use a configured path, or protocol
    /// mode (subprotocol `herald.v1`).
    #[error("no plain-mode route for this path")]
    NoRoute,
    /// A parameter the route requires is absent or empty: the client must send it.
    #[error("missing room query parameter {0:?}")]
    MissingParam(String),
    /// A parameter's value contains `:`, the separator of the room name; refused so that two
    /// sets of parameters (`a=x:y&b=z`, `a=x&b=y:z`) cannot name the same room.
    #[error("room query parameter {0:?} contains ':'")]
    SeparatorInParam(String),
    /// The room built is not a channel name by [`valid_channel`] (too long, or a character
    /// outside the set): the client must pick another value.
    #[error("invalid room name")]
    InvalidName,
}

/// The room of a plain-mode request: the route's path without its leading slash, then each of
/// the route's query parameters in order, joined with `:` (`/chat?groupId=1234` → `chat:1234`).
/// Parameters are percent-decoded; the first occurrence of each counts.
///
/// # Errors
/// [`RoomError`], the first that applies: no route for `path`; then, parameter by parameter
/// in the route's order, one missing, empty or containing `:`; then a resulting name that
/// [`valid_channel`] refuses.
pub fn plain_room(
    routes: &[PlainRoute],
    path: &str,
    query: Option<&str>,
) -> Result<String, RoomError> {
    let route = routes
        .iter()
        .find(|r| r.path == path)
        .ok_or(RoomError::NoRoute)?;
    let mut room = route.path.trim_start_matches('/').to_owned();
    for param in &route.params {
        let value = query
            .and_then(|q| query_param(q, param))
            .filter(|v| !v.is_empty())
            .ok_or_else(|| RoomError::MissingParam(param.clone()))?;
        if value.contains(SEPARATOR) {
            return Err(RoomError::SeparatorInParam(param.clone()));
        }
        room.push(SEPARATOR);
        room.push_str(&value);
    }
    if valid_channel(&room) {
        Ok(room)
    } else {
        Err(RoomError::InvalidName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod channel_names {
        //! The character set of `valid_channel`.
        use super::*;

        #[test]
        fn ascii_letters_digits_and_the_listed_punctuation_are_accepted() {
            for name in [
                "chat:1234",
                "a",
                "user@example.com",
                "a-b_c.d/e#f=g+h,i",
                "0",
            ] {
                assert!(valid_channel(name), "{name:?}");
            }
        }

        #[test]
        fn letters_and_digits_of_other_scripts_are_accepted() {
            for name in [
                "chat:αθήνα",
                "Ελληνικά",
                "новости",
                "新闻",
                "عربي",
                "עברית",
                "٣٤",
            ] {
                assert!(valid_channel(name), "{name:?}");
            }
        }

        #[test]
        fn names_of_1_to_255_bytes_are_accepted_and_others_refused() {
            assert!(!valid_channel(""));
            assert!(valid_channel(&"a".repeat(255)));
            assert!(!valid_channel(&"a".repeat(256)));
            // 127 two-byte letters are 254 bytes; one more is 256.
            assert!(valid_channel(&"α".repeat(127)));
            assert!(!valid_channel(&"α".repeat(128)));
        }

        #[test]
        fn every_other_ascii_character_is_refused() {
            for b in 0u8..=127 {
                let c = char::from(b);
                let expected = c.is_ascii_alphanumeric() || CHANNEL_PUNCTUATION.contains(c);
                assert_eq!(valid_channel(&format!("a{c}b")), expected, "{c:?}");
            }
        }

        #[test]
        fn whitespace_and_wildcards_are_refused() {
            for name in [
                "a b",
                "a\tb",
                "a\u{a0}b",
                "a\u{3000}b",
                "a\u{2028}b",
                "a*",
                "a?",
            ] {
                assert!(!valid_channel(name), "{name:?}");
            }
        }

        #[test]
        fn bidi_controls_are_refused() {
            let bidi = ('\u{202A}'..='\u{202E}')
                .chain('\u{2066}'..='\u{2069}')
                .chain(['\u{200E}', '\u{200F}', '\u{061C}']);
            for c in bidi {
                assert!(
                    !valid_channel(&format!("chat:{c}1")),
                    "{:04X}",
                    u32::from(c)
                );
            }
        }

        #[test]
        fn zero_width_and_invisible_characters_are_refused() {
            let invisible = [
                '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
            ];
            let fillers = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'];
            for c in invisible
                .into_iter()
                .chain(fillers)
                .chain(['\u{FE0F}', '\u{E0041}'])
            {
                assert!(!valid_channel(&format!("a{c}b")), "{:04X}", u32::from(c));
            }
        }

        #[test]
        fn no_default_ignorable_character_is_accepted() {
            for c in (0..=0x10FFFF)
                .filter_map(char::from_u32)
                .filter(|&c| default_ignorable(c))
            {
                assert!(!allowed_char(c), "{:04X}", u32::from(c));
            }
        }

        #[test]
        fn decomposed_accents_are_refused_and_precomposed_ones_accepted() {
            assert!(valid_channel("caf\u{e9}"));
            assert!(!valid_channel("cafe\u{301}"));
        }
    }

    mod plain_rooms {
        //! `plain_room`: path and query to room.
        use super::*;

        fn routes() -> Vec<PlainRoute> {
            vec![
                PlainRoute {
                    path: "/chat".into(),
                    params: vec!["groupId".into()],
                },
                PlainRoute {
                    path: "/game".into(),
                    params: vec!["table".into(), "seat".into()],
                },
                PlainRoute {
                    path: "/lobby".into(),
                    params: vec![],
                },
            ]
        }

        #[test]
        fn path_then_parameters_joined_with_colons() {
            let r = routes();
            assert_eq!(
                plain_room(&r, "/chat", Some("groupId=1234")).unwrap(),
                "chat:1234"
            );
            let q = Some("seat=3&table=7&x=y");
            assert_eq!(plain_room(&r, "/game", q).unwrap(), "game:7:3");
            assert_eq!(plain_room(&r, "/lobby", None).unwrap(), "lobby");
        }

        #[test]
        fn parameters_are_percent_decoded_and_the_first_one_counts() {
            let r = routes();
            let q = Some("groupId=%CE%B1%CE%B8&groupId=2");
            assert_eq!(plain_room(&r, "/chat", q).unwrap(), "chat:αθ");
        }

        #[test]
        fn an_unrouted_path_is_no_route() {
            let r = routes();
            assert_eq!(
                plain_room(&r, "/ws", Some("groupId=1")),
                Err(RoomError::NoRoute)
            );
            assert_eq!(
                plain_room(&r, "/chat/", Some("groupId=1")),
                Err(RoomError::NoRoute)
            );
        }

        #[test]
        fn a_missing_or_empty_parameter_is_refused() {
            let r = routes();
            let missing = Err(RoomError::MissingParam("groupId".into()));
            assert_eq!(plain_room(&r, "/chat", None), missing);
            assert_eq!(plain_room(&r, "/chat", Some("groupId=")), missing);
            assert_eq!(plain_room(&r, "/chat", Some("other=1")), missing);
            let seat = Err(RoomError::MissingParam("seat".into()));
            assert_eq!(plain_room(&r, "/game", Some("table=1")), seat);
        }

        #[test]
        fn a_parameter_with_the_separator_is_refused() {
            let r = routes();
            let refused = Err(RoomError::SeparatorInParam("groupId".into()));
            assert_eq!(plain_room(&r, "/chat", Some("groupId=a:b")), refused);
            assert_eq!(plain_room(&r, "/chat", Some("groupId=a%3Ab")), refused);
            // Otherwise `table=1:2&seat=3` and `table=1&seat=2:3` would share room game:1:2:3.
            let table = Err(RoomError::SeparatorInParam("table".into()));
            assert_eq!(plain_room(&r, "/game", Some("table=1:2&seat=3")), table);
            let seat = Err(RoomError::SeparatorInParam("seat".into()));
            assert_eq!(plain_room(&r, "/game", Some("table=1&seat=2:3")), seat);
        }

        #[test]
        fn the_first_failing_parameter_decides_and_the_name_comes_last() {
            let r = routes();
            let long = "a".repeat(300);
            let q = format!("table={long}&seat=1:2");
            let seat = Err(RoomError::SeparatorInParam("seat".into()));
            assert_eq!(plain_room(&r, "/game", Some(&q)), seat);
            let q = format!("table={long}");
            let seat = Err(RoomError::MissingParam("seat".into()));
            assert_eq!(plain_room(&r, "/game", Some(&q)), seat);
            let q = format!("table=a b&seat={long}");
            assert_eq!(
                plain_room(&r, "/game", Some(&q)),
                Err(RoomError::InvalidName)
            );
        }

        #[test]
        fn a_room_that_is_no_channel_name_is_refused() {
            let r = routes();
            for q in [
                "groupId=a+b",
                "groupId=a%20b",
                "groupId=a*",
                "groupId=%E2%80%AE1",
            ] {
                assert_eq!(
                    plain_room(&r, "/chat", Some(q)),
                    Err(RoomError::InvalidName),
                    "{q}"
                );
            }
            // "chat:" and 250 bytes is 255.
            let fits = format!("groupId={}", "a".repeat(250));
            assert_eq!(plain_room(&r, "/chat", Some(&fits)).unwrap().len(), 255);
            let long = format!("groupId={}", "a".repeat(251));
            assert_eq!(
                plain_room(&r, "/chat", Some(&long)),
                Err(RoomError::InvalidName)
            );
        }
    }
}
