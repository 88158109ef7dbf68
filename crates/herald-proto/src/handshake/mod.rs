//! The opening handshake (RFC 6455 §4): the server's request parser and response writer, the
//! client's request writer and response checker.

mod accept;
mod client;
mod extensions;
mod server;

pub use accept::{Accept, AcceptResponse};
pub use client::{Accepted, ClientHandshake, ClientRequest};
pub use extensions::ExtensionOffer;
pub use server::{Request, RequestReader};

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: the GUID appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Limits on the handshake's HTTP messages.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeLimits {
    /// The largest request or response head (start line and headers), in bytes. Default
    /// 16 KiB. Stops a peer from making the endpoint buffer an endless head; a request over it
    /// is answered 431.
    pub max_head_size: usize,
    /// The most header lines. Default 64. A request with more is answered 431.
    pub max_headers: usize,
    /// The largest body of a refusal a client keeps, in bytes. Default 64 KiB; the rest is cut.
    pub max_body_size: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            max_head_size: 16 << 10,
            max_headers: 64,
            max_body_size: 64 << 10,
        }
    }
}

/// An HTTP response: a server's refusal of a handshake, or the non-101 answer a client got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers (the encoder adds `Content-Length` and `Connection: close`).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// A response with a plain-text one-line body.
    pub fn text(status: StatusCode, reason: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Self {
            status,
            headers,
            body: Bytes::from(format!("{reason}\n")),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: http::HeaderName, value: &'static str) -> Self {
        self.headers
            .append(name, http::HeaderValue::from_static(value));
        self
    }

    /// The bytes to write: status line, headers, `Content-Length`, `Connection: close`, body.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(128 + self.body.len());
        write_status_line(&mut out, self.status);
        write_headers(&mut out, &self.headers);
        out.put_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        out.put_slice(b"Connection: close\r\n\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }
}

fn write_status_line(out: &mut BytesMut, status: StatusCode) {
    let reason = status.canonical_reason().unwrap_or("");
    out.put_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
}

fn write_headers(out: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::CONNECTION {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
}

/// Whether any `name` header holds `token` in its comma-separated list, ignoring case.
fn has_token(headers: &HeaderMap, name: http::HeaderName, token: &str) -> bool {
    list_items(headers, name).any(|item| item.eq_ignore_ascii_case(token))
}

/// The items of comma-separated lists over every `name` header, trimmed, empty ones dropped.
fn list_items(headers: &HeaderMap, name: http::HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Converts httparse headers into a map.
fn to_header_map(parsed: &[httparse::Header<'_>]) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = http::HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §1.3 and §4.2.2: the accept key.
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn token_lists_are_case_insensitive_and_comma_separated() {
        let mut headers = HeaderMap::new();
        headers.append("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(has_token(&headers, http::header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, http::header::CONNECTION, "close"));
    }
}
