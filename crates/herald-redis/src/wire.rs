//! Key names, the pub/sub message format, and the script replies parsed back.

use bytes::Bytes;
use herald_hub::broker::{History, Payload, Publication};
use herald_hub_protocol::ClientInfo;
use herald_hub_protocol::StreamPosition;
use std::sync::Arc;

/// The Redis keys and pub/sub topic of one channel.
#[derive(Debug)]
pub(crate) struct Keys {
    /// Hash `top`, `epoch`.
    pub(crate) meta: String,
    /// Stream of publications, entry id `OFFSET-0`.
    pub(crate) history: String,
    /// Sorted set of client ids, scored by expiry.
    pub(crate) members: String,
    /// Hash client id → user id.
    pub(crate) users: String,
    /// Pub/sub topic.
    pub(crate) topic: String,
    /// The vacant epoch of the channel's slot (hash: `e` the epoch, `r` the replication id
    /// it was set under), which every new stream in the slot replaces.
    pub(crate) vacant: String,
}

/// What a pub/sub topic starts with: `herald:{TAG}:c:` and the channel name follow.
const TOPIC_START: &str = "herald:{";
/// What separates a topic's slot tag from its channel name.
const TOPIC_MIDDLE: &str = "}:c:";

/// The channel a pub/sub topic is for, or `None` for another topic (the control bus's).
pub(crate) fn topic_channel(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(TOPIC_START)?;
    let (tag, channel) = rest.split_once(TOPIC_MIDDLE)?;
    (!tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit())).then_some(channel)
}

/// The key of a slot's vacant epoch, for the slot's tag.
pub(crate) fn vacant_key(tag: &str) -> String {
    format!("herald:{{{tag}}}:v")
}

/// Whether `key` is a slot's vacant-epoch key.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn is_vacant_key(key: &str) -> bool {
    key.strip_prefix("herald:{")
        .and_then(|rest| rest.strip_suffix("}:v"))
        .is_some_and(|tag| !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()))
}

/// Offsets above this cannot be in Redis: the scripts see numbers as doubles, exact up to
/// 2^53, and offsets grow by one per publication.
pub(crate) const MAX_OFFSET: u64 = 1 << 53;

/// The stream id to read history from, for publications after `after`: built here, as a
/// string, for any `u64` a client sends. `None` when nothing can follow `after` (or nothing
/// is asked for), so only the position is read.
pub(crate) fn first_id(after: u64, limit: usize) -> Option<String> {
    (limit > 0 && after < MAX_OFFSET).then(|| format!("{}-0", after + 1))
}

impl Keys {
    /// Every key of `channel` is hash-tagged with its slot's tag (see `slot.rs`), so that
    /// one script can touch all of them on a Redis Cluster.
    pub(crate) fn new(channel: &str) -> Self {
        let tag = crate::slot::tag(channel);
        Self {
            meta: format!("herald:{{{tag}}}:m:{channel}"),
            history: format!("herald:{{{tag}}}:h:{channel}"),
            members: format!("herald:{{{tag}}}:p:{channel}"),
            users: format!("herald:{{{tag}}}:u:{channel}"),
            topic: format!("{TOPIC_START}{tag}{TOPIC_MIDDLE}{channel}"),
            vacant: vacant_key(tag),
        }
    }
}

/// The one-letter payload kind stored in history and sent on pub/sub.
pub(crate) fn kind(payload: &Payload) -> &'static str {
    match payload {
        Payload::Json(_) => "j",
        Payload::Text(_) => "t",
        Payload::Binary(_) => "b",
    }
}

/// A payload from its kind letter and bytes; `None` for an unknown kind.
pub(crate) fn payload(kind: &[u8], data: Bytes) -> Option<Payload> {
    match kind {
        b"j" => Some(Payload::Json(data)),
        b"t" => Some(Payload::Text(data)),
        b"b" => Some(Payload::Binary(data)),
        _ => None,
    }
}

/// The publisher from its stored client and user ids (an empty client id: none).
pub(crate) fn publisher(client: &[u8], user: &[u8]) -> Option<Option<ClientInfo>> {
    if client.is_empty() {
        return Some(None);
    }
    Some(Some(ClientInfo {
        client: String::from_utf8(client.to_vec()).ok()?,
        user: String::from_utf8(user.to_vec()).ok()?,
    }))
}

/// A message heard on a channel's topic.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// `p OFFSET EPOCH KIND CLIENTLEN USERLEN\nCLIENT USER PAYLOAD`
    Publication(String, Publication),
    /// `j CLIENTLEN USERLEN\nCLIENT USER`
    Join(ClientInfo),
    /// `l CLIENTLEN USERLEN\nCLIENT USER`
    Leave(ClientInfo),
}

/// Parses a pub/sub message (written by the Lua scripts); `None` when malformed.
pub(crate) fn parse(message: &[u8]) -> Option<Message> {
    let newline = message.iter().position(|b| *b == b'\n')?;
    let head = std::str::from_utf8(&message[..newline]).ok()?;
    let body = &message[newline + 1..];
    let fields: Vec<&str> = head.split(' ').collect();
    match fields.as_slice() {
        ["p", offset, epoch, kind, client_len, user_len] => {
            let (info, rest) = split_info(body, client_len, user_len)?;
            let publication = Publication {
                offset: offset.parse().ok()?,
                payload: payload(kind.as_bytes(), Bytes::copy_from_slice(rest))?,
                publisher: info,
            };
            Some(Message::Publication((*epoch).to_owned(), publication))
        }
        [op @ ("j" | "l"), client_len, user_len] => {
            let (info, _) = split_info(body, client_len, user_len)?;
            let info = info?;
            Some(if *op == "j" {
                Message::Join(info)
            } else {
                Message::Leave(info)
            })
        }
        _ => None,
    }
}

