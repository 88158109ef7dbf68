//! Token refresh without a reconnect (protocol mode).
//!
//! A connection whose token expires is sent a `refresh` push at `auth.refresh_notice` before
//! `exp` (half the time left when less than twice that is left); a `refresh` command with a
//! new token for the same user replaces the connection's claims and moves its expiry. Channels
//! the new claims no longer allow are left, each with an `unsubscribed` push before the reply.
//! A refused refresh changes nothing: the old token still closes the connection with 4501 at
//! its `exp`.

use super::{End, Session, Wire, deadline_from_unix};
use crate::auth::{AuthError, Identity};
use crate::hooks::Extension;
use crate::service::Outcome;
use herald_hub_protocol::{
    ErrorBody, ErrorCode, Push, RefreshDue, RefreshParams, RefreshResult, Unsubscribed,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The `reason` of an `unsubscribed` push for a channel the refreshed token does not allow.
const NARROWED: &str = "not allowed by the refreshed token";

/// When the `refresh` push is due for a connection that ends at `deadline`: `notice` before
/// it, or half the time left when that is less than twice `notice`; `None` when no deadline
/// or no notice (0).
pub(super) fn notice_at(deadline: Option<Instant>, notice: Duration) -> Option<Instant> {
    let deadline = deadline?;
    if notice.is_zero() {
        return None;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    Some(deadline - notice.min(left / 2))
}

/// Whether the identity came without a token (anonymous identities have no expiry; every
/// token has an `exp`).
fn anonymous(identity: &Identity) -> bool {
    identity.expires.is_none()
}

/// The shortest time left for which the refresh hook is asked again after a failed call.
const MIN_RETRY: Duration = Duration::from_secs(1);

impl Session {
    /// The notice is due: a connection the connect hook admitted asks the refresh hook (when
    /// configured), any other gets the `refresh` push.
    pub(super) async fn refresh_due(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        if self.identity.from_hook && self.hub.command_hooks.refreshes() {
            self.refresh_by_hook().await;
            return Ok(());
        }
        self.send_refresh_due(wire)
    }

    /// Asks the refresh hook: allowed, the expiry moves; denied, the connection ends at its
    /// expiry (4501); no answer, it asks again at half the time left (while a second is left).
    async fn refresh_by_hook(&mut self) {
        self.notice = None;
        let Some(expires) = self.identity.expires else {
            return;
        };
        match self.hub.command_hooks.refresh(&self.info, expires).await {
            Ok(Extension::Until(until)) => {
                self.identity.expires = Some(until);
                self.expiry = deadline_from_unix(until);
                self.notice = notice_at(self.expiry, self.hub.config.auth.refresh_notice);
            }
            Ok(Extension::Denied) => {}
            Err(failure) => {
                tracing::debug!(error = %failure, "refresh hook failed");
                let left = self
                    .expiry
                    .map(|at| at.saturating_duration_since(Instant::now()));
                if left.is_some_and(|left| left >= MIN_RETRY * 2) {
                    self.notice = notice_at(self.expiry, self.hub.config.auth.refresh_notice);
                }
            }
        }
    }

    /// Queues the `refresh` push: the token expires at `exp`.
    pub(super) fn send_refresh_due(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        self.notice = None;
        let Some(expires) = self.identity.expires else {
            return Ok(());
        };
        self.send_text(Push::Refresh(RefreshDue { expires }).to_json(), wire)
    }

    /// Runs `refresh`: the unsubscribed pushes it causes are queued here, the reply by the
    /// caller.
    pub(super) async fn refresh(
        &mut self,
        p: RefreshParams,
        wire: &mut impl Wire,
    ) -> Result<Outcome<RefreshResult>, End> {
        let refused = |code, result, message: &str| {
            self.hub.metrics.token_refresh(result);
            Ok(Err(ErrorBody::with_message(code, message)))
        };
        if anonymous(&self.identity) {
            return refused(ErrorCode::UNAUTHORIZED, "anonymous", "anonymous connection");
        }
        if p.token.is_empty() {
            return refused(
                ErrorCode::UNAUTHORIZED,
                "invalid",
                AuthError::Missing.reason(),
            );
        }
        let auth = self.hub.live().auth.clone();
        let identity = match auth.authenticate(Some(&p.token)).await {
            Ok(identity) => identity,
            Err(e) => {
                let result = if e == AuthError::Expired {
                    "expired"
                } else {
                    "invalid"
                };
                return refused(ErrorCode::UNAUTHORIZED, result, e.reason());
            }
        };
        if identity.user != self.identity.user {
            return refused(
                ErrorCode::PERMISSION_DENIED,
                "other_user",
                "token for another user",
            );
        }
        self.hub.metrics.token_refresh("ok");
        self.expiry = identity.expires.and_then(deadline_from_unix);
        self.notice = notice_at(self.expiry, self.hub.config.auth.refresh_notice);
        let expires = identity.expires.filter(|&e| e != u64::MAX);
        self.identity = identity;
        self.leave_narrowed(wire).await?;
        Ok(Ok(RefreshResult { expires }))
    }

    /// Leaves every channel the claims no longer allow, with an `unsubscribed` push each. The
    /// personal channel and the subscriptions the server made stay: the server granted them,
    /// not the token's patterns.
    async fn leave_narrowed(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        let gone: Vec<Arc<str>> = self
            .subscriptions
            .keys()
            .filter(|c| !self.granted.contains(c) && self.check_read(c).is_err())
            .cloned()
            .collect();
        for channel in gone {
            self.subscriptions.remove(&channel);
            self.hub.unsubscribe(&channel, self.id, &self.info).await;
            let push = Push::Unsubscribed(Unsubscribed {
                channel: channel.to_string(),
                reason: NARROWED.into(),
            });
            self.send_text(push.to_json(), wire)?;
        }
        Ok(())
    }
}
