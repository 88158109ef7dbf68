//! The hooks called for a client's commands: subscribe and publish (per namespace,
//! `subscribe_hook`/`publish_hook`) and `rpc`. Each POSTs JSON to its URL through the shared
//! [`Caller`] and turns the answer, or its absence, into the reply a client sees.
//!
//! - subscribe: `{"client","user","channel","namespace"}` → `{"allow": true, "data"}` or
//!   `{"allow": false, "reason"}`.
//! - publish: `{"client","user","channel","data"}` (plain text as a JSON string, plain
//!   binary as base64 with `"encoding": "base64"`) → `{"allow": true}`, `{"allow": true,
//!   "data"}` (publish `data` instead) or `{"allow": false, "reason"}`.
//! - rpc: `{"client","user","method","data"}` → `{"data"}` or `{"error": {"code",
//!   "message"}}`, `code` in [`APPLICATION_CODES`].
//!
//! A deny is 103 with the backend's reason; a failed or skipped call is 109 unless the hook
//! is `fail_open` (an `rpc` has no way to proceed, so it is always 109).

use super::call::{Bounds, Caller, Failure};
use crate::broker::Payload;
use crate::config::{CommandHookConfig, HooksConfig};
use crate::fetch::FetchError;
use crate::metrics::Metrics;
use base64::Engine as _;
use bytes::Bytes;
use herald_hub_protocol::{ClientInfo, ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The error codes an RPC backend may answer with; another code is a malformed answer.
pub(crate) const APPLICATION_CODES: RangeInclusive<u16> = 1000..=1999;

/// The longest reason or message passed on to the client, bytes; a longer one is cut at a
/// character boundary.
pub(crate) const MAX_REASON: usize = 256;

/// One hook and its failure rule.
#[derive(Debug)]
pub(super) struct Hook {
    pub(super) caller: Caller,
    fail_open: bool,
}

impl Hook {
    /// The hook `hook` (its metrics label) configured at `[hooks.NAME]`, whose URL key is
    /// `key`; `None` without a URL.
    fn new(
        hook: &'static str,
        key: &str,
        config: &CommandHookConfig,
        metrics: &Arc<Metrics>,
    ) -> Option<Self> {
        let bounds = Bounds {
            timeout: config.timeout,
            max_in_flight: config.max_in_flight,
            breaker_failures: config.breaker_failures,
            breaker_cooldown: config.breaker_cooldown,
            max_answer: config.max_response,
        };
        let caller = Caller::new(hook, config.url.as_deref(), key, bounds, metrics.clone())?;
        Some(Self {
            caller,
            fail_open: config.fail_open,
        })
    }

    /// Asks about a subscribe or publish: `Ok(Some(data))` allowed with data, `Ok(None)`
    /// allowed without (or failed open).
    async fn ask(&self, body: Bytes) -> Result<Option<Box<RawValue>>, ErrorBody> {
        match self.caller.post(body, decision, Decision::label).await {
            Ok(Decision::Allow(data)) => Ok(data),
            Ok(Decision::Deny(reason)) => Err(ErrorBody::with_message(
                ErrorCode::PERMISSION_DENIED,
                reason,
            )),
            Err(_) if self.fail_open => Ok(None),
            Err(failure) => Err(unavailable(&failure)),
        }
    }
}

fn unavailable(failure: &Failure) -> ErrorBody {
    let message = match failure {
        Failure::Overloaded => "backend overloaded",
        Failure::OpenCircuit | Failure::Call(_) => "backend unavailable",
    };
    ErrorBody::with_message(ErrorCode::UNAVAILABLE, message)
}

/// A subscribe or publish hook's answer.
#[derive(Debug)]
enum Decision {
    Allow(Option<Box<RawValue>>),
    Deny(String),
}

impl Decision {
    fn label(&self) -> &'static str {
        match self {
            Self::Allow(_) => "allow",
            Self::Deny(_) => "deny",
        }
    }
}

#[derive(Deserialize)]
struct DecisionAnswer {
    allow: bool,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    reason: Option<String>,
}

pub(super) fn malformed(e: impl std::fmt::Display) -> FetchError {
    FetchError::Malformed(e.to_string())
}

fn decision(answer: &[u8]) -> Result<Decision, FetchError> {
    let a: DecisionAnswer = serde_json::from_slice(answer).map_err(malformed)?;
    if a.allow {
        return Ok(Decision::Allow(a.data));
    }
    let reason = a.reason.unwrap_or_else(|| "permission denied".to_owned());
    Ok(Decision::Deny(cut(reason)))
}

