//! The server's side of the opening handshake (RFC 6455 §4.2).

use super::{
    Accept, AcceptResponse, ExtensionOffer, HandshakeLimits, Response, has_token, list_items,
};
use crate::deflate::DeflateConfig;
use crate::error::MisuseError;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

/// Reads a handshake request from bytes that arrive in any split.
///
/// ```
/// use herald_proto::handshake::{Accept, RequestReader};
///
/// let mut reader = RequestReader::default();
/// reader.receive(b"GET /chat?groupId=1234 HTTP/1.1\r\nHost: example.com\r\n");
/// assert!(reader.poll_request().unwrap().is_none());
/// reader.receive(b"Upgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
/// let request = reader.poll_request().unwrap().unwrap();
/// assert_eq!(request.query(), Some("groupId=1234"));
/// let response = request.accept(Accept::default(), None).unwrap();
/// assert!(response.encode().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// ```
#[derive(Debug, Default)]
pub struct RequestReader {
    buf: BytesMut,
    limits: HandshakeLimits,
    head_len: usize,
}

impl RequestReader {
    /// A reader with `limits`.
    pub fn new(limits: HandshakeLimits) -> Self {
        Self {
            buf: BytesMut::new(),
            limits,
            head_len: 0,
        }
    }

    /// Appends bytes read from the transport.
    pub fn receive(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The buffer [`receive`](Self::receive) appends to, for drivers that read into it directly.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Parses the request once its head has arrived and checks it against RFC 6455 §4.2.1.
    ///
    /// # Errors
    /// The refusal to write back: 400 for a malformed request, 405 for a method other than
    /// GET, 426 for a request that is not a WebSocket upgrade or not version 13, 431 for a head
    /// over the limits.
    pub fn poll_request(&mut self) -> Result<Option<Request>, Response> {
        let mut storage = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Request::new(&mut storage);
        let status = match parsed.parse(&self.buf) {
            Ok(status) => status,
            Err(httparse::Error::TooManyHeaders) => return Err(too_large("too many headers")),
            Err(e) => return Err(bad_request(&format!("malformed request: {e}"))),
        };
        let head_len = match status {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial if self.buf.len() > self.limits.max_head_size => {
                return Err(too_large("request head too large"));
            }
            httparse::Status::Partial => return Ok(None),
        };
        if head_len > self.limits.max_head_size {
            return Err(too_large("request head too large"));
        }
        self.head_len = head_len;
        Request::validate(&parsed).map(Some)
    }

    /// The bytes after the request head: frames the client sent without waiting. Feed them to
    /// the connection.
    pub fn into_remaining(mut self) -> BytesMut {
        self.buf.split_off(self.head_len.min(self.buf.len()))
    }
}

fn bad_request(reason: &str) -> Response {
    Response::text(StatusCode::BAD_REQUEST, reason)
}

fn too_large(reason: &str) -> Response {
    Response::text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, reason)
}

/// A valid handshake request, waiting for the application to accept or reject it.
#[derive(Clone, Debug)]
pub struct Request {
    uri: Uri,
    headers: HeaderMap,
    /// `Sec-WebSocket-Key`; none over HTTP/2, whose extended CONNECT has no accept key
    /// (RFC 8441 §5).
    key: Option<HeaderValue>,
    subprotocols: Vec<String>,
    extensions: Vec<ExtensionOffer>,
}

impl Request {
    fn validate(parsed: &httparse::Request<'_, '_>) -> Result<Self, Response> {
        let method = match parsed.method {
            Some("GET") => http::Method::GET,
            _ => http::Method::POST,
        };
        let version = match parsed.version {
            Some(1) => http::Version::HTTP_11,
            _ => http::Version::HTTP_10,
        };
        let uri: Uri = parsed
            .path
            .unwrap_or("/")
            .parse()
            .map_err(|_| bad_request("invalid request target"))?;
        let headers =
            super::to_header_map(parsed.headers).ok_or_else(|| bad_request("invalid header"))?;
        Self::from_http(&method, version, uri, headers)
    }

