//! Authentication at the handshake (and at `refresh`): a JWT from `Authorization: Bearer`, a
//! cookie or a query parameter, verified with HS256, RS256 or ES256 keys from the
//! configuration, or with RS256, ES256 and EdDSA keys from a JWKS URL (`auth.jwks_url`); its claims
//! name the channels the connection may subscribe and publish to.
//!
//! RFC 7519 §4.1: `exp` is required and `nbf` checked when present, both without leeway;
//! `iss` and `aud` are required and checked when `auth.issuer` / `auth.audience` are set.
//! Claims are only read, never used in arithmetic that could overflow: an `exp` of
//! `u64::MAX` is a token that does not expire.
//!
//! Public here: the [`Claims`] a token carries and [`issue_hs256`] to sign one (`herald token`,
//! tests), [`KeyError`] (in [`HubError`](crate::HubError)), and [`query_param`], the query
//! string reading that the token and plain-mode room lookups share. Verification itself is the
//! hub's, configured by [`AuthConfig`].

mod jwks;

use crate::config::AuthConfig;
use crate::metrics::Metrics;
use futures_util::future::BoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wildmatch::WildMatch;

/// Seconds of clock skew tolerated on `exp` and on `nbf` alike.
const LEEWAY: u64 = 0;

/// Channel patterns, shared: every tokenless connection has the same ones, and a copy
/// each would cost every such connection an allocation per pattern list.
pub(crate) type Patterns = Arc<[WildMatch]>;

/// Who a connection is and what it may do.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    /// The user id (`sub`), empty for anonymous connections.
    pub(crate) user: String,
    /// Channel patterns it may subscribe to (`*` any run of characters, `?` one).
    pub(crate) subscribe: Patterns,
    /// Channel patterns it may publish to.
    pub(crate) publish: Patterns,
    /// When the token expires (seconds since the epoch); the connection is closed then.
    pub(crate) expires: Option<u64>,
    /// Channels the server subscribes the connection to at connect (the `subs` claim).
    pub(crate) subs: Vec<String>,
    /// Let in without a token: its channels are each namespace's anonymous patterns
    /// (`namespace.rs`), `subscribe` and `publish` being the default namespace's.
    pub(crate) anonymous: bool,
    /// Admitted by the connect hook (not by a token): the refresh hook, when configured,
    /// extends its expiry.
    pub(crate) from_hook: bool,
}

impl Identity {
    /// Whether it may subscribe to `channel`.
    pub(crate) fn can_subscribe(&self, channel: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(channel))
    }

    /// Whether it may publish to `channel`.
    pub(crate) fn can_publish(&self, channel: &str) -> bool {
        self.publish.iter().any(|p| p.matches(channel))
    }
}

/// The claims Herald reads (and `herald token` writes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch (a fraction is dropped, RFC 7519 §2 NumericDate).
    #[serde(deserialize_with = "numeric_date")]
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
    /// Channels (names, not patterns) the server subscribes a protocol-mode connection to at
    /// connect, each announced with a `subscribed` push; they need no subscribe permission.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subs: Vec<String>,
}

/// Why a handshake was refused with 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum AuthError {
    /// No token, and anonymous access is off.
    #[error("missing token")]
    Missing,
    /// The token failed verification (signature, format, algorithm).
    #[error("invalid token")]
    Invalid,
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The token's `nbf` is still in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `auth.issuer` is set and the token's `iss` is missing or another.
    #[error("token from another issuer")]
    WrongIssuer,
    /// `auth.audience` is set and the token's `aud` is missing or does not contain it.
    #[error("token for another audience")]
    WrongAudience,
    /// The token's `kid` names no key of the JWKS (after a refetch, within its rate limit),
    /// or the set could not be fetched yet.
    #[error("unknown signing key")]
    UnknownKey,
}

impl AuthError {
    /// A short reason for a refusal (the 401's body, a `refresh` error's message).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing token",
            Self::Expired => "token expired",
            Self::UnknownKey => "unknown signing key",
            _ => "invalid token",
        }
    }
}

/// Decides who a connection is from its credentials.
pub(crate) trait Authenticator: Send + Sync + 'static {
    /// Verifies `token` (or its absence). It may wait for a key set fetch, never longer than
    /// that fetch's timeout.
    ///
    /// # Errors
    /// [`AuthError`]: the handshake is refused with 401.
    fn authenticate<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Identity, AuthError>>;
}

