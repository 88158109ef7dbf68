//! The HTTP API's request authentication: Pusher's signed query.
//!
//! A request carries `auth_key` (the app's key), `auth_timestamp` (Unix seconds, within
//! `pusher.timestamp_window` of the server's clock), `auth_version=1.0`, `body_md5` when it
//! has a body (the hex MD5 of exactly the bytes sent), and `auth_signature`, the HMAC of
//! `METHOD\nPATH\nQUERY` ([`sign::api_message`]). Each refusal is a 401 (a 400 for a
//! malformed query) with a short reason, counted in `herald_pusher_refusals_total`.

use super::{App, sign};
use crate::hub::Hub;
use axum::http::{Method, StatusCode, Uri};
use std::time::{SystemTime, UNIX_EPOCH};

/// Most query parameters an API request may carry: Pusher's use at most seven.
const MAX_PARAMS: usize = 32;

/// Why a request was refused: status, metric reason, message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal(
    pub(crate) StatusCode,
    pub(crate) &'static str,
    pub(crate) &'static str,
);

/// A request whose query is signed: its parameters, decoded, and the body MD5 it announced.
#[derive(Debug)]
pub(crate) struct Signed {
    pub(crate) params: Vec<(String, String)>,
    body_md5: Option<String>,
}

impl Signed {
    /// Whether `body` is what the signed query announced (no `body_md5`: an empty body).
    ///
    /// # Errors
    /// 401 when it is not.
    pub(crate) fn check_body(&self, body: &[u8]) -> Result<(), Refusal> {
        let ok = match &self.body_md5 {
            Some(md5) => md5.eq_ignore_ascii_case(&sign::body_md5(body)),
            None => body.is_empty(),
        };
        if ok {
            Ok(())
        } else {
            let message = "body_md5 does not match the body";
            Err(Refusal(StatusCode::UNAUTHORIZED, "api_auth", message))
        }
    }
}

/// The query's parameters once the signature over them checks out: from the head alone, so
/// a request that is not signed is refused before a byte of its body is read.
///
/// # Errors
/// 400 for a query with too many parameters; 401 for a wrong key, version or signature, and
/// for a timestamp outside the window.
pub(crate) fn verify(hub: &Hub, app: &App, method: &Method, uri: &Uri) -> Result<Signed, Refusal> {
    let query = uri.query().unwrap_or("");
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .take(MAX_PARAMS + 1)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if params.len() > MAX_PARAMS {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "api_query",
            "too many parameters",
        ));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let unauthorized = |reason, message| Err(Refusal(StatusCode::UNAUTHORIZED, reason, message));
    if get("auth_key") != Some(app.config.key.as_str()) {
        return unauthorized("api_auth", "unknown auth_key");
    }
    if get("auth_version") != Some("1.0") {
        return unauthorized("api_auth", "auth_version must be 1.0");
    }
    let window = hub.config.pusher.timestamp_window.as_secs();
    let fresh = get("auth_timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .is_some_and(|t| now().abs_diff(t) <= window);
    if !fresh {
        return unauthorized("api_timestamp", "auth_timestamp outside the allowed window");
    }
    let message = sign::api_message(method.as_str(), uri.path(), &params);
    let signature = get("auth_signature").unwrap_or("");
    if !sign::verify_hex(&app.config.secret, &message, signature) {
        return unauthorized("api_auth", "invalid auth_signature");
    }
    let body_md5 = get("body_md5").map(str::to_owned);
    Ok(Signed { params, body_md5 })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HubConfig;
    use crate::config::PusherApp;

    fn hub() -> (std::sync::Arc<Hub>, std::sync::Arc<App>) {
        let mut config = HubConfig::default();
        config.pusher.apps.push(PusherApp {
            id: "1".into(),
            key: "k".into(),
            secret: "s".into(),
            client_events: false,
            namespace: None,
            webhook_url: None,
            limits: crate::config::PusherLimits::default(),
        });
        let hub = Hub::new(config).unwrap();
        let app = hub.pusher.by_id("1").unwrap().clone();
        (hub, app)
    }

    fn signed(path: &str, timestamp: u64, body: &[u8]) -> Uri {
        let mut params = vec![
            ("auth_key".to_owned(), "k".to_owned()),
            ("auth_timestamp".to_owned(), timestamp.to_string()),
            ("auth_version".to_owned(), "1.0".to_owned()),
        ];
        if !body.is_empty() {
            params.push(("body_md5".into(), sign::body_md5(body)));
        }
        let signature = sign::hex_hmac("s", &sign::api_message("POST", path, &params));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{path}?{}&auth_signature={signature}", query.join("&"))
            .parse()
            .unwrap()
    }

    #[test]
    fn a_signed_request_passes_and_any_change_is_refused_with_401() {
        let (hub, app) = hub();
        let body = br#"{"name":"e","channel":"c","data":"{}"}"#;
        let uri = signed("/apps/1/events", now(), body);
        let signed = verify(&hub, &app, &Method::POST, &uri).unwrap();
        assert!(signed.check_body(body).is_ok());
        let changed = signed.check_body(b"{}").unwrap_err();
        assert_eq!(changed.0, StatusCode::UNAUTHORIZED);
        let get = verify(&hub, &app, &Method::GET, &uri).unwrap_err();
        assert_eq!(get.0, StatusCode::UNAUTHORIZED);
        let other_path: Uri = uri
            .to_string()
            .replace("/events", "/batch_events")
            .parse()
            .unwrap();
        assert!(verify(&hub, &app, &Method::POST, &other_path).is_err());
    }

    #[test]
    fn a_timestamp_outside_the_window_is_refused() {
        let (hub, app) = hub();
        let old = signed("/apps/1/channels", now() - 601, b"");
        let e = verify(&hub, &app, &Method::POST, &old).unwrap_err();
        assert_eq!(e.1, "api_timestamp");
        let ahead = signed("/apps/1/channels", now() + 601, b"");
        assert!(verify(&hub, &app, &Method::POST, &ahead).is_err());
        let near = signed("/apps/1/channels", now() - 590, b"");
        let near = verify(&hub, &app, &Method::POST, &near).unwrap();
        assert!(near.check_body(b"").is_ok());
    }
}
