//! The hub's messages on the broker's control bus: what one node asks of every node for the
//! server API, and what a node answers a survey. JSON, bounded, checked on arrival: a node
//! trusts nothing it reads from the bus, so a malformed message is dropped and counted
//! (`herald_control_messages_total{outcome="malformed"}`).

use herald_hub_protocol::Disconnect;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Mutex;

/// Longest user id or channel name a control message may carry.
pub(crate) const MAX_NAME: usize = 1024;
/// Longest custom disconnect reason, in bytes (printable ASCII).
pub(crate) const MAX_REASON: usize = 32;
/// Most channels one node lists in a survey answer.
pub(crate) const MAX_LISTED: usize = 10_000;
/// Most distinct custom disconnect reasons a node keeps (see [`intern`]).
const MAX_REASONS: usize = 64;

/// An action for every node: each applies it to the user's connections it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Control {
    /// Subscribe the user's protocol-mode connections to `channel` (a `subscribed` push).
    Subscribe {
        /// The user id.
        user: String,
        /// The channel.
        channel: String,
    },
    /// End the user's subscriptions to `channel` (an `unsubscribed` push).
    Unsubscribe {
        /// The user id.
        user: String,
        /// The channel.
        channel: String,
    },
    /// Close the user's connections, all but `except` (a client id) when set.
    Disconnect {
        /// The user id.
        user: String,
        /// The close code, 4000–4999.
        code: u16,
        /// The close reason.
        reason: String,
        /// A connection to keep.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<String>,
    },
}

impl Control {
    /// Parses and checks a message from the bus; `None` when it is malformed.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let control: Self = serde_json::from_slice(bytes).ok()?;
        let ok = match &control {
            Self::Subscribe { user, channel } | Self::Unsubscribe { user, channel } => {
                name_ok(user) && name_ok(channel)
            }
            Self::Disconnect {
                user,
                code,
                reason,
                except,
            } => {
                name_ok(user)
                    && custom_disconnect_ok(*code, reason)
                    && except.as_deref().is_none_or(name_ok)
            }
        };
        ok.then_some(control)
    }

    /// The message as the bus carries it.
    pub(crate) fn to_bytes(&self) -> bytes::Bytes {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

/// A survey: what every node reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Question {
    /// List the channels with local subscribers (with this pattern, when set).
    #[serde(default)]
    pub(crate) channels: bool,
    /// Only channels matching this pattern (`*` any run of characters, `?` one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pattern: Option<String>,
    /// Commands POSTed for an emulated connection (`POST /stream/{session}`): the node
    /// holding the session queues them and says so in [`Report::delivered`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deliver: Option<Deliver>,
    /// A long poll that reached another node (`GET /poll/{session}`): the node holding the
    /// session answers what is queued after `last` in [`Report::polled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) poll: Option<PollAsk>,
}

/// A poll for the long-polling session `session`, having received up to message `last`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollAsk {
    /// The session id.
    pub(crate) session: String,
    /// The last message number received.
    pub(crate) last: u64,
}

/// Commands for the emulated connection `session`, one `herald.v1` command per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Deliver {
    /// The session id.
    pub(crate) session: String,
    /// The POSTed body.
    pub(crate) commands: String,
}

impl Question {
    /// Parses a question from the bus; `None` when it is malformed.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let question: Self = serde_json::from_slice(bytes).ok()?;
        let deliver_ok = question
            .deliver
            .as_ref()
            .is_none_or(|d| name_ok(&d.session));
        let poll_ok = question.poll.as_ref().is_none_or(|p| name_ok(&p.session));
        (question.pattern.as_deref().is_none_or(name_ok) && deliver_ok && poll_ok)
            .then_some(question)
    }

    /// The question as the bus carries it.
    pub(crate) fn to_bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

/// One node's answer to a [`Question`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Report {
    /// The node's id (the prefix of its client ids).
    pub(crate) node: String,
    /// The hub's version.
    pub(crate) version: String,
    /// Its open WebSocket connections.
    pub(crate) connections: u64,
    /// With `channels`: channels with local subscribers, and how many.
    #[serde(default)]
    pub(crate) channels: Vec<(String, u64)>,
    /// Whether more than [`MAX_LISTED`] channels matched.
    #[serde(default)]
    pub(crate) truncated: bool,
    /// With `deliver`: what this node did with the commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivered: Option<crate::transport::stream::Posted>,
    /// With `poll`: the session's queued messages, or why there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) polled: Option<crate::transport::poll::Polled>,
}