/// JWT verification with the configured keys and anonymous policy.
pub(crate) struct JwtAuthenticator {
    keys: Vec<(DecodingKey, Validation)>,
    jwks: Option<Arc<jwks::Jwks>>,
    audience: Option<String>,
    issuer: Option<String>,
    anonymous: Option<Identity>,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("keys", &self.keys.len())
            .field("jwks", &self.jwks.is_some())
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
    /// Loads the keys named in `config`; a JWKS is fetched later ([`start`](Self::start)).
    ///
    /// # Errors
    /// [`KeyError`] when a key file cannot be read or parsed.
    pub(crate) fn new(config: &AuthConfig, metrics: Arc<Metrics>) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.hs256_secret {
            keys.push((
                DecodingKey::from_secret(secret.as_bytes()),
                validation(Algorithm::HS256, config),
            ));
        }
        if let Some(path) = &config.rs256_public_key {
            let key = load_key(path, DecodingKey::from_rsa_pem)?;
            keys.push((key, validation(Algorithm::RS256, config)));
        }
        if let Some(path) = &config.es256_public_key {
            let key = load_key(path, DecodingKey::from_ec_pem)?;
            keys.push((key, validation(Algorithm::ES256, config)));
        }
        let anonymous = config.anonymous().then(|| Identity {
            user: String::new(),
            subscribe: patterns(&config.anonymous_subscribe_patterns()).into(),
            publish: patterns(&config.anonymous_publish_patterns()).into(),
            expires: None,
            subs: Vec::new(),
            anonymous: true,
            from_hook: false,
        });
        Ok(Self {
            keys,
            jwks: jwks::Jwks::new(config, metrics).map(Arc::new),
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            anonymous,
        })
    }

    /// Starts the first JWKS fetch in the background, when a set is configured and a tokio
    /// runtime runs (else the first token that needs it fetches it).
    pub(crate) fn start(&self) {
        if let (Some(jwks), Ok(runtime)) = (&self.jwks, tokio::runtime::Handle::try_current()) {
            let jwks = jwks.clone();
            runtime.spawn(async move { jwks.prefetch().await });
        }
    }
}

/// What a token signed with `algorithm` must satisfy besides its signature.
fn validation(algorithm: Algorithm, config: &AuthConfig) -> Validation {
    rules(
        algorithm,
        config.issuer.is_some(),
        config.audience.as_deref(),
    )
}

/// [`validation`] from its parts: whether `iss` is required, and the audience.
fn rules(algorithm: Algorithm, issuer: bool, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    // `iss` is compared in `authenticate`, where an array (not a StringOrURI) fails.
    if issuer {
        required.push("iss");
    }
    match audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The claims as a token carries them: what Herald reads, and `iss` for the issuer check.
#[derive(Deserialize)]
struct Token {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

/// RFC 7519 §2 NumericDate: seconds since the epoch, possibly with a fraction (dropped).
/// Negative or non-finite values are refused; beyond `u64::MAX` saturates.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct Seconds;
    impl Visitor<'_> for Seconds {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("seconds since the Unix epoch")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v.is_finite() && v >= 0.0 {
                // `as` saturates at u64::MAX and drops the fraction.
                Ok(v as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }
    deserializer.deserialize_any(Seconds)
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

pub(crate) fn patterns(list: &[String]) -> Vec<WildMatch> {
    list.iter().map(|p| WildMatch::new(p)).collect()
}

impl Authenticator for JwtAuthenticator {
    fn authenticate<'a>(
        &'a self,
        token: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async move {
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                return self.anonymous.clone().ok_or(AuthError::Missing);
            };
            for (key, validation) in &self.keys {
                match jsonwebtoken::decode::<Token>(token, key, validation) {
                    Ok(data) => return self.identity(data.claims),
                    // A key of another algorithm, or a bad signature: the next key may fit.
                    Err(e) => match refusal(e.kind()) {
                        AuthError::Invalid => {}
                        // The signature verified: the claims decide, whatever other keys say.
                        refused => return Err(refused),
                    },
                }
            }
            match &self.jwks {
                Some(jwks) => self.with_jwks(jwks, token).await,
                None => Err(AuthError::Invalid),
            }
        })
    }
}

impl JwtAuthenticator {
    /// Verifies `token` with the set's key its header's `kid` names.
    async fn with_jwks(&self, jwks: &jwks::Jwks, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        // A kid is looked up, and may cause a fetch, only once it is of a sane size.
        if kid.len() > 256 {
            return Err(AuthError::Invalid);
        }
        let found = jwks.key(&kid).await.ok_or(AuthError::UnknownKey)?;
        let rules = rules(
            found.algorithm,
            self.issuer.is_some(),
            self.audience.as_deref(),
        );
        match jsonwebtoken::decode::<Token>(token, &found.key, &rules) {
            Ok(data) => self.identity(data.claims),
            Err(e) => Err(refusal(e.kind())),
        }
    }

