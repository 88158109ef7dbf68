//! Authentication at the handshake: a JWT from `Authorization: Bearer`, a cookie or a query
//! parameter, verified with HS256, RS256 or ES256; its claims name the channels the
//! connection may subscribe and publish to.

use crate::config::AuthConfig;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

/// Who a connection is and what it may do.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The user id (`sub`), empty for anonymous connections.
    pub user: String,
    /// Channel patterns it may subscribe to (`*` any run of characters, `?` one).
    pub subscribe: Vec<WildMatch>,
    /// Channel patterns it may publish to.
    pub publish: Vec<WildMatch>,
    /// When the token expires (seconds since the epoch); the connection is closed then.
    pub expires: Option<u64>,
}

impl Identity {
    /// Whether it may subscribe to `channel`.
    pub fn can_subscribe(&self, channel: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(channel))
    }

    /// Whether it may publish to `channel`.
    pub fn can_publish(&self, channel: &str) -> bool {
        self.publish.iter().any(|p| p.matches(channel))
    }
}

/// The claims Herald reads (and `herald token` writes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Channel patterns for subscribe and publish both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Channel patterns for subscribe only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    /// Channel patterns for publish only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
}

/// Why a handshake was refused with 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No token, and anonymous access is off.
    #[error("missing token")]
    Missing,
    /// The token failed verification (signature, format, algorithm).
    #[error("invalid token")]
    Invalid,
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
}

/// Decides who a connection is from its credentials.
pub trait Authenticator: Send + Sync + 'static {
    /// Verifies `token` (or its absence).
    ///
    /// # Errors
    /// [`AuthError`]: the handshake is refused with 401.
    fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError>;
}

/// JWT verification with the configured keys and anonymous policy.
pub struct JwtAuthenticator {
    keys: Vec<(DecodingKey, Algorithm)>,
    anonymous: Option<Identity>,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("keys", &self.keys.len())
            .field("anonymous", &self.anonymous.is_some())
            .finish()
    }
}

/// A key file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct KeyError {
    /// The file.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

impl JwtAuthenticator {
    /// Loads the keys named in `config`.
    ///
    /// # Errors
    /// [`KeyError`] when a key file cannot be read or parsed.
    pub fn new(config: &AuthConfig) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.hs256_secret {
            keys.push((
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            ));
        }
        if let Some(path) = &config.rs256_public_key {
            keys.push((load_key(path, DecodingKey::from_rsa_pem)?, Algorithm::RS256));
        }
        if let Some(path) = &config.es256_public_key {
            keys.push((load_key(path, DecodingKey::from_ec_pem)?, Algorithm::ES256));
        }
        let anonymous = config.anonymous().then(|| Identity {
            user: String::new(),
            subscribe: patterns(&config.anonymous_subscribe),
            publish: patterns(&config.anonymous_publish),
            expires: None,
        });
        Ok(Self { keys, anonymous })
    }
}

/// Reads a PEM public key file with `parse`.
fn load_key(
    path: &std::path::Path,
    parse: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
) -> Result<DecodingKey, KeyError> {
    let error = |reason: String| KeyError {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    parse(&pem).map_err(|e| error(e.to_string()))
}

fn patterns(list: &[String]) -> Vec<WildMatch> {
    list.iter().map(|p| WildMatch::new(p)).collect()
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return self.anonymous.clone().ok_or(AuthError::Missing);
        };
        let mut last = AuthError::Invalid;
        for (key, algorithm) in &self.keys {
            let mut validation = Validation::new(*algorithm);
            validation.leeway = 0;
            validation.validate_aud = false;
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    let c = data.claims;
                    let mut subscribe = patterns(&c.channels);
                    subscribe.extend(patterns(&c.subscribe));
                    let mut publish = patterns(&c.channels);
                    publish.extend(patterns(&c.publish));
                    return Ok(Identity {
                        user: c.sub,
                        subscribe,
                        publish,
                        expires: Some(c.exp),
                    });
                }
                Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                    last = AuthError::Expired;
                }
                Err(_) => {}
            }
        }
        Err(last)
    }
}

/// Issues an HS256 token (for `herald token` and tests).
///
/// # Errors
/// When signing fails (it does not with an HMAC key).
pub fn issue_hs256(secret: &str, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Finds the token in a handshake: `Authorization: Bearer`, then the cookie, then the query
/// parameter.
pub fn find_token<'a>(
    headers: &'a http::HeaderMap,
    query: Option<&'a str>,
    config: &AuthConfig,
) -> Option<String> {
    if let Some(bearer) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    let cookie = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == config.cookie)
        .map(|(_, value)| value.to_owned());
    if cookie.is_some() {
        return cookie;
    }
    query.and_then(|q| query_param(q, &config.query_param))
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secret: Option<&str>) -> AuthConfig {
        AuthConfig {
            hs256_secret: secret.map(str::to_owned),
            ..AuthConfig::default()
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "ann".into(),
            exp,
            channels: vec!["chat:*".into()],
            subscribe: vec!["news".into()],
            publish: vec![],
        }
    }

    #[test]
    fn valid_token_grants_its_channel_patterns() {
        let auth = JwtAuthenticator::new(&config(Some("s3"))).unwrap();
        let token = issue_hs256("s3", &claims(now() + 60)).unwrap();
        let id = auth.authenticate(Some(&token)).unwrap();
        assert_eq!(id.user, "ann");
        assert!(id.can_subscribe("chat:1") && id.can_publish("chat:1"));
        assert!(id.can_subscribe("news") && !id.can_publish("news"));
        assert!(!id.can_subscribe("admin"));
    }

    #[test]
    fn missing_token_with_a_secret_is_refused_unless_anonymous_is_allowed() {
        let auth = JwtAuthenticator::new(&config(Some("s3"))).unwrap();
        assert_eq!(auth.authenticate(None).unwrap_err(), AuthError::Missing);
        let mut open = config(Some("s3"));
        open.allow_anonymous = Some(true);
        let auth = JwtAuthenticator::new(&open).unwrap();
        assert_eq!(auth.authenticate(None).unwrap().user, "");
    }

    #[test]
    fn expired_and_forged_tokens_are_refused() {
        let auth = JwtAuthenticator::new(&config(Some("s3"))).unwrap();
        let expired = issue_hs256("s3", &claims(now() - 10)).unwrap();
        assert_eq!(
            auth.authenticate(Some(&expired)).unwrap_err(),
            AuthError::Expired
        );
        let forged = issue_hs256("other", &claims(now() + 60)).unwrap();
        assert_eq!(
            auth.authenticate(Some(&forged)).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            auth.authenticate(Some("x.y.z")).unwrap_err(),
            AuthError::Invalid
        );
    }

    #[test]
    fn token_is_found_in_header_cookie_or_query() {
        let cfg = AuthConfig::default();
        let mut headers = http::HeaderMap::new();
        assert_eq!(
            find_token(&headers, Some("a=1&token=q%2Bv"), &cfg).as_deref(),
            Some("q+v")
        );
        headers.insert(http::header::COOKIE, "x=1; herald_token=c".parse().unwrap());
        assert_eq!(
            find_token(&headers, Some("token=q"), &cfg).as_deref(),
            Some("c")
        );
        headers.insert(http::header::AUTHORIZATION, "Bearer h".parse().unwrap());
        assert_eq!(
            find_token(&headers, Some("token=q"), &cfg).as_deref(),
            Some("h")
        );
    }
}
