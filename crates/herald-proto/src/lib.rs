//! Sans-I/O WebSocket engine.