/// An RPC backend's answer.
#[derive(Debug)]
enum RpcAnswer {
    Data(Box<RawValue>),
    Error(ErrorBody),
}

#[derive(Deserialize)]
struct RpcAnswerJson {
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: u16,
    #[serde(default)]
    message: String,
}

fn rpc_answer(answer: &[u8]) -> Result<RpcAnswer, FetchError> {
    let a: RpcAnswerJson = serde_json::from_slice(answer).map_err(malformed)?;
    match (a.data, a.error) {
        (_, Some(e)) if !APPLICATION_CODES.contains(&e.code) => Err(malformed(format!(
            "error code {} outside 1000-1999",
            e.code
        ))),
        (_, Some(e)) => Ok(RpcAnswer::Error(ErrorBody {
            code: ErrorCode(e.code),
            message: cut(e.message),
            temporary: false,
        })),
        (Some(data), None) => Ok(RpcAnswer::Data(data)),
        (None, None) => Err(malformed("neither data nor error")),
    }
}

/// `text` cut to [`MAX_REASON`] bytes at a character boundary.
fn cut(mut text: String) -> String {
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[derive(Serialize)]
struct SubscribeCall<'a> {
    client: &'a str,
    user: &'a str,
    channel: &'a str,
    namespace: &'a str,
}

#[derive(Serialize)]
struct PublishCall<'a> {
    client: &'a str,
    user: &'a str,
    channel: &'a str,
    data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
}

#[derive(Serialize)]
struct RpcCall<'a> {
    client: &'a str,
    user: &'a str,
    method: &'a str,
    data: &'a RawValue,
}

