//! Tokens verified with keys from a JWKS URL, served by a test IdP on 127.0.0.1:0 that counts
//! its requests: rotation, unknown kids, the refetch rate limit, coalesced fetches, the three
//! algorithms, and an IdP that is down, slow or serves too much.
#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: herald.v1\r\n";

/// A signing key of the test IdP.
struct Signer {
    kid: &'static str,
    algorithm: Algorithm,
    key: EncodingKey,
}

impl Signer {
    fn new(kid: &'static str, algorithm: Algorithm, pem: &[u8]) -> Self {
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            _ => EncodingKey::from_ed_pem(pem),
        };
        Self {
            kid,
            algorithm,
            key: key.unwrap(),
        }
    }

    fn rsa() -> Self {
        Self::new(
            "rsa-1",
            Algorithm::RS256,
            include_bytes!("keys/rs256-private.pem"),
        )
    }

    fn rotated() -> Self {
        Self::new(
            "rsa-2",
            Algorithm::RS256,
            include_bytes!("fixtures/rs256-rotated-private.pem"),
        )
    }

    fn ec() -> Self {
        Self::new(
            "ec-1",
            Algorithm::ES256,
            include_bytes!("keys/es256-private.pem"),
        )
    }

    fn ed() -> Self {
        Self::new(
            "ed-1",
            Algorithm::EdDSA,
            include_bytes!("fixtures/ed25519-private.pem"),
        )
    }

    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.algorithm).unwrap();
        jwk.common.key_id = Some(self.kid.into());
        jwk
    }

    /// A token for `ann`, its header naming `kid`.
    fn token_as(&self, kid: &str) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(kid.into());
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let claims = json!({"sub": "ann", "exp": exp, "channels": ["*"]});
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    fn token(&self) -> String {
        self.token_as(self.kid)
    }
}

/// What the IdP answers.
#[derive(Clone)]
enum Answer {
    Keys(String),
    Status(StatusCode),
    Huge,
}

/// The test IdP: serves `/jwks`, counts requests, optionally answers slowly.
#[derive(Clone)]
struct Idp {
    answer: Arc<Mutex<Answer>>,
    requests: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    url: String,
}

