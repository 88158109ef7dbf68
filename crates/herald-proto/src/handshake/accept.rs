//! The 101 response (RFC 6455 §4.2.2 item 5), built once for every driver: raw transports
//! write [`AcceptResponse::encode`], HTTP servers send [`AcceptResponse::into_http`].

use super::{ExtensionOffer, accept_key};
use crate::deflate::{DeflateConfig, DeflateParams, negotiate_server};
use crate::error::MisuseError;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

/// What the application decides when it accepts a request: the subprotocol and extra headers.
///
/// Extensions are not in it: the engine negotiates those it runs (permessage-deflate, from the
/// server's [`DeflateConfig`]), so a response never claims one the connection would not
/// decode.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    /// The subprotocol chosen among the offered ones (`Sec-WebSocket-Protocol`), or none.
    pub subprotocol: Option<String>,
    /// Extra headers, such as `Set-Cookie`. Not the ones the handshake sets: `Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`, `Content-Length`, `Transfer-Encoding`.
    pub headers: HeaderMap,
}

/// The 101 response that accepts a handshake, and what it negotiated.
///
/// A driver on a raw transport writes [`encode`](Self::encode); one behind an HTTP server
/// (hyper, axum) sends [`into_http`](Self::into_http). Either way the connection is then built
/// with [`deflate`](Self::deflate)'s parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptResponse {
    status: StatusCode,
    headers: HeaderMap,
    deflate: Option<DeflateParams>,
}

impl AcceptResponse {
    /// Builds the response to a request with `key`, offering `subprotocols` and `extensions`:
    /// a 101, or without a key (an HTTP/2 extended CONNECT) a 200 without `Upgrade`,
    /// `Connection` and `Sec-WebSocket-Accept` (RFC 8441 §5).
    pub(super) fn new(
        key: Option<&HeaderValue>,
        subprotocols: &[String],
        extensions: &[ExtensionOffer],
        accept: Accept,
        deflate: Option<&DeflateConfig>,
    ) -> Result<Self, MisuseError> {
        if let Some(name) = accept.headers.keys().find(|name| is_handshake_header(name)) {
            return Err(MisuseError::HandshakeHeader(name.clone()));
        }
        let mut headers = HeaderMap::with_capacity(5 + accept.headers.len());
        let status = match key {
            Some(key) => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_value(key));
                StatusCode::SWITCHING_PROTOCOLS
            }
            None => StatusCode::OK,
        };
        if let Some(protocol) = &accept.subprotocol {
            // RFC 6455 §4.2.2 item 5.4: one of the values the client sent.
            if !subprotocols.iter().any(|p| p == protocol) {
                return Err(MisuseError::SubprotocolNotOffered);
            }
            let value = HeaderValue::from_str(protocol).map_err(|_| MisuseError::InvalidHeader)?;
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        // RFC 7692 §5.1: the server answers at most one offer, with the parameters it will use.
        let deflate = deflate.and_then(|config| negotiate_server(extensions, config));
        if let Some(params) = &deflate {
            headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, params.to_header_value());
        }
        headers.extend(accept.headers);
        Ok(Self {
            status,
            headers,
            deflate,
        })
    }

    /// The status: 101 Switching Protocols, or 200 for an HTTP/2 extended CONNECT.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers, in the order they are written: `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept` (HTTP/1.1 only), `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when
    /// chosen and negotiated, then the application's extra headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The chosen subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.headers
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
    }

    /// The permessage-deflate parameters agreed on, to build the connection with
    /// ([`Connection::with_deflate`](crate::Connection::with_deflate)); `None` when the client
    /// offered nothing the server's [`DeflateConfig`] accepts, or the server has none.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// The bytes to write on a raw transport: status line, headers, empty line.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(160);
        out.put_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in &self.headers {
            out.put_slice(wire_name(name).as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.freeze()
    }

    /// The same response for an HTTP server (hyper, axum), with `body` (empty: a 101 has none).
    pub fn into_http<B>(self, body: B) -> http::Response<B> {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status();
        *response.headers_mut() = self.headers;
        response
    }
}

fn accept_value(key: &HeaderValue) -> HeaderValue {
    // The accept key is base64: ASCII letters, digits, `+`, `/` and `=`, all valid in a value.
    HeaderValue::try_from(accept_key(key.as_bytes()))
        .expect("a base64 string is a valid header value")
}

/// The headers the handshake itself writes or that a 101 must not carry (RFC 9110 §8.6: no
/// `Content-Length` in a 1xx response).
fn is_handshake_header(name: &HeaderName) -> bool {
    name == header::UPGRADE
        || name == header::CONNECTION
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name.as_str().starts_with("sec-websocket-")
}

/// The name as written on the wire: the handshake's own headers in the RFC's spelling.
fn wire_name(name: &HeaderName) -> &str {
    match name {
        n if n == header::UPGRADE => "Upgrade",
        n if n == header::CONNECTION => "Connection",
        n if n == header::SEC_WEBSOCKET_ACCEPT => "Sec-WebSocket-Accept",
        n if n == header::SEC_WEBSOCKET_PROTOCOL => "Sec-WebSocket-Protocol",
        n if n == header::SEC_WEBSOCKET_EXTENSIONS => "Sec-WebSocket-Extensions",
        n => n.as_str(),
    }
}