pub(super) fn json(value: &impl Serialize) -> Bytes {
    // These structs hold strings and JSON values only: serialising cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// A payload as the publish hook's `data`: JSON as is, text as a JSON string, bytes as a
/// base64 string (with `"encoding": "base64"`).
fn payload_json(payload: &Payload) -> Result<(Box<RawValue>, Option<&'static str>), ErrorBody> {
    let (text, encoding) = match payload {
        Payload::Json(b) => (String::from_utf8_lossy(b).into_owned(), None),
        Payload::Text(b) => (json_string(&String::from_utf8_lossy(b)), None),
        Payload::Binary(b) => (
            json_string(&base64::engine::general_purpose::STANDARD.encode(b)),
            Some("base64"),
        ),
    };
    let raw = RawValue::from_string(text)
        .map_err(|_| ErrorBody::with_message(ErrorCode::BAD_REQUEST, "data is not JSON"))?;
    Ok((raw, encoding))
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The command hooks of one node.
#[derive(Debug)]
pub(crate) struct CommandHooks {
    subscribe: Option<Hook>,
    publish: Option<Hook>,
    rpc: Option<Hook>,
    pub(super) refresh: Option<Hook>,
}

impl CommandHooks {
    /// The hooks whose URL is set in `config`.
    pub(crate) fn new(config: &HooksConfig, metrics: &Arc<Metrics>) -> Self {
        Self {
            subscribe: Hook::new(
                "subscribe",
                "hooks.subscribe.url",
                &config.subscribe,
                metrics,
            ),
            publish: Hook::new("publish", "hooks.publish.url", &config.publish, metrics),
            rpc: Hook::new("rpc", "hooks.rpc.url", &config.rpc, metrics),
            refresh: Hook::new("refresh", "hooks.refresh.url", &config.refresh, metrics),
        }
    }

    /// Asks the subscribe hook whether `who` may subscribe to `channel` (in `namespace`,
    /// empty for the default one). `Ok(data)`: proceed, with the backend's data if any.
    ///
    /// # Errors
    /// 103 with the backend's reason; 109 when the call failed (unless `fail_open`).
    pub(crate) async fn subscribe(
        &self,
        who: &ClientInfo,
        channel: &str,
        namespace: &str,
    ) -> Result<Option<Box<RawValue>>, ErrorBody> {
        let Some(hook) = &self.subscribe else {
            return Ok(None);
        };
        let body = json(&SubscribeCall {
            client: &who.client,
            user: &who.user,
            channel,
            namespace,
        });
        hook.ask(body).await
    }

    /// Asks the publish hook about `payload` from `who` on `channel`. `Ok(None)`: publish it
    /// as is; `Ok(Some(data))`: publish `data` instead.
    ///
    /// # Errors
    /// 103 with the backend's reason; 109 when the call failed (unless `fail_open`).
    pub(crate) async fn publish(
        &self,
        who: &ClientInfo,
        channel: &str,
        payload: &Payload,
    ) -> Result<Option<Box<RawValue>>, ErrorBody> {
        let Some(hook) = &self.publish else {
            return Ok(None);
        };
        let (data, encoding) = payload_json(payload)?;
        let body = json(&PublishCall {
            client: &who.client,
            user: &who.user,
            channel,
            data: &data,
            encoding,
        });
        hook.ask(body).await
    }

    /// Forwards an `rpc` from `who` to the backend and returns its data.
    ///
    /// # Errors
    /// 102 without `hooks.rpc.url`; the backend's error (code 1000–1999); 109 when the
    /// call failed or was skipped.
    pub(crate) async fn rpc(
        &self,
        who: &ClientInfo,
        method: &str,
        data: &RawValue,
    ) -> Result<Box<RawValue>, ErrorBody> {
        let Some(hook) = &self.rpc else {
            return Err(ErrorBody::new(ErrorCode::UNKNOWN_METHOD));
        };
        let body = json(&RpcCall {
            client: &who.client,
            user: &who.user,
            method,
            data,
        });
        let label = |a: &RpcAnswer| match a {
            RpcAnswer::Data(_) => "ok",
            RpcAnswer::Error(_) => "error_reply",
        };
        match hook.caller.post(body, rpc_answer, label).await {
            Ok(RpcAnswer::Data(data)) => Ok(data),
            Ok(RpcAnswer::Error(e)) => Err(e),
            Err(failure) => Err(unavailable(&failure)),
        }
    }
}

/// A plain-mode publication from the publish hook's replacement: a JSON string is text
/// again, any other JSON value is published as JSON.
pub(crate) fn plain_payload(data: &RawValue) -> Payload {
    match serde_json::from_str::<String>(data.get()) {
        Ok(text) => Payload::Text(Bytes::from(text)),
        Err(_) => Payload::Json(Bytes::copy_from_slice(data.get().as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deny_without_reason_says_permission_denied_and_a_long_one_is_cut() {
        let Ok(Decision::Deny(r)) = decision(br#"{"allow":false}"#) else {
            panic!("a deny");
        };
        assert_eq!(r, "permission denied");
        let long = serde_json::json!({"allow": false, "reason": "é".repeat(MAX_REASON)});
        let Ok(Decision::Deny(r)) = decision(long.to_string().as_bytes()) else {
            panic!("a deny");
        };
        assert!(r.len() <= MAX_REASON && r.len() > MAX_REASON - 2);
    }

    #[test]
    fn an_allow_keeps_its_data_byte_for_byte() {
        let Ok(Decision::Allow(Some(d))) = decision(br#"{"allow":true,"data":{"a": 1}}"#) else {
            panic!("an allow with data");
        };
        assert_eq!(d.get(), r#"{"a": 1}"#);
        assert!(matches!(
            decision(br#"{"allow":true}"#),
            Ok(Decision::Allow(None))
        ));
        assert!(decision(b"{}").is_err() && decision(b"<html>").is_err());
    }

    #[test]
    fn an_rpc_error_outside_the_application_range_is_malformed() {
        let Ok(RpcAnswer::Error(e)) = rpc_answer(br#"{"error":{"code":1404,"message":"no"}}"#)
        else {
            panic!("an error");
        };
        assert_eq!(
            (e.code, e.message.as_str(), e.temporary),
            (ErrorCode(1404), "no", false)
        );
        for bad in [
            &br#"{"error":{"code":103}}"#[..],
            br#"{"error":{"code":2000}}"#,
            b"{}",
        ] {
            assert!(rpc_answer(bad).is_err());
        }
    }

    #[test]
    fn plain_payloads_go_out_as_json_strings_or_base64() {
        let (d, e) = payload_json(&Payload::Text(Bytes::from_static(b"a\"b"))).unwrap();
        assert_eq!((d.get(), e), (r#""a\"b""#, None));
        let (d, e) = payload_json(&Payload::Binary(Bytes::from_static(&[0xff, 0]))).unwrap();
        assert_eq!((d.get(), e), (r#""/wA=""#, Some("base64")));
        let raw = RawValue::from_string(r#""hi""#.into()).unwrap();
        assert!(matches!(plain_payload(&raw), Payload::Text(b) if &b[..] == b"hi"));
    }
}
