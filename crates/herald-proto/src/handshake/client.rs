//! The client's side of the opening handshake (RFC 6455 §4.1).

use super::{ExtensionOffer, HandshakeLimits, Response, accept_key, has_token, list_items};
use crate::config::Entropy;
use crate::error::HandshakeError;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

/// What a client asks for: the URL and the handshake's optional headers.
#[derive(Clone, Debug)]
pub struct ClientRequest {
    uri: Uri,
    tls: bool,
    host: String,
    port: u16,
    origin: Option<String>,
    subprotocols: Vec<String>,
    extensions: Vec<String>,
    headers: HeaderMap,
}

impl ClientRequest {
    /// A request for a `ws://` or `wss://` URL.
    ///
    /// # Errors
    /// [`HandshakeError::InvalidUrl`] for another scheme, no host, or a fragment.
    pub fn new(url: &str) -> Result<Self, HandshakeError> {
        let invalid = |why: &str| HandshakeError::InvalidUrl(why.to_owned());
        if url.contains('#') {
            return Err(invalid("URL has a fragment"));
        }
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(invalid("scheme must be ws or wss")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            uri,
            tls,
            host,
            port,
            origin: None,
            subprotocols: Vec::new(),
            extensions: Vec::new(),
            headers: HeaderMap::new(),
        })
    }

    /// Whether the URL is `wss://`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host to connect to (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to (80 or 443 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends `Origin`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), in order of preference.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Offers an extension: one `Sec-WebSocket-Extensions` element, e.g.
    /// `permessage-deflate; client_max_window_bits`.
    pub fn extension(mut self, offer: impl Into<String>) -> Self {
        self.extensions.push(offer.into());
        self
    }

    /// Adds a header (e.g. `Authorization`, `Cookie`).
    pub fn header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.uri.port_u16() {
            Some(port) if port != if self.tls { 443 } else { 80 } => format!("{host}:{port}"),
            _ => host,
        }
    }

    /// The same request as an HTTP/2 extended CONNECT (RFC 8441 §4, §5): `:method` CONNECT,
    /// `:scheme` https (`wss://`) or http (`ws://`), `:authority`, `:path` the resource name,
    /// `Sec-WebSocket-Version: 13`, `Origin`, the offered subprotocols and extensions, the
    /// extra headers; no `Sec-WebSocket-Key`. The driver adds `:protocol` websocket, which
    /// its HTTP/2 library carries as a request extension.
    pub fn extended_connect(&self) -> http::Request<()> {
        let scheme = if self.tls { "https" } else { "http" };
        let target = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let target = if target.starts_with('/') {
            target
        } else {
            format!("/{target}")
        };
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::CONNECT;
        *request.version_mut() = http::Version::HTTP_2;
        // Host, scheme and path come from a URL that parsed; together they parse again.
        *request.uri_mut() = format!("{scheme}://{}{target}", self.host_header())
            .parse()
            .unwrap_or_else(|_| self.uri.clone());
        let headers = request.headers_mut();
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        let mut add = |name: http::HeaderName, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name, value);
            }
        };
        if let Some(origin) = &self.origin {
            add(header::ORIGIN, origin);
        }
        if !self.subprotocols.is_empty() {
            add(
                header::SEC_WEBSOCKET_PROTOCOL,
                &self.subprotocols.join(", "),
            );
        }
        if !self.extensions.is_empty() {
            add(
                header::SEC_WEBSOCKET_EXTENSIONS,
                &self.extensions.join(", "),
            );
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        request
    }

    /// Checks the answer to [`extended_connect`](Self::extended_connect): a 2xx accepts
    /// (RFC 8441 §5), with a subprotocol and extensions that were offered, as over HTTP/1.1.
    ///
    /// # Errors
    /// [`HandshakeError::Rejected`] with `refusal` (status, headers, body) for another status;
    /// [`HandshakeError::InvalidResponse`] for a subprotocol or extension not offered.
    pub fn check_extended_connect(&self, refusal: Response) -> Result<Accepted, HandshakeError> {
        if !refusal.status.is_success() {
            return Err(HandshakeError::Rejected(Box::new(refusal)));
        }
        let offered: Vec<String> = self
            .extensions
            .iter()
            .filter_map(|e| ExtensionOffer::parse(e))
            .map(|e| e.name)
            .collect();
        check_negotiated(refusal.headers, &self.subprotocols, &offered)
    }

    fn encode(&self, key: &str) -> Bytes {
        // RFC 6455 §3: the resource name is "/" for an empty path, then "?" and the query.
        let path = match self.uri.path() {
            "" => "/",
            path => path,
        };
        let target = match self.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let mut out = BytesMut::with_capacity(256);
        let mut line = |name: &str, value: &[u8]| {
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value);
            out.put_slice(b"\r\n");
        };
        line("Host", self.host_header().as_bytes());
        line("Upgrade", b"websocket");
        line("Connection", b"Upgrade");
        line("Sec-WebSocket-Key", key.as_bytes());
        line("Sec-WebSocket-Version", b"13");
        if let Some(origin) = &self.origin {
            line("Origin", origin.as_bytes());
        }
        if !self.subprotocols.is_empty() {
            line(
                "Sec-WebSocket-Protocol",
                self.subprotocols.join(", ").as_bytes(),
            );
        }
        if !self.extensions.is_empty() {
            line(
                "Sec-WebSocket-Extensions",
                self.extensions.join(", ").as_bytes(),
            );
        }
        for (name, value) in &self.headers {
            line(name.as_str(), value.as_bytes());
        }
        let mut request = BytesMut::with_capacity(out.len() + target.len() + 20);
        request.put_slice(format!("GET {target} HTTP/1.1\r\n").as_bytes());
        request.put_slice(&out);
        request.put_slice(b"\r\n");
        request.freeze()
    }
}

