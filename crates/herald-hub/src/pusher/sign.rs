//! Pusher's signatures: HMAC-SHA256 with the app secret, hex-encoded.
//!
//! - A channel authorisation is `KEY:HEX(HMAC(secret, "SOCKET_ID:CHANNEL[:CHANNEL_DATA]"))`,
//!   a sign-in `KEY:HEX(HMAC(secret, "SOCKET_ID::user::USER_DATA"))`, made by the
//!   application's auth endpoint (the Pusher server SDKs' `authorizeChannel` and
//!   `authenticateUser`).
//! - An HTTP API request is signed over `METHOD\nPATH\nQUERY`, the query's parameters
//!   (without `auth_signature`) sorted by name and joined as `k=v&…`; a body is bound by
//!   its MD5 in `body_md5`.
//!
//! Comparisons run in constant time (`Mac::verify_slice`).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, message: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` fails only for fixed-size MACs.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(message);
    mac
}

/// The hex HMAC-SHA256 of `message` under `secret` (what an auth endpoint sends).
#[cfg(test)]
pub(crate) fn hex_hmac(secret: &str, message: &str) -> String {
    hex::encode(mac(secret, message.as_bytes()).finalize().into_bytes())
}

/// Whether `given` is `HEX(HMAC(secret, message))`, in constant time.
pub(crate) fn verify_hex(secret: &str, message: &str, given: &str) -> bool {
    let Ok(bytes) = hex::decode(given) else {
        return false;
    };
    mac(secret, message.as_bytes()).verify_slice(&bytes).is_ok()
}

/// Whether `auth` (`KEY:SIGNATURE`) signs `message` for the app with `key` and `secret`.
pub(crate) fn verify_auth(key: &str, secret: &str, message: &str, auth: &str) -> bool {
    match auth.split_once(':') {
        Some((k, signature)) => k == key && verify_hex(secret, message, signature),
        None => false,
    }
}

/// What a channel authorisation signs.
pub(crate) fn channel_message(socket_id: &str, channel: &str, data: Option<&str>) -> String {
    match data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The hex MD5 of a request body, as `body_md5` carries it.
pub(crate) fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// What an HTTP API request signs: `METHOD\nPATH\nk=v&…`, the parameters sorted by name,
/// `auth_signature` left out.
pub(crate) fn api_message(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "auth_signature")
        .collect();
    sorted.sort();
    let query: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}\n{path}\n{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pusher's documented example: key 278d425bdf160c739803, secret
    // 7ad3773142a6692b25b8, socket 1234.1234, channel private-foobar.
    #[test]
    fn a_private_channel_signature_matches_pushers_documented_example() {
        let message = channel_message("1234.1234", "private-foobar", None);
        let signature = hex_hmac("7ad3773142a6692b25b8", &message);
        assert_eq!(
            signature,
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        let auth = format!("278d425bdf160c739803:{signature}");
        assert!(verify_auth(
            "278d425bdf160c739803",
            "7ad3773142a6692b25b8",
            &message,
            &auth
        ));
        assert!(!verify_auth(
            "278d425bdf160c739803",
            "7ad3773142a6692b25b8",
            "1234.1234:private-other",
            &auth
        ));
        assert!(!verify_auth("k", "s", &message, "no-colon"));
        assert!(!verify_auth("k", "s", &message, "k:not-hex"));
    }

    #[test]
    fn api_requests_sign_their_sorted_query() {
        let params = vec![
            ("auth_version".to_owned(), "1.0".to_owned()),
            ("auth_key".to_owned(), "k".to_owned()),
            ("auth_signature".to_owned(), "x".to_owned()),
        ];
        assert_eq!(
            api_message("POST", "/apps/1/events", &params),
            "POST\n/apps/1/events\nauth_key=k&auth_version=1.0"
        );
        assert_eq!(body_md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
