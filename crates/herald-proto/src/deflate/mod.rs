//! permessage-deflate (RFC 7692): negotiation and the per-connection codec.
//!
//! The codec allocates its deflate and inflate state on first use, so an idle connection that
//! negotiated compression costs nothing extra until it sends or receives a compressed message.
//!
//! The server negotiates in [`Request::accept`](crate::handshake::Request::accept), from the
//! client's offers and its own [`DeflateConfig`]; the client offers with [`client_offer`] and
//! checks the answer with [`negotiate_client`].
//!
//! ```
//! use herald_proto::deflate::{client_offer, negotiate_client};
//! use herald_proto::handshake::{Accept, ExtensionOffer, RequestReader};
//! use herald_proto::{Config, Connection, DeflateConfig, Event, Message, SeededEntropy};
//!
//! let settings = DeflateConfig::default();
//! // The client offers, the server picks, the client checks the answer.
//! let mut reader = RequestReader::default();
//! reader.receive(
//!     format!(
//!         "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
//!          Sec-WebSocket-Extensions: {}\r\n\r\n",
//!         client_offer(&settings)
//!     )
//!     .as_bytes(),
//! );
//! let request = reader.poll_request().unwrap().unwrap();
//! let response = request.accept(Accept::default(), Some(&settings)).unwrap();
//! let params = response.deflate().unwrap();
//! let answer = response.headers()["sec-websocket-extensions"].to_str().unwrap();
//! let answer = ExtensionOffer::parse(answer).unwrap();
//! assert_eq!(negotiate_client(&answer, &settings), Ok(params));
//!
//! let mut server = Connection::server(Config::default()).with_deflate(params, &settings);
//! let mut client = Connection::client(Config::default(), Box::new(SeededEntropy::new(1)))
//!     .with_deflate(params, &settings);
//! let text = "a chat message, ".repeat(16); // over the 128-byte threshold: compressed
//! server.send_text(text.clone()).unwrap();
//! let mut wire = Vec::new();
//! server.drain_transmit(&mut wire);
//! assert!(wire.len() < text.len());
//! client.receive(&wire);
//! assert_eq!(client.poll_event(), Some(Event::Message(Message::Text(text.into()))));
//! ```

mod codec;
mod negotiate;

pub(crate) use codec::Codec;
pub(crate) use negotiate::negotiate_server;
pub use negotiate::{client_offer, negotiate_client};

/// The extension token.
pub const EXTENSION: &str = "permessage-deflate";

/// What an endpoint asks for when it negotiates permessage-deflate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The server's LZ77 window, 8–15 bits (RFC 7692 §7.1.2.1). A server uses at most this; a
    /// client asks the server for it when below 15. Default 15. Each step down halves the
    /// deflate and inflate memory of a connection and lowers the compression ratio.
    pub server_max_window_bits: u8,
    /// The client's LZ77 window, 8–15 bits (RFC 7692 §7.1.2.2). Default 15.
    pub client_max_window_bits: u8,
    /// The server resets its compression context after every message (§7.1.1.1). Lets one
    /// compressed frame be shared by every recipient of a broadcast. Default false.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message (§7.1.1.2). Default false.
    pub client_no_context_takeover: bool,
    /// The deflate level, 0–9. Default 1: most of the ratio for little CPU.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed. Default 128 bytes.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            level: 1,
            threshold: 128,
        }
    }
}

/// The parameters both ends agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server's window, in bits.
    pub server_max_window_bits: u8,
    /// The client's window, in bits.
    pub client_max_window_bits: u8,
    /// The server resets its context after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its context after each message.
    pub client_no_context_takeover: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value that states these parameters.
    pub fn to_header(&self) -> String {
        let mut out = String::from(EXTENSION);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_max_window_bits < 15 {
            out.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        out
    }

    /// [`to_header`](Self::to_header) as a header value.
    pub(crate) fn to_header_value(self) -> http::HeaderValue {
        // The extension token, parameter names, `;`, `=`, spaces and digits: all valid in a value.
        http::HeaderValue::try_from(self.to_header())
            .expect("permessage-deflate parameters are a valid header value")
    }
}
