//! Calls to the application's backend: the connect hook ([`ConnectHook`]), which admits or
//! refuses a WebSocket handshake before the 101, and the command hooks ([`CommandHooks`]:
//! subscribe, publish, rpc). Every call goes through one [`call::Caller`]: a timeout, a bound
//! on calls in flight, a circuit breaker, a metric per outcome and a documented answer when
//! the backend is down (docs/operations.md, "Connecting your backend").

mod breaker;
mod call;
mod command;
mod connect;
mod refresh;

pub(crate) use call::Failure;
pub(crate) use command::{CommandHooks, plain_payload};
pub(crate) use connect::{ConnectHook, Handshake, Verdict};
pub(crate) use refresh::Extension;
