//! # herald-proto
//!
//! A sans-I/O WebSocket engine: RFC 6455 for both roles, as pure state machines. Bytes go in,
//! events and bytes come out; there is no socket, no async runtime, no clock and no global
//! random number generator here.
//!
//! Where to start:
//! - [`handshake::RequestReader`] (server) and [`handshake::ClientHandshake`] (client) for the
//!   opening handshake (RFC 6455 §4);
//! - [`Connection`] for everything after it: framing, masking, fragmentation, UTF-8,
//!   ping/pong and the closing handshake (§5–§7).
//!
//! What it is not: a client or server. The `herald` crate drives these types over tokio.
//!
//! ```
//! use herald_proto::handshake::{Accept, ClientHandshake, ClientRequest, RequestReader};
//! use herald_proto::{CloseCode, Config, Connection, Event, Message, SeededEntropy};
//!
//! // The opening handshake.
//! let mut entropy = SeededEntropy::new(42);
//! let request = ClientRequest::new("ws://localhost:9001/echo").unwrap();
//! let (mut client_hs, request_bytes) = ClientHandshake::new(&request, &mut entropy);
//! let mut reader = RequestReader::default();
//! reader.receive(&request_bytes);
//! let request = reader.poll_request().unwrap().unwrap();
//! let response = request.accept(Accept::default(), None).unwrap();
//! client_hs.receive(&response.encode());
//! client_hs.poll_response().unwrap().unwrap();
//!
//! // Messages, then the closing handshake.
//! let mut client = Connection::client(Config::default(), Box::new(entropy));
//! let mut server = Connection::server(Config::default());
//! let mut wire = Vec::new();
//! client.send_text("hi").unwrap();
//! client.close(CloseCode::NORMAL, "bye").unwrap();
//! client.drain_transmit(&mut wire);
//! server.receive(&wire);
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::Text("hi".into()))));
//! let Some(Event::Closed(closed)) = server.poll_event() else { panic!() };
//! assert_eq!(closed.code(), CloseCode::NORMAL);
//! assert!(server.should_close_transport());
//! ```
#![deny(unsafe_code)] // one audited exception: `utf8::unchecked`

pub mod close;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::{CloseCode, CloseFrame, Closed, Initiator};
pub use config::{Config, Entropy, Role, SeededEntropy};
pub use connection::{Connection, Event, Message, PreparedMessage};
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::{HandshakeError, MisuseError, ProtocolError};
pub use frame::{FrameHeader, Opcode};
pub use utf8::{Utf8Bytes, Utf8Validator};