/// The server's acceptance, as checked by the client.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The subprotocol the server chose, one of the offered ones.
    pub subprotocol: Option<String>,
    /// The extensions the server accepted, each one that was offered.
    pub extensions: Vec<ExtensionOffer>,
    /// All response headers.
    pub headers: HeaderMap,
}

/// RFC 6455 §4.1 items 5 and 6, for HTTP/1.1 and HTTP/2 alike: the subprotocol and the
/// extensions in the answer are among the offered ones.
fn check_negotiated(
    headers: HeaderMap,
    offered_protocols: &[String],
    offered_extensions: &[String],
) -> Result<Accepted, HandshakeError> {
    let invalid = |why: &'static str| Err(HandshakeError::InvalidResponse(why));
    let protocols: Vec<&str> = list_items(&headers, header::SEC_WEBSOCKET_PROTOCOL).collect();
    let subprotocol = match protocols.as_slice() {
        [] => None,
        [one] if offered_protocols.iter().any(|p| p == one) => Some((*one).to_owned()),
        _ => return invalid("subprotocol was not offered"),
    };
    let extensions = ExtensionOffer::parse_all(&headers);
    let raw_count = list_items(&headers, header::SEC_WEBSOCKET_EXTENSIONS).count();
    if extensions.len() != raw_count
        || extensions
            .iter()
            .any(|e| !offered_extensions.contains(&e.name))
    {
        return invalid("extension was not offered");
    }
    Ok(Accepted {
        subprotocol,
        extensions,
        headers,
    })
}

/// A client handshake in progress: the request was written, the response is awaited.
///
/// ```
/// use herald_proto::SeededEntropy;
/// use herald_proto::handshake::{ClientHandshake, ClientRequest};
///
/// let request = ClientRequest::new("ws://example.com/chat").unwrap();
/// let (mut handshake, bytes) = ClientHandshake::new(&request, &mut SeededEntropy::new(1));
/// assert!(bytes.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
/// handshake.receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
/// let refusal = handshake.poll_response().unwrap_err();
/// assert!(refusal.to_string().contains("403"));
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    expected_accept: String,
    offered_protocols: Vec<String>,
    offered_extensions: Vec<String>,
    limits: HandshakeLimits,
    buf: BytesMut,
    /// A refusal whose body is still arriving.
    refusal: Option<(Response, Option<usize>)>,
    eof: bool,
    head_len: usize,
}

impl ClientHandshake {
    /// Starts a handshake with a fresh key from `entropy`; returns the request bytes to write.
    pub fn new(request: &ClientRequest, entropy: &mut dyn Entropy) -> (Self, Bytes) {
        Self::with_limits(request, entropy, HandshakeLimits::default())
    }

