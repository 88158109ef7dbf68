//! Transports besides the WebSocket: adapters that carry a hub session over plain HTTP.

mod body;
pub(crate) mod poll;
pub(crate) mod sse;
pub(crate) mod stream;
