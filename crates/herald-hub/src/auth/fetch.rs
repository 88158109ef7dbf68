//! One bounded HTTP GET for the JWKS document: HTTP/1.1 over TCP, or over TLS (rustls, the
//! platform's roots) for `https://`. The caller bounds the whole exchange with its timeout;
//! here the body is bounded by [`MAX_DOCUMENT`] before and while it is read.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The largest JWKS document read, bytes: a key set of a few dozen keys fits many times over.
pub(crate) const MAX_DOCUMENT: usize = 64 * 1024;

/// A JWKS URL, read once from `auth.jwks_url`.
#[derive(Clone, Debug)]
pub(crate) struct JwksUrl {
    https: bool,
    host: String,
    port: u16,
    /// `Host` header value: the URL's authority.
    authority: String,
    path: String,
}

impl JwksUrl {
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

impl JwksUrl {
    /// Whether the set is fetched over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }
}

/// Why a fetch failed; [`label`](Self::label) is its metric label.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The TCP or TLS connection, or the HTTP exchange, failed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The server answered with another status than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The document is over [`MAX_DOCUMENT`].
    #[error("document over {MAX_DOCUMENT} bytes")]
    TooLarge,
    /// The document is not a JWK Set.
    #[error("malformed key set: {0}")]
    Malformed(String),
    /// The fetch took longer than `auth.jwks_timeout`.
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

/// GETs `url`'s document, at most [`MAX_DOCUMENT`] bytes. Not bounded in time: the caller
/// wraps it in its timeout.
pub(crate) async fn get(
    url: &JwksUrl,
    tls: Option<&Arc<tokio_rustls::rustls::ClientConfig>>,
) -> Result<Bytes, FetchError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(unreachable)?;
    if !url.https {
        return exchange(tcp, url).await;
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
    exchange(stream, url).await
}

async fn exchange<S>(io: S, url: &JwksUrl) -> Result<Bytes, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(unreachable)?;
    let request = http::Request::get(url.path.as_str())
        .header(http::header::HOST, url.authority.as_str())
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, "herald")
        .body(Empty::<Bytes>::new())
        .map_err(unreachable)?;
    let work = async {
        let response = sender.send_request(request).await.map_err(unreachable)?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let announced = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > MAX_DOCUMENT as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = response.into_body();
        let mut document = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(unreachable)?;
            if let Some(data) = frame.data_ref() {
                if document.len() + data.len() > MAX_DOCUMENT {
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