    /// Checks a request that an HTTP server already parsed (an upgrade from hyper or axum)
    /// against RFC 6455 §4.2.1.
    ///
    /// # Errors
    /// The refusal to send, as for [`RequestReader::poll_request`].
    pub fn from_http(
        method: &http::Method,
        version: http::Version,
        uri: Uri,
        headers: HeaderMap,
    ) -> Result<Self, Response> {
        // RFC 6455 §4.2.1, items 1–6, in order.
        if method != http::Method::GET {
            return Err(
                Response::text(StatusCode::METHOD_NOT_ALLOWED, "only GET can upgrade")
                    .with_header(header::ALLOW, "GET"),
            );
        }
        if version != http::Version::HTTP_11 {
            return Err(bad_request("HTTP/1.1 required"));
        }
        if headers.get_all(header::HOST).iter().count() != 1 {
            return Err(bad_request("exactly one Host header required"));
        }
        if !has_token(&headers, header::UPGRADE, "websocket")
            || !has_token(&headers, header::CONNECTION, "upgrade")
        {
            return Err(upgrade_required("WebSocket upgrade required")
                .with_header(header::UPGRADE, "websocket")
                .with_header(header::CONNECTION, "Upgrade"));
        }
        let key = single(&headers, header::SEC_WEBSOCKET_KEY)
            .filter(|k| decodes_to_16_bytes(k.as_bytes()))
            .ok_or_else(|| bad_request("invalid Sec-WebSocket-Key"))?
            .clone();
        if single(&headers, header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13")
        {
            return Err(upgrade_required("unsupported WebSocket version")
                .with_header(header::SEC_WEBSOCKET_VERSION, "13"));
        }
        Ok(Self::offers(uri, headers, Some(key)))
    }

    /// Checks an HTTP/2 extended CONNECT (RFC 8441 §4, §5) that an HTTP/2 server parsed:
    /// `:method` CONNECT, `:protocol` websocket, `Sec-WebSocket-Version: 13`. There is no
    /// `Sec-WebSocket-Key` (one sent is ignored); subprotocols and extensions are offered as
    /// over HTTP/1.1. `:authority` stands for `Host` (RFC 9113 §8.3.1): it is added to the
    /// headers when `Host` is absent, so that Origin policies see one host either way.
    ///
    /// # Errors
    /// 405 for another method; 400 for a CONNECT without `:protocol`, with another protocol,
    /// without an authority, with a `Host` that differs from it, or not version 13 (with
    /// `Sec-WebSocket-Version: 13`, RFC 6455 §4.4; 426 and `Upgrade` do not exist in HTTP/2).
    pub fn from_extended_connect(
        method: &http::Method,
        protocol: Option<&str>,
        uri: Uri,
        mut headers: HeaderMap,
    ) -> Result<Self, Response> {
        if method != http::Method::CONNECT {
            return Err(Response::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only CONNECT opens a WebSocket over HTTP/2",
            )
            .with_header(header::ALLOW, "CONNECT"));
        }
        match protocol {
            Some(p) if p.eq_ignore_ascii_case("websocket") => {}
            Some(_) => return Err(bad_request("unsupported :protocol")),
            None => {
                return Err(bad_request(
                    "extended CONNECT with :protocol websocket required",
                ));
            }
        }
        let authority = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .ok_or_else(|| bad_request(":authority required"))?;
        match single(&headers, header::HOST) {
            Some(host) if host != authority => {
                return Err(bad_request("Host differs from :authority"));
            }
            Some(_) => {}
            None if headers.contains_key(header::HOST) => {
                return Err(bad_request("exactly one Host header allowed"));
            }
            None => {
                headers.insert(header::HOST, authority);
            }
        }
        if single(&headers, header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13")
        {
            return Err(bad_request("unsupported WebSocket version")
                .with_header(header::SEC_WEBSOCKET_VERSION, "13"));
        }
        Ok(Self::offers(uri, headers, None))
    }

    fn offers(uri: Uri, headers: HeaderMap, key: Option<HeaderValue>) -> Self {
        let subprotocols = list_items(&headers, header::SEC_WEBSOCKET_PROTOCOL)
            .map(str::to_owned)
            .collect();
        let extensions = ExtensionOffer::parse_all(&headers);
        Self {
            uri,
            headers,
            key,
            subprotocols,
            extensions,
        }
    }

    /// Whether the request came as an HTTP/2 extended CONNECT (RFC 8441), which is accepted
    /// with 200 instead of 101.
    pub fn is_extended_connect(&self) -> bool {
        self.key.is_none()
    }

    /// The request target.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The path of the request target.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query of the request target, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// All headers, as sent.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Origin` header (RFC 6455 §4.2.1 item 7, §10.2), if present and valid text.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get(header::ORIGIN)?.to_str().ok()
    }

    /// The cookies of every `Cookie` header, as name and value.
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .get_all(header::COOKIE)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
    }

    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in the client's order of preference.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The extensions offered in `Sec-WebSocket-Extensions`, in order.
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    /// Accepts the request: the 101 response (200 for an extended CONNECT), with permessage-deflate negotiated from the
    /// client's offers when the server has a `deflate` configuration (RFC 7692 §5.1), and the
    /// parameters to build the connection with.
    ///
    /// # Errors
    /// [`MisuseError::SubprotocolNotOffered`] when `accept.subprotocol` was not offered
    /// (RFC 6455 §4.2.2 item 5.4); [`MisuseError::HandshakeHeader`] when `accept.headers` holds
    /// a header the handshake sets itself.
    pub fn accept(
        &self,
        accept: Accept,
        deflate: Option<&DeflateConfig>,
    ) -> Result<AcceptResponse, MisuseError> {
        AcceptResponse::new(
            self.key.as_ref(),
            &self.subprotocols,
            &self.extensions,
            accept,
            deflate,
        )
    }

    /// A refusal with any status, headers and body (401, 403, ...), as bytes to write.
    pub fn reject(&self, response: &Response) -> Bytes {
        response.encode()
    }
}

fn upgrade_required(reason: &str) -> Response {
    Response::text(StatusCode::UPGRADE_REQUIRED, reason)
}

fn single(headers: &HeaderMap, name: header::HeaderName) -> Option<&HeaderValue> {
    let mut values = headers.get_all(name).into_iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

fn decodes_to_16_bytes(key: &[u8]) -> bool {
    let mut out = [0u8; 18];
    matches!(
        base64::engine::general_purpose::STANDARD.decode_slice(key, &mut out),
        Ok(16)
    )
}
