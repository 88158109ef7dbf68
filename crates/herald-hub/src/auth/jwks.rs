//! Keys from a JSON Web Key Set (RFC 7517) at `auth.jwks_url`.
//!
//! The set is fetched once when the hub starts (in the background: the hub serves at once and
//! refuses tokens that need the set with 401 until it arrives), then again
//!
//! - when a token names a `kid` the cached set lacks (an IdP rotated its key), at most once
//!   per `auth.jwks_refetch_interval`: a flood of tokens with random `kid`s costs the IdP one
//!   request per period, and each of them a cache lookup;
//! - when the cached set is older than `auth.jwks_max_age` (a failed fetch keeps the old keys).
//!
//! Fetches are serialised behind one lock: handshakes that need a fetch while one is running
//! wait for it (never longer than `auth.jwks_timeout`) and read its result instead of
//! fetching again; a handshake waits at most twice `auth.jwks_timeout` in all (a running
//! fetch, then its own). Bounds: [`MAX_DOCUMENT`] bytes, [`MAX_KEYS`] keys, `auth.jwks_timeout`
//! per fetch. Only RS256, ES256 (P-256) and EdDSA (Ed25519) keys with a `kid` are taken;
//! symmetric keys never are, whatever the document says.

use crate::config::AuthConfig;
use crate::fetch::{self, FetchError, HttpUrl, Outgoing};
use crate::metrics::Metrics;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// The largest JWKS document read, bytes: a key set of a few dozen keys fits many times over.
pub(crate) const MAX_DOCUMENT: usize = 64 * 1024;

/// The most keys taken from one document; the rest are skipped (and logged).
pub(crate) const MAX_KEYS: usize = 32;

/// A verification key from the set, with the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct SetKey {
    pub(crate) key: Arc<DecodingKey>,
    pub(crate) algorithm: Algorithm,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, SetKey>,
    /// When the cached keys were fetched; `None` before the first successful fetch.
    fetched: Option<Instant>,
    /// Bumped by every fetch, successful or not: a waiter that sees it moved does not fetch.
    generation: u64,
}

