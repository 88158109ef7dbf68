//! The hub's one HTTP client, for its calls to other servers (the JWKS fetch, the connect
//! hook): one request on a fresh HTTP/1.1 connection over TCP, or over TLS (rustls, the
//! platform's roots) for `https://`. The caller bounds the whole exchange with its timeout;
//! here the response body is bounded by the caller's limit before and while it is read.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// An `http://` or `https://` URL another server is called at (`auth.jwks_url`,
/// `hooks.connect.url`), read once.
#[derive(Clone, Debug)]
pub(crate) struct HttpUrl {
    https: bool,
    host: String,
    port: u16,
    /// `Host` header value: the URL's authority.
    authority: String,
    path: String,
}

impl HttpUrl {
    /// Reads an `http://` or `https://` URL with a host; `None` for anything else.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let uri: http::Uri = url.parse().ok()?;
        let https = match uri.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Self {
            https,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or("/", http::uri::PathAndQuery::as_str)
                .to_owned(),
        })
    }
}

impl HttpUrl {
    /// Whether it is called over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }
}

/// The TLS client for `url`: the platform's roots, read only for an `https://` URL. `None`
/// for `http://`, or when the roots cannot be read (logged with `key`; calls then fail as
/// unreachable).
pub(crate) fn tls_for(url: &HttpUrl, key: &str) -> Option<Arc<tokio_rustls::rustls::ClientConfig>> {
    match url.is_https().then(|| herald::tls::client_config(&[])) {
        Some(Ok(tls)) => Some(tls),
        Some(Err(e)) => {
            tracing::warn!(error = %e, key, "no TLS client");
            None
        }
        None => None,
    }
}

/// Why a call failed; [`label`](Self::label) is its metric label.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The TCP or TLS connection, or the HTTP exchange, failed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The server answered with another status than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is over the caller's limit.
    #[error("response body over the limit")]
    TooLarge,
    /// The body is not what the caller expects (a JWK Set, a hook's answer).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The call took longer than its timeout (`auth.jwks_timeout`, `hooks.connect.timeout`).
    #[error("timed out")]
    Timeout,
}

impl FetchError {
    /// The `result` label of `herald_jwks_fetches`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Status(_) => "status",
            Self::TooLarge => "too_large",
            Self::Malformed(_) => "malformed",
            Self::Timeout => "timeout",
        }
    }
}

fn unreachable(e: impl std::fmt::Display) -> FetchError {
    FetchError::Unreachable(e.to_string())
}

/// The header every webhook POST carries (the id of its first event).
pub(crate) const WEBHOOK_ID: &str = "herald-webhook-id";

/// What to send: `GET` with no body, or `POST` with a JSON body.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A `GET`.
    Get,
    /// A `POST` of this JSON text.
    PostJson(Bytes),
    /// A webhook: a `POST` of this JSON text with these extra headers; any 2xx status is a
    /// success (its body is not read).
    Webhook(Bytes, Vec<(&'static str, String)>),
}

/// Sends one request to `url` and reads a 200's body, at most `limit` bytes. Not bounded in
/// time: the caller wraps it in its timeout.
///
/// # Errors
/// [`FetchError`]: the connection failed, another status than 200, a body over `limit`.
pub(crate) async fn call(
    url: &HttpUrl,
    tls: Option<&Arc<tokio_rustls::rustls::ClientConfig>>,
    outgoing: Outgoing,
    limit: usize,
) -> Result<Bytes, FetchError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(unreachable)?;
    if !url.https {
        return exchange(tcp, url, outgoing, limit).await;
    }
    let Some(tls) = tls else {
        return Err(FetchError::Unreachable(
            "no TLS client configuration".into(),
        ));
    };
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(url.host.clone())
        .map_err(unreachable)?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(unreachable)?;
    exchange(stream, url, outgoing, limit).await
}

async fn exchange<S>(
    io: S,
    url: &HttpUrl,
    outgoing: Outgoing,
    limit: usize,
) -> Result<Bytes, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(unreachable)?;
    let request = http::Request::builder()
        .uri(url.path.as_str())
        .header(http::header::HOST, url.authority.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, "herald");
    let request = match outgoing {
        Outgoing::Get => request
            .method(http::Method::GET)
            .body(Full::new(Bytes::new())),
        Outgoing::PostJson(json) => request
            .method(http::Method::POST)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(json)),
        Outgoing::Webhook(json, headers) => headers
            .into_iter()
            .fold(request, |r, (name, value)| r.header(name, value))
            .method(http::Method::POST)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(json)),
    }
    .map_err(unreachable)?;
    let webhook = request.headers().contains_key(WEBHOOK_ID);
    let work = async {
        let response = sender.send_request(request).await.map_err(unreachable)?;
        if webhook && response.status().is_success() {
            return Ok(Bytes::new());
        }
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let announced = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = response.into_body();
        let mut document = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(unreachable)?;
            if let Some(data) = frame.data_ref() {
                if document.len() + data.len() > limit {
                    return Err(FetchError::TooLarge);
                }
                document.extend_from_slice(data);
            }
        }
        Ok(document.freeze())
    };
    // The connection future moves the bytes; it ends early only when the exchange failed.
    tokio::select! {
        biased;
        document = work => document,
        ended = connection => Err(match ended {
            Ok(()) => FetchError::Unreachable("connection closed".into()),
            Err(e) => unreachable(e),
        }),
    }
}