impl Report {
    /// Parses an answer from the bus; `None` when it is malformed.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let report: Self = serde_json::from_slice(bytes).ok()?;
        (report.channels.len() <= MAX_LISTED && name_ok(&report.node)).then_some(report)
    }
}

fn name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME
}

/// Whether the server API may close connections with `code` and `reason`: an application
/// code (4000–4999) and a short printable ASCII reason.
pub(crate) fn custom_disconnect_ok(code: u16, reason: &str) -> bool {
    (4000..=4999).contains(&code)
        && reason.len() <= MAX_REASON
        && reason.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// Custom close reasons, each kept once. A close reason is `&'static str` ([`Disconnect`]):
/// a node keeps each distinct custom reason once, at most [`MAX_REASONS`] of them (a few
/// KiB); past that, new reasons close with the default reason of [`Disconnect::TERMINATED`]
/// and the given code.
#[derive(Debug, Default)]
pub(crate) struct Reasons {
    known: Mutex<HashSet<&'static str>>,
}

impl Reasons {
    /// The close for a checked custom code and reason.
    pub(crate) fn disconnect(&self, code: u16, reason: &str) -> Disconnect {
        let default = Disconnect::TERMINATED.reason;
        if reason == default {
            return Disconnect::new(code, default);
        }
        Disconnect::new(code, self.intern(reason).unwrap_or(default))
    }

    fn intern(&self, reason: &str) -> Option<&'static str> {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(kept) = known.get(reason) {
            return Some(kept);
        }
        if known.len() >= MAX_REASONS {
            return None;
        }
        // Leaked on purpose, and bounded: at most MAX_REASONS strings of MAX_REASON bytes
        // per node.
        let leaked: &'static str = Box::leak(reason.to_owned().into_boxed_str());
        known.insert(leaked);
        Some(leaked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_message_round_trips_and_malformed_ones_are_refused() {
        let message = Control::Disconnect {
            user: "ann".into(),
            code: 4504,
            reason: "terminated".into(),
            except: Some("n-1".into()),
        };
        assert_eq!(Control::parse(&message.to_bytes()), Some(message));
        for bad in [
            &b"{"[..],
            br#"{"op":"explode","user":"a"}"#,
            br#"{"op":"subscribe","user":"","channel":"c"}"#,
            br#"{"op":"disconnect","user":"a","code":1000,"reason":""}"#,
            br#"{"op":"disconnect","user":"a","code":4100,"reason":"\u0007"}"#,
            br#"{"op":"subscribe","user":"a","channel":"c","extra":1}"#,
        ] {
            assert_eq!(
                Control::parse(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn custom_codes_are_application_codes_with_short_ascii_reasons() {
        assert!(custom_disconnect_ok(4000, "bye"));
        assert!(custom_disconnect_ok(4999, ""));
        assert!(!custom_disconnect_ok(3999, "bye"));
        assert!(!custom_disconnect_ok(5000, "bye"));
        assert!(!custom_disconnect_ok(4100, &"x".repeat(MAX_REASON + 1)));
        assert!(!custom_disconnect_ok(4100, "é"));
    }

    #[test]
    fn custom_reasons_are_kept_once_and_bounded() {
        let reasons = Reasons::default();
        let first = reasons.disconnect(4100, "banned");
        let again = reasons.disconnect(4100, "banned");
        assert!(std::ptr::eq(first.reason, again.reason));
        for n in 0..MAX_REASONS * 2 {
            let d = reasons.disconnect(4100, &format!("r{n}"));
            assert!(d.reason == format!("r{n}") || d.reason == Disconnect::TERMINATED.reason);
        }
        let past = reasons.disconnect(4100, "one too many");
        assert_eq!(
            (past.code, past.reason),
            (4100, Disconnect::TERMINATED.reason)
        );
    }
}