fn split_info<'a>(
    body: &'a [u8],
    client_len: &str,
    user_len: &str,
) -> Option<(Option<ClientInfo>, &'a [u8])> {
    let client_len: usize = client_len.parse().ok()?;
    let user_len: usize = user_len.parse().ok()?;
    let client = body.get(..client_len)?;
    let user = body.get(client_len..client_len.checked_add(user_len)?)?;
    let rest = &body[client_len + user_len..];
    Some((publisher(client, user)?, rest))
}

/// `{top, epoch, (offset-0, kind, client, user, payload)*}` from `history.lua`.
pub(crate) fn parse_history(raw: Vec<Vec<u8>>) -> Option<History> {
    let mut raw = raw.into_iter();
    let top = std::str::from_utf8(&raw.next()?).ok()?.parse().ok()?;
    let epoch = String::from_utf8(raw.next()?).ok()?;
    let before = String::from_utf8(raw.next()?).ok()?;
    let rest: Vec<Vec<u8>> = raw.collect();
    let mut publications = Vec::with_capacity(rest.len() / 5);
    for entry in rest.chunks(5) {
        let [id, kind, client, user, data] = entry else {
            return None;
        };
        let offset = std::str::from_utf8(id)
            .ok()?
            .strip_suffix("-0")?
            .parse()
            .ok()?;
        publications.push(Arc::new(Publication {
            offset,
            payload: payload(kind, Bytes::copy_from_slice(data))?,
            publisher: publisher(client, user)?,
        }));
    }
    Some(History {
        position: StreamPosition { offset: top, epoch },
        publications,
        vacant_before: (!before.is_empty()).then_some(before),
    })
}

pub(crate) fn members(raw: Vec<String>) -> Vec<ClientInfo> {
    let mut members: Vec<ClientInfo> = raw
        .chunks(2)
        .filter_map(|pair| match pair {
            [client, user] => Some(ClientInfo {
                client: client.clone(),
                user: user.clone(),
            }),
            _ => None,
        })
        .collect();
    members.sort_by(|a, b| a.client.cmp(&b.client));
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_messages_round_trip_binary_payloads_and_publishers() {
        let message = b"p 42 9f2c01ab b 5 3\nn1-17ann\n\0\xff";
        let Some(Message::Publication(epoch, p)) = parse(message) else {
            panic!("not parsed");
        };
        assert_eq!(epoch, "9f2c01ab");
        assert_eq!(p.offset, 42);
        assert_eq!(p.payload, Payload::Binary(Bytes::from_static(b"\n\0\xff")));
        let info = p.publisher.expect("a publisher");
        assert_eq!((info.client.as_str(), info.user.as_str()), ("n1-17", "ann"));
        let anonymous = parse(b"p 1 e j 0 0\n{}");
        assert!(matches!(anonymous, Some(Message::Publication(_, p)) if p.publisher.is_none()));
    }

    #[test]
    fn history_starts_after_any_u64_offset_or_reads_only_the_position() {
        assert_eq!(first_id(0, 10).as_deref(), Some("1-0"));
        assert_eq!(
            first_id(100_000_000_000_000, 10).as_deref(),
            Some("100000000000001-0")
        );
        assert_eq!(first_id(MAX_OFFSET, 10), None);
        assert_eq!(first_id(u64::MAX, 10), None);
        assert_eq!(first_id(5, 0), None);
    }

    #[test]
    fn presence_messages_parse_and_garbage_is_refused() {
        let join = parse(b"j 2 0\nab").expect("join");
        assert_eq!(
            join,
            Message::Join(ClientInfo {
                client: "ab".into(),
                user: String::new()
            })
        );
        for bad in [
            &b""[..],
            b"p 1 e j 9 0\nab",
            b"x 1\n",
            b"j 0 0\n",
            b"p x e j 0 0\n",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_channels_keys_and_topic_share_one_slot_and_the_topic_names_the_channel() {
        for channel in ["room", "a}b{c", "{x}", "ns:with:colons"] {
            let keys = Keys::new(channel);
            // Redis hashes the text between the first `{` and the next `}`.
            let tag = |key: &str| -> String {
                let open = key.find('{').expect("a tag");
                let close = key[open..].find('}').expect("a closed tag") + open;
                key[open + 1..close].to_owned()
            };
            let all = [
                &keys.meta,
                &keys.history,
                &keys.members,
                &keys.users,
                &keys.topic,
                &keys.vacant,
            ];
            for key in all {
                assert_eq!(tag(key), crate::slot::tag(channel), "{key}");
                assert_eq!(is_vacant_key(key), std::ptr::eq(key, &keys.vacant), "{key}");
            }
            assert_eq!(topic_channel(&keys.topic), Some(channel));
        }
        assert_eq!(topic_channel("herald:{ctl}"), None);
        assert_eq!(topic_channel("herald:{ctl}:0af3"), None);
    }
}
