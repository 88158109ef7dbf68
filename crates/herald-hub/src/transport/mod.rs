//! Transports besides the WebSocket: adapters that carry a hub session over plain HTTP.

pub(crate) mod sse;
