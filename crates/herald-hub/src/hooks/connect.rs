//! The connect hook: the handshake is POSTed to `hooks.connect.url` as JSON and the
//! backend's answer becomes the connection's [`Identity`] or a refusal with its status.
//!
//! The call: `{"method","path","query","headers":{…the allow-listed ones…},"ip","protocol"}`.
//! The answer, at most [`MAX_ANSWER`] bytes with status 200: `{"allow": true, "user",
//! "channels", "subscribe", "publish", "subs", "expires"}` or `{"allow": false, "status",
//! "body"}`. Other fields (such as `info`) are accepted and not used.

use super::call::{Bounds, Caller, Failure};
use crate::auth::{Identity, patterns};
use crate::config::ConnectHookConfig;
use crate::fetch::FetchError;
use crate::metrics::Metrics;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use bytes::Bytes;
use herald_proto::handshake::Request;
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;

/// The largest answer read from the backend, bytes; a larger one is a failed call.
pub(crate) const MAX_ANSWER: usize = 64 * 1024;

/// The longest deny body passed on to the client, bytes; a longer one is cut at a character
/// boundary.
pub(crate) const MAX_DENY_BODY: usize = 1024;

/// The `hook` label of this hook's metrics.
const HOOK: &str = "connect";

/// What the backend decided.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Admit the connection with this identity.
    Allow(Identity),
    /// Refuse it with this status (always 4xx) and body.
    Deny {
        /// The HTTP status the client gets.
        status: StatusCode,
        /// The response body the client gets.
        body: String,
    },
}

/// The backend's answer as sent.
#[derive(Debug, Deserialize)]
struct Answer {
    allow: bool,
    #[serde(default)]
    user: String,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subs: Vec<String>,
    #[serde(default)]
    expires: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Option<String>,
}

/// Reads the backend's answer into a verdict. A deny's status must be 4xx (anything else is
/// 403) and its body is cut to [`MAX_DENY_BODY`].
///
/// # Errors
/// [`FetchError::Malformed`] when the answer is not JSON of the expected shape.
pub(crate) fn verdict(answer: &[u8]) -> Result<Verdict, FetchError> {
    let a: Answer =
        serde_json::from_slice(answer).map_err(|e| FetchError::Malformed(e.to_string()))?;
    if !a.allow {
        let status = a
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(StatusCode::is_client_error)
            .unwrap_or(StatusCode::FORBIDDEN);
        let mut body = a.body.unwrap_or_else(|| "refused\n".to_owned());
        if body.len() > MAX_DENY_BODY {
            let mut end = MAX_DENY_BODY;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body.truncate(end);
        }
        return Ok(Verdict::Deny { status, body });
    }
    let mut subscribe = patterns(&a.channels);
    subscribe.extend(patterns(&a.subscribe));
    let mut publish = patterns(&a.channels);
    publish.extend(patterns(&a.publish));
    Ok(Verdict::Allow(Identity {
        user: a.user,
        subscribe: subscribe.into(),
        publish: publish.into(),
        expires: a.expires,
        subs: a.subs,
        anonymous: false,
        from_hook: true,
    }))
}

/// What the connect hook is told about a connection's opening request, whatever its
/// transport: a WebSocket handshake or an SSE `GET`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Handshake<'a> {
    /// The request path.
    pub(crate) path: &'a str,
    /// The query string, if any.
    pub(crate) query: Option<&'a str>,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The WebSocket subprotocols offered (none on other transports).
    pub(crate) protocols: &'a [String],
}

impl<'a> From<&'a Request> for Handshake<'a> {
    fn from(request: &'a Request) -> Self {
        Self {
            path: request.path(),
            query: request.query(),
            headers: request.headers(),
            protocols: request.subprotocols(),
        }
    }
}

/// The call's JSON body for a handshake from `ip`, with the headers named in `allowed`.
pub(crate) fn call_body(request: Handshake<'_>, ip: IpAddr, allowed: &[HeaderName]) -> Bytes {
    let headers: serde_json::Map<String, serde_json::Value> = allowed
        .iter()
        .filter_map(|name| Some((name.to_string(), joined(request.headers, name)?.into())))
        .collect();
    let body = serde_json::json!({
        "method": "GET",
        "path": request.path,
        "query": request.query.unwrap_or(""),
        "headers": headers,
        "ip": ip.to_string(),
        "protocol": request.protocols,
    });
    Bytes::from(body.to_string())
}

