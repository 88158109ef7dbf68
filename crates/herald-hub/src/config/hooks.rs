//! Calls to the application's backend: the connect hook and the subscribe, publish and RPC
//! hooks (docs/operations.md, "Connecting your backend").

use serde::Deserialize;
use std::time::Duration;

/// The hooks, `[hooks.*]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// The connect hook: the backend admits or refuses each WebSocket handshake.
    pub connect: ConnectHookConfig,
    /// The subscribe hook: the backend allows or denies each subscribe in the namespaces
    /// with `subscribe_hook = true`.
    pub subscribe: CommandHookConfig,
    /// The publish hook: the backend allows, rewrites or denies each publication from a
    /// connection in the namespaces with `publish_hook = true`.
    pub publish: CommandHookConfig,
    /// The RPC hook: the backend answers each `rpc` command.
    pub rpc: CommandHookConfig,
    /// The refresh hook: the backend extends the session of a connection the connect hook
    /// admitted with an expiry, instead of the client sending a new token.
    pub refresh: CommandHookConfig,
}

/// A hook called for a client's command, `[hooks.subscribe]`, `[hooks.publish]` or
/// `[hooks.rpc]`. With `url` unset the hook is off: a namespace cannot enable the subscribe
/// or publish hook (`HubConfig::validate`), and `rpc` is answered with 102.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandHookConfig {
    /// The `http://` or `https://` URL the command is POSTed to. Default unset: no hook.
    pub url: Option<String>,
    /// How long one call may take, connect to the last byte of the answer; past it the call
    /// failed (`timeout`). Default 2 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Calls in flight at once on this node; a command past it fails at once (`overloaded`)
    /// with the failure rule, so a slow backend cannot pile up waiting commands. Default 256.
    pub max_in_flight: usize,
    /// Consecutive failed calls that open the circuit: calls are then skipped for
    /// `breaker_cooldown` and the failure rule applies (`open_circuit`). Default 5.
    pub breaker_failures: u32,
    /// How long an open circuit skips calls. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// What a failed or skipped call means: false (default) answers 109 (`unavailable`,
    /// temporary; plain mode closes with 1011); true lets a subscribe or publish proceed as
    /// if no hook were configured. An `rpc` has nothing to proceed with: always 109.
    pub fail_open: bool,
    /// The largest answer read from the backend, bytes; a larger one is a failed call.
    /// Default 64 KiB.
    pub max_response: usize,
}

impl Default for CommandHookConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(2),
            max_in_flight: 256,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(10),
            fail_open: false,
            max_response: 64 * 1024,
        }
    }
}

/// The connect hook, `[hooks.connect]`. With `url` set, a handshake that carries no token
/// (or when no JWT key is configured, any handshake) is POSTed to the backend before the 101,
/// and its answer admits the connection with an identity or refuses it with a status.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectHookConfig {
    /// The `http://` or `https://` URL the handshake is POSTed to. Default unset: no hook.
    pub url: Option<String>,
    /// Request headers copied into the call (case-insensitive names); the others are not
    /// sent. Default: Cookie, Authorization, Origin, User-Agent, X-Forwarded-For,
    /// X-Forwarded-Proto, X-Forwarded-Host.
    pub headers: Vec<String>,
    /// How long one call may take, connect to the last byte of the answer; past it the call
    /// failed (`timeout`). Default 2 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Calls in flight at once on this node; a handshake past it is refused with 503 at once
    /// (`overloaded`), so a slow backend cannot pile up waiting handshakes. Default 256.
    pub max_in_flight: usize,
    /// Consecutive failed calls (errors and timeouts) that open the circuit: calls are then
    /// skipped for `breaker_cooldown` and the failure rule applies (`open_circuit`). Default 5.
    pub breaker_failures: u32,
    /// How long an open circuit skips calls; after it calls go through again, and the next
    /// failure opens it again. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// What a failed or skipped call means: false (default) refuses the handshake with 503;
    /// true applies the anonymous policy (`auth.allow_anonymous` and its patterns), as if
    /// no hook were configured and no token sent.
    pub fail_open: bool,
}

impl Default for ConnectHookConfig {
    fn default() -> Self {
        Self {
            url: None,
            headers: [
                "Cookie",
                "Authorization",
                "Origin",
                "User-Agent",
                "X-Forwarded-For",
                "X-Forwarded-Proto",
                "X-Forwarded-Host",
            ]
            .map(String::from)
            .to_vec(),
            timeout: Duration::from_secs(2),
            max_in_flight: 256,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(10),
            fail_open: false,
        }
    }
}
