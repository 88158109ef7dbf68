//! Async WebSocket client and server.