    /// As [`new`](Self::new), with `limits` on the response.
    pub fn with_limits(
        request: &ClientRequest,
        entropy: &mut dyn Entropy,
        limits: HandshakeLimits,
    ) -> (Self, Bytes) {
        let mut nonce = [0u8; 16];
        entropy.fill(&mut nonce);
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let offered_extensions = request
            .extensions
            .iter()
            .filter_map(|e| ExtensionOffer::parse(e))
            .map(|e| e.name)
            .collect();
        let handshake = Self {
            expected_accept: accept_key(key.as_bytes()),
            offered_protocols: request.subprotocols.clone(),
            offered_extensions,
            limits,
            buf: BytesMut::new(),
            refusal: None,
            eof: false,
            head_len: 0,
        };
        (handshake, request.encode(&key))
    }

    /// Appends bytes read from the transport.
    pub fn receive(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The transport ended (completes a refusal whose body runs to the end).
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    /// Checks the response once it has arrived (RFC 6455 §4.1, the client's checks 1–6).
    ///
    /// # Errors
    /// [`HandshakeError::Rejected`] with status, headers and body for a non-101 answer; other
    /// variants for a response that breaks the RFC or the limits.
    pub fn poll_response(&mut self) -> Result<Option<Accepted>, HandshakeError> {
        if self.refusal.is_some() {
            return self.poll_refusal_body();
        }
        let mut storage = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Response::new(&mut storage);
        let status = parsed.parse(&self.buf).map_err(|e| match e {
            httparse::Error::TooManyHeaders => HandshakeError::TooLarge,
            e => HandshakeError::Malformed(e.to_string()),
        })?;
        let head_len = match status {
            httparse::Status::Complete(n) if n <= self.limits.max_head_size => n,
            httparse::Status::Partial if self.buf.len() <= self.limits.max_head_size => {
                return if self.eof {
                    Err(HandshakeError::Incomplete)
                } else {
                    Ok(None)
                };
            }
            _ => return Err(HandshakeError::TooLarge),
        };
        self.head_len = head_len;
        let headers = super::to_header_map(parsed.headers)
            .ok_or_else(|| HandshakeError::Malformed("invalid header".into()))?;
        let status = parsed
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| HandshakeError::Malformed("invalid status".into()))?;
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let length = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let _ = self.buf.split_to(head_len);
            self.head_len = 0;
            let response = Response {
                status,
                headers,
                body: Bytes::new(),
            };
            self.refusal = Some((response, length));
            return self.poll_refusal_body();
        }
        self.check_accepted(headers).map(Some)
    }

    fn check_accepted(&self, headers: HeaderMap) -> Result<Accepted, HandshakeError> {
        let invalid = |why: &'static str| Err(HandshakeError::InvalidResponse(why));
        if !has_token(&headers, header::UPGRADE, "websocket") {
            return invalid("missing Upgrade: websocket");
        }
        if !has_token(&headers, header::CONNECTION, "upgrade") {
            return invalid("missing Connection: Upgrade");
        }
        let accept = headers
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .map(HeaderValue::as_bytes);
        if accept != Some(self.expected_accept.as_bytes()) {
            return invalid("wrong Sec-WebSocket-Accept");
        }
        check_negotiated(headers, &self.offered_protocols, &self.offered_extensions)
    }

    fn poll_refusal_body(&mut self) -> Result<Option<Accepted>, HandshakeError> {
        let Some((_, length)) = &self.refusal else {
            return Ok(None);
        };
        let cap = self.limits.max_body_size;
        let complete = match *length {
            Some(n) => self.buf.len() >= n.min(cap),
            None => self.eof || self.buf.len() >= cap,
        };
        if !complete {
            return if self.eof { self.refused() } else { Ok(None) };
        }
        self.refused()
    }

    fn refused(&mut self) -> Result<Option<Accepted>, HandshakeError> {
        let Some((mut response, length)) = self.refusal.take() else {
            return Ok(None);
        };
        let n = length
            .unwrap_or(usize::MAX)
            .min(self.limits.max_body_size)
            .min(self.buf.len());
        response.body = self.buf.split_to(n).freeze();
        Err(HandshakeError::Rejected(Box::new(response)))
    }

    /// The bytes after the 101 response head: the server's first frames. Feed them to the
    /// connection.
    pub fn into_remaining(mut self) -> BytesMut {
        self.buf.split_off(self.head_len.min(self.buf.len()))
    }
}
