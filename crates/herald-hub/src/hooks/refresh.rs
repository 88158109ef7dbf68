//! The refresh hook: for a connection the connect hook admitted with an expiry, the hub asks
//! the backend, before the expiry, whether the session goes on:
//! `{"client","user","expires"}` → `{"allow": true, "expires": UNIX_SECONDS}` (the new end) or
//! `{"allow": false}` (the connection closes with 4501 at its current expiry).

use super::Failure;
use super::command::{CommandHooks, json, malformed};
use crate::fetch::FetchError;
use herald_hub_protocol::ClientInfo;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct RefreshCall<'a> {
    client: &'a str,
    user: &'a str,
    expires: u64,
}

#[derive(Deserialize)]
struct RefreshAnswer {
    allow: bool,
    #[serde(default)]
    expires: Option<u64>,
}

/// What the backend decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extension {
    /// The session now ends at this Unix time.
    Until(u64),
    /// The session ends at its current expiry.
    Denied,
}

fn extension(answer: &[u8]) -> Result<Extension, FetchError> {
    let a: RefreshAnswer = serde_json::from_slice(answer).map_err(malformed)?;
    match (a.allow, a.expires) {
        (true, Some(expires)) => Ok(Extension::Until(expires)),
        (true, None) => Err(malformed("allow without expires")),
        (false, _) => Ok(Extension::Denied),
    }
}

impl CommandHooks {
    /// Whether `hooks.refresh.url` is set.
    pub(crate) fn refreshes(&self) -> bool {
        self.refresh.is_some()
    }

    /// Asks the refresh hook to extend the session of `who`, which ends at `expires`.
    ///
    /// # Errors
    /// [`Failure`] when no answer came (or no hook is configured: never asked then).
    pub(crate) async fn refresh(
        &self,
        who: &ClientInfo,
        expires: u64,
    ) -> Result<Extension, Failure> {
        let Some(hook) = &self.refresh else {
            return Err(Failure::OpenCircuit);
        };
        let body = json(&RefreshCall {
            client: &who.client,
            user: &who.user,
            expires,
        });
        let label = |e: &Extension| match e {
            Extension::Until(_) => "allow",
            Extension::Denied => "deny",
        };
        hook.caller.post(body, extension, label).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{Extension, extension};

    #[test]
    fn an_answer_extends_denies_or_is_malformed() {
        assert_eq!(
            extension(br#"{"allow":true,"expires":4102444800}"#).unwrap(),
            Extension::Until(4_102_444_800)
        );
        assert_eq!(extension(br#"{"allow":false}"#).unwrap(), Extension::Denied);
        assert!(extension(br#"{"allow":true}"#).is_err());
        assert!(extension(b"[]").is_err());
    }
}
