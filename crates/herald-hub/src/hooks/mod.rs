//! Calls to the application's backend. One so far: the connect hook ([`ConnectHook`]), which
//! admits or refuses a WebSocket handshake before the 101. Every call has a timeout, a bound
//! on calls in flight, a circuit breaker, a metric per outcome and a documented answer when
//! the backend is down (docs/operations.md, "Connecting your backend").

mod breaker;
mod connect;

pub(crate) use connect::{ConnectHook, Failure, Verdict};