/// Every value of `name` that is text, joined as HTTP joins repeats (`; ` for cookies).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let separator = if name == axum::http::header::COOKIE {
        "; "
    } else {
        ", "
    };
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(separator))
}

/// The connect hook of one node: where to call, and the bounds on calling.
#[derive(Debug)]
pub(crate) struct ConnectHook {
    caller: Caller,
    headers: Vec<HeaderName>,
    /// Whether a failed or skipped call applies the anonymous policy (else 503).
    pub(crate) fail_open: bool,
}

impl ConnectHook {
    /// The hook configured in `config`; `None` without `hooks.connect.url`.
    /// (`HubConfig::validate` refused a URL or a header name that does not parse.)
    pub(crate) fn new(config: &ConnectHookConfig, metrics: Arc<Metrics>) -> Option<Self> {
        let bounds = Bounds {
            timeout: config.timeout,
            max_in_flight: config.max_in_flight,
            breaker_failures: config.breaker_failures,
            breaker_cooldown: config.breaker_cooldown,
            max_answer: MAX_ANSWER,
        };
        let caller = Caller::new(
            HOOK,
            config.url.as_deref(),
            "hooks.connect.url",
            bounds,
            metrics,
        )?;
        Some(Self {
            caller,
            headers: config
                .headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            fail_open: config.fail_open,
        })
    }

    /// Asks the backend about the handshake `request` from `ip`; counts the outcome.
    ///
    /// # Errors
    /// [`Failure`]: no verdict; the caller applies the failure rule.
    pub(crate) async fn admit(
        &self,
        request: Handshake<'_>,
        ip: IpAddr,
    ) -> Result<Verdict, Failure> {
        let body = call_body(request, ip, &self.headers);
        self.caller
            .post(body, verdict, |v| match v {
                Verdict::Allow(_) => "allow",
                Verdict::Deny { .. } => "deny",
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_grants_the_channels_to_both_and_the_lists_to_each() {
        let answer = br#"{"allow":true,"user":"ann","info":{"name":"Ann"},"channels":["chat:*"],
            "subscribe":["news"],"publish":["inbox"],"subs":["alerts"],"expires":4102444800}"#;
        let Ok(Verdict::Allow(id)) = verdict(answer) else {
            panic!("an allow");
        };
        assert_eq!(id.user, "ann");
        assert!(id.can_subscribe("chat:1") && id.can_publish("chat:1"));
        assert!(id.can_subscribe("news") && !id.can_publish("news"));
        assert!(id.can_publish("inbox") && !id.can_subscribe("inbox"));
        assert_eq!(id.subs, ["alerts"]);
        assert_eq!(id.expires, Some(4_102_444_800));
        assert!(!id.anonymous);
    }

    #[test]
    fn a_deny_keeps_a_4xx_status_and_turns_any_other_into_403() {
        for (status, expected) in [(401, 401), (429, 429), (500, 403), (302, 403), (99, 403)] {
            let answer = format!(r#"{{"allow":false,"status":{status},"body":"no"}}"#);
            let Ok(Verdict::Deny { status, body }) = verdict(answer.as_bytes()) else {
                panic!("a deny");
            };
            assert_eq!(status.as_u16(), expected);
            assert_eq!(body, "no");
        }
        let Ok(Verdict::Deny { status, .. }) = verdict(br#"{"allow":false}"#) else {
            panic!("a deny");
        };
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_long_deny_body_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_DENY_BODY);
        let answer = serde_json::json!({"allow": false, "body": long}).to_string();
        let Ok(Verdict::Deny { body, .. }) = verdict(answer.as_bytes()) else {
            panic!("a deny");
        };
        assert!(body.len() <= MAX_DENY_BODY && body.len() > MAX_DENY_BODY - 2);
    }

    #[test]
    fn an_answer_without_allow_or_not_json_is_malformed() {
        for answer in [&b"{}"[..], b"null", b"<html>", b"{\"allow\":\"yes\"}", b""] {
            assert!(
                matches!(verdict(answer), Err(FetchError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
