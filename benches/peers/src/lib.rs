//! What the raw TCP peers (`tcp-fanout`, `tcp-echo`) share: answering the opening handshake
//! and turning complete masked client frames into server frames, with no other WebSocket logic.

pub mod floor;