    /// The identity a verified token grants, once its issuer is checked.
    fn identity(&self, token: Token) -> Result<Identity, AuthError> {
        if let Some(issuer) = &self.issuer
            && token.iss.as_ref().and_then(serde_json::Value::as_str) != Some(issuer)
        {
            return Err(AuthError::WrongIssuer);
        }
        let c = token.claims;
        let mut subscribe = patterns(&c.channels);
        subscribe.extend(patterns(&c.subscribe));
        let mut publish = patterns(&c.channels);
        publish.extend(patterns(&c.publish));
        Ok(Identity {
            user: c.sub,
            subscribe: subscribe.into(),
            publish: publish.into(),
            expires: Some(c.exp),
            subs: c.subs,
            anonymous: false,
            from_hook: false,
        })
    }
}

/// Why the JWT library refused a token, as the handshake reports it.
fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
        _ => AuthError::Invalid,
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
pub(crate) fn find_token<'a>(
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

    impl JwtAuthenticator {
        /// [`Authenticator::authenticate`] without a key set: it never waits.
        fn check(&self, token: Option<&str>) -> Result<Identity, AuthError> {
            futures_util::FutureExt::now_or_never(self.authenticate(token))
                .expect("no key set to wait for")
        }
    }

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
            subs: vec![],
        }
    }

    #[test]
    fn valid_token_grants_its_channel_patterns() {
        let auth = JwtAuthenticator::new(&config(Some("s3")), Arc::new(Metrics::new())).unwrap();
        let token = issue_hs256("s3", &claims(now() + 60)).unwrap();
        let id = auth.check(Some(&token)).unwrap();
        assert_eq!(id.user, "ann");
        assert!(id.can_subscribe("chat:1") && id.can_publish("chat:1"));
        assert!(id.can_subscribe("news") && !id.can_publish("news"));
        assert!(!id.can_subscribe("admin"));
    }

    #[test]
    fn missing_token_with_a_secret_is_refused_unless_anonymous_is_allowed() {
        let auth = JwtAuthenticator::new(&config(Some("s3")), Arc::new(Metrics::new())).unwrap();
        assert_eq!(auth.check(None).unwrap_err(), AuthError::Missing);
        let mut open = config(Some("s3"));
        open.allow_anonymous = Some(true);
        let auth = JwtAuthenticator::new(&open, Arc::new(Metrics::new())).unwrap();
        assert_eq!(auth.check(None).unwrap().user, "");
    }

    #[test]
    fn expired_and_forged_tokens_are_refused() {
        let auth = JwtAuthenticator::new(&config(Some("s3")), Arc::new(Metrics::new())).unwrap();
        let expired = issue_hs256("s3", &claims(now() - 10)).unwrap();
        assert_eq!(auth.check(Some(&expired)).unwrap_err(), AuthError::Expired);
        let forged = issue_hs256("other", &claims(now() + 60)).unwrap();
        assert_eq!(auth.check(Some(&forged)).unwrap_err(), AuthError::Invalid);
        assert_eq!(auth.check(Some("x.y.z")).unwrap_err(), AuthError::Invalid);
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

    /// A token with exactly these claims, signed with HS256 `s3`.
    fn raw(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"s3"),
        )
        .unwrap()
    }

    fn checking(issuer: Option<&str>, audience: Option<&str>) -> JwtAuthenticator {
        let mut cfg = config(Some("s3"));
        cfg.issuer = issuer.map(str::to_owned);
        cfg.audience = audience.map(str::to_owned);
        JwtAuthenticator::new(&cfg, Arc::new(Metrics::new())).unwrap()
    }

    mod registered_claims {
        //! RFC 7519 §4.1: iss, aud, exp, nbf.
        use super::*;
        use serde_json::json;

        #[test]
        fn iss_must_equal_the_configured_issuer_when_one_is_set() {
            let auth = checking(Some("https://auth.example"), None);
            let exp = now() + 60;
            let good = raw(json!({"sub": "ann", "exp": exp, "iss": "https://auth.example"}));
            assert_eq!(auth.check(Some(&good)).unwrap().user, "ann");
            for iss in [
                json!("https://evil.example"),
                json!(["https://auth.example"]),
                json!(7),
            ] {
                let token = raw(json!({"sub": "ann", "exp": exp, "iss": iss}));
                assert_eq!(
                    auth.check(Some(&token)).unwrap_err(),
                    AuthError::WrongIssuer,
                    "{iss}"
                );
            }
            let none = raw(json!({"sub": "ann", "exp": exp}));
            assert_eq!(auth.check(Some(&none)).unwrap_err(), AuthError::WrongIssuer);
            let unchecked = checking(None, None);
            let other = raw(json!({"sub": "ann", "exp": exp, "iss": ["anyone"]}));
            assert!(
                unchecked.check(Some(&other)).is_ok(),
                "iss is not read when unset"
            );
        }

        #[test]
        fn aud_must_contain_the_configured_audience_when_one_is_set() {
            let auth = checking(None, Some("herald"));
            let exp = now() + 60;
            for aud in [json!("herald"), json!(["other", "herald"])] {
                let token = raw(json!({"sub": "ann", "exp": exp, "aud": aud}));
                assert!(auth.check(Some(&token)).is_ok(), "{aud}");
            }
            for aud in [json!("other"), json!(["other"]), json!([]), json!(1)] {
                let token = raw(json!({"sub": "ann", "exp": exp, "aud": aud}));
                assert_eq!(
                    auth.check(Some(&token)).unwrap_err(),
                    AuthError::WrongAudience,
                    "{aud}"
                );
            }
            let none = raw(json!({"sub": "ann", "exp": exp}));
            assert_eq!(
                auth.check(Some(&none)).unwrap_err(),
                AuthError::WrongAudience
            );
            let unchecked = checking(None, None);
            let other = raw(json!({"sub": "ann", "exp": exp, "aud": "someone-else"}));
            assert!(
                unchecked.check(Some(&other)).is_ok(),
                "aud is not read when unset"
            );
        }

        #[test]
        fn nbf_in_the_future_is_refused_and_in_the_past_accepted() {
            let auth = checking(None, None);
            let exp = now() + 600;
            let early = raw(json!({"sub": "ann", "exp": exp, "nbf": now() + 60}));
            assert_eq!(
                auth.check(Some(&early)).unwrap_err(),
                AuthError::NotYetValid
            );
            let far = raw(json!({"sub": "ann", "exp": exp, "nbf": u64::MAX}));
            assert_eq!(auth.check(Some(&far)).unwrap_err(), AuthError::NotYetValid);
            let ready = raw(json!({"sub": "ann", "exp": exp, "nbf": now() - 1}));
            assert!(auth.check(Some(&ready)).is_ok());
            let bad = raw(json!({"sub": "ann", "exp": exp, "nbf": "soon"}));
            assert_eq!(auth.check(Some(&bad)).unwrap_err(), AuthError::Invalid);
        }

        #[test]
        fn exp_far_in_the_future_or_fractional_is_read_without_overflow() {
            let auth = checking(None, None);
            for (exp, read) in [
                (json!(u64::MAX), u64::MAX),
                (json!(i64::MAX), i64::MAX as u64),
                (json!(1e19), 10_000_000_000_000_000_000),
                (json!(now() as f64 + 60.75), now() + 60),
            ] {
                let token = raw(json!({"sub": "ann", "exp": exp}));
                let id = auth
                    .check(Some(&token))
                    .unwrap_or_else(|e| panic!("{exp}: {e}"));
                assert!(id.expires.unwrap().abs_diff(read) <= 1, "{exp}");
            }
            for exp in [json!(-1), json!("never"), json!(null), json!(1e300)] {
                let token = raw(json!({"sub": "ann", "exp": exp}));
                assert!(auth.check(Some(&token)).is_err(), "{exp}");
            }
            let none = raw(json!({"sub": "ann"}));
            assert_eq!(auth.check(Some(&none)).unwrap_err(), AuthError::Invalid);
        }
    }

    #[test]
    fn anonymous_connections_get_no_channels_by_default_once_a_key_is_set() {
        let mut open = config(Some("s3"));
        open.allow_anonymous = Some(true);
        let id = JwtAuthenticator::new(&open, Arc::new(Metrics::new()))
            .unwrap()
            .check(None)
            .unwrap();
        assert!(!id.can_subscribe("chat:1") && !id.can_publish("chat:1"));
        open.anonymous_subscribe = Some(vec!["public:*".into()]);
        let id = JwtAuthenticator::new(&open, Arc::new(Metrics::new()))
            .unwrap()
            .check(None)
            .unwrap();
        assert!(id.can_subscribe("public:1") && !id.can_publish("public:1"));
        let keyless = JwtAuthenticator::new(&config(None), Arc::new(Metrics::new())).unwrap();
        let id = keyless.check(None).unwrap();
        assert!(id.can_subscribe("chat:1") && id.can_publish("chat:1"));
    }
}