impl Idp {
    async fn start(signers: &[&Signer]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let idp = Self {
            answer: Arc::new(Mutex::new(Answer::Keys(String::new()))),
            requests: Arc::default(),
            delay: Arc::default(),
            url: format!("http://{}/jwks", listener.local_addr().unwrap()),
        };
        idp.serve(signers);
        let app = Router::new()
            .route("/jwks", get(jwks))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    fn serve(&self, signers: &[&Signer]) {
        let set = JwkSet {
            keys: signers.iter().map(|s| s.jwk()).collect(),
        };
        *self.answer.lock().unwrap() = Answer::Keys(serde_json::to_string(&set).unwrap());
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn jwks(State(idp): State<Idp>) -> Response {
    idp.requests.fetch_add(1, Ordering::SeqCst);
    let delay = *idp.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answer = idp.answer.lock().unwrap().clone();
    match answer {
        Answer::Keys(body) => ([("content-type", "application/json")], body).into_response(),
        Answer::Status(status) => status.into_response(),
        Answer::Huge => vec![b' '; 100 * 1024].into_response(),
    }
}

async fn hub(idp: &Idp, refetch: Duration) -> Server {
    let mut cfg = config();
    cfg.auth.jwks_url = Some(idp.url.clone());
    cfg.auth.jwks_refetch_interval = refetch;
    cfg.auth.jwks_timeout = Duration::from_millis(500);
    Server::start(cfg).await
}

async fn status(server: &Server, token: &str) -> u16 {
    server.get(&format!("/ws?token={token}"), UPGRADE).await.0
}

fn fetches(server: &Server, result: &str) -> u64 {
    let metrics = server.hub.metrics().render();
    let prefix = format!("herald_jwks_fetches_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_for_its_new_kid_and_random_kids_do_not_hammer_the_idp() {
    // Ed25519 and P-256 verify fast even unoptimised, so the timings below hold on a busy
    // machine; RS256 rotation is the next test's.
    let (old, new) = (Signer::ed(), Signer::ec());
    let idp = Idp::start(&[&old]).await;
    let mut server = hub(&idp, Duration::from_millis(1500)).await;
    wait_for(|| idp.requests() == 1).await;
    assert_eq!(status(&server, &old.token()).await, 101);
    assert_eq!(idp.requests(), 1, "a known kid is served from the cache");

    idp.serve(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    *idp.delay.lock().unwrap() = Duration::from_millis(200);
    let handshakes: Vec<_> = (0..8)
        .map(|_| {
            let token = new.token();
            let server = &server;
            async move { status(server, &token).await }
        })
        .collect();
    let statuses = futures_util::future::join_all(handshakes).await;
    assert_eq!(statuses, [101; 8]);
    assert_eq!(idp.requests(), 2, "concurrent unknown kids share one fetch");
    assert_eq!(
        status(&server, &old.token()).await,
        101,
        "the old key still works"
    );

    *idp.delay.lock().unwrap() = Duration::ZERO;
    let started = std::time::Instant::now();
    let flood: Vec<_> = (0..20)
        .map(|i| {
            let token = new.token_as(&format!("random-{i}"));
            let server = &server;
            async move { status(server, &token).await }
        })
        .collect();
    let statuses = futures_util::future::join_all(flood).await;
    assert_eq!(statuses, [401; 20]);
    // One fetch per 1.5 s interval at most, however many kids arrive.
    let periods = started.elapsed().as_millis() / 1500;
    let refetched = idp.requests() - 2;
    assert!(
        refetched as u128 <= periods + 1,
        "{refetched} fetches in {periods} periods"
    );
    assert!(fetches(&server, "rate_limited") >= 1);

    let before = idp.requests();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(status(&server, &new.token_as("missing")).await, 401);
    assert_eq!(
        idp.requests(),
        before + 1,
        "after the interval an unknown kid fetches again"
    );
    server.stop().await;
}

#[tokio::test]
async fn rs256_es256_and_eddsa_keys_each_verify_their_own_tokens_only() {
    let (rsa, ec, ed, rotated) = (Signer::rsa(), Signer::ec(), Signer::ed(), Signer::rotated());
    let idp = Idp::start(&[&rsa, &ec, &ed, &rotated]).await;
    let mut server = hub(&idp, Duration::from_secs(30)).await;
    wait_for(|| idp.requests() == 1).await;
    for signer in [&rsa, &ec, &ed, &rotated] {
        assert_eq!(
            status(&server, &signer.token()).await,
            101,
            "{}",
            signer.kid
        );
    }
    // A token naming another key's kid fails that key's signature or algorithm.
    assert_eq!(status(&server, &rsa.token_as("ec-1")).await, 401);
    assert_eq!(status(&server, &ed.token_as("rsa-1")).await, 401);
    assert_eq!(status(&server, &rotated.token_as("rsa-1")).await, 401);
    let unsigned = format!(
        "{}.{}.",
        base64_url(&json!({"alg": "none", "kid": "rsa-1"}).to_string()),
        base64_url(&json!({"sub": "ann", "exp": u64::MAX}).to_string())
    );
    assert_eq!(status(&server, &unsigned).await, 401);
    assert_eq!(idp.requests(), 1);
    server.stop().await;
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn an_idp_that_is_down_at_start_means_401_until_it_answers() {
    let rsa = Signer::rsa();
    let idp = Idp::start(&[&rsa]).await;
    idp.answer(Answer::Status(StatusCode::SERVICE_UNAVAILABLE));
    let mut server = hub(&idp, Duration::from_millis(300)).await;
    wait_for(|| fetches(&server, "status") == 1).await;
    assert_eq!(status(&server, &rsa.token()).await, 401);

    idp.answer(Answer::Huge);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status(&server, &rsa.token()).await, 401);
    assert_eq!(fetches(&server, "too_large"), 1);

    *idp.delay.lock().unwrap() = Duration::from_secs(5);
    idp.serve(&[&rsa]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    assert_eq!(status(&server, &rsa.token()).await, 401);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fetch timed out"
    );
    assert_eq!(fetches(&server, "timeout"), 1);

    *idp.delay.lock().unwrap() = Duration::ZERO;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status(&server, &rsa.token()).await, 101);
    assert_eq!(fetches(&server, "ok"), 1);
    server.stop().await;
}