/// The cached key set and the rules for fetching it.
pub(crate) struct Jwks {
    url: HttpUrl,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    timeout: Duration,
    refetch_interval: Duration,
    max_age: Duration,
    metrics: Arc<Metrics>,
    cache: RwLock<Cache>,
    /// Held while fetching; holds when the last fetch ended.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// The set configured in `config`, nothing fetched yet; `None` without `auth.jwks_url`.
    /// (`HubConfig::validate` refused a URL that does not parse.)
    pub(crate) fn new(config: &AuthConfig, metrics: Arc<Metrics>) -> Option<Self> {
        let url = HttpUrl::parse(config.jwks_url.as_deref()?)?;
        let tls = fetch::tls_for(&url, "auth.jwks_url");
        Some(Self {
            url,
            tls,
            timeout: config.jwks_timeout,
            refetch_interval: config.jwks_refetch_interval,
            max_age: config.jwks_max_age,
            metrics,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    /// The key named `kid`, fetching the set first when `kid` is unknown or the set is old
    /// (within the rate limit and the timeout). `None`: no such key, or no set yet.
    pub(crate) async fn key(&self, kid: &str) -> Option<SetKey> {
        let (seen, cached) = {
            let cache = self.read();
            let fresh = cache.fetched.is_some_and(|t| t.elapsed() < self.max_age);
            let cached = cache.keys.get(kid).cloned();
            if fresh && cached.is_some() {
                return cached;
            }
            (cache.generation, cached)
        };
        let Ok(mut last) = tokio::time::timeout(self.timeout, self.fetching.lock()).await else {
            return cached;
        };
        {
            let cache = self.read();
            if cache.generation != seen {
                // A fetch finished while this one waited: its result is the answer.
                return cache.keys.get(kid).cloned().or(cached);
            }
        }
        if last.is_some_and(|t| t.elapsed() < self.refetch_interval) {
            self.metrics.jwks_fetch("rate_limited");
            return cached;
        }
        // Counted from the start too: a handshake dropped mid-fetch (its client went away)
        // still spent this period's fetch.
        *last = Some(Instant::now());
        self.refresh().await;
        // And from the end: a slow IdP is asked no more often.
        *last = Some(Instant::now());
        self.read().keys.get(kid).cloned().or(cached)
    }

    /// Fetches the set now, whatever the rate limit (at start).
    pub(crate) async fn prefetch(&self) {
        let mut last = self.fetching.lock().await;
        self.refresh().await;
        *last = Some(Instant::now());
    }

    /// One fetch; its result replaces the cache, or is logged and counted.
    async fn refresh(&self) {
        let fetched = tokio::time::timeout(
            self.timeout,
            fetch::call(&self.url, self.tls.as_ref(), Outgoing::Get, MAX_DOCUMENT),
        )
        .await
        .unwrap_or(Err(FetchError::Timeout))
        .and_then(|document| keys(&document));
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.generation += 1;
        match fetched {
            Ok(keys) => {
                self.metrics.jwks_fetch("ok");
                tracing::debug!(keys = keys.len(), "JWKS fetched");
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
            }
            Err(e) => {
                self.metrics.jwks_fetch(e.label());
                tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys held");
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        // A panic while holding the lock leaves a consistent map: each write replaces it whole.
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The usable keys of a JWKS document, by `kid`.
fn keys(document: &[u8]) -> Result<HashMap<String, SetKey>, FetchError> {
    let set: JwkSet =
        serde_json::from_slice(document).map_err(|e| FetchError::Malformed(e.to_string()))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        if keys.len() == MAX_KEYS {
            tracing::warn!(
                max = MAX_KEYS,
                "JWKS holds more keys than are taken; the rest are skipped"
            );
            break;
        }
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        let Some(algorithm) = algorithm(jwk) else {
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(
                    kid,
                    SetKey {
                        key: Arc::new(key),
                        algorithm,
                    },
                );
            }
            Err(e) => tracing::debug!(kid, error = %e, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

/// The one algorithm a key verifies: its `alg` when given, else the one its type implies;
/// `None` for anything but RS256, ES256 on P-256 and EdDSA on Ed25519.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let named = match jwk.common.key_algorithm {
        None => return Some(implied),
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    (named == implied).then_some(implied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_signing_keys_of_the_three_algorithms_with_a_kid_are_taken() {
        let rsa = json!({"kty": "RSA", "kid": "r", "n": "sXchDaQebHnPiGvy", "e": "AQAB"});
        let hmac = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        let mut no_kid = rsa.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut enc = rsa.clone();
        enc["kid"] = json!("e");
        enc["use"] = json!("enc");
        let mut ps = rsa.clone();
        ps["kid"] = json!("p");
        ps["alg"] = json!("PS256");
        let document = json!({"keys": [rsa, hmac, no_kid, enc, ps]}).to_string();
        let keys = keys(document.as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["r"]);
        assert_eq!(keys["r"].algorithm, Algorithm::RS256);
    }

    #[test]
    fn a_document_that_is_not_a_key_set_is_malformed() {
        for document in ["", "[]", "{\"keys\": 1}", "not json"] {
            assert!(
                matches!(keys(document.as_bytes()), Err(FetchError::Malformed(_))),
                "{document}"
            );
        }
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_read() {
        for good in [
            "http://127.0.0.1:8080/jwks",
            "https://idp.example/.well-known/jwks.json",
        ] {
            assert!(HttpUrl::parse(good).is_some(), "{good}");
        }
        for bad in [
            "ftp://idp.example/",
            "idp.example/jwks",
            "/jwks",
            "http://user@idp/",
            "",
        ] {
            assert!(HttpUrl::parse(bad).is_none(), "{bad}");
        }
    }
}
