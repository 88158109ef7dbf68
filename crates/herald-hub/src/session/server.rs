//! What the server does for a connection by itself: the per-user connection limit, the
//! personal channel and the token's `subs` at connect, the server API's subscribe and
//! unsubscribe, and the rule that keeps personal channels personal.
//!
//! A server-side subscription is announced with a `subscribed` push carrying the position
//! live delivery starts after (read once the connection was registered for live delivery,
//! so nothing falls between): a client that held an earlier position reads the gap with
//! `history` `since` that position.

use super::{End, Mode, Session, Wire};
use crate::recovery::LiveFilter;
use crate::service::Outcome;
use crate::service::{Member, Start, checked_channel};
use crate::users::ServerOp;
use herald_hub_protocol::{Disconnect, ErrorBody, ErrorCode, Push, Subscribed, Unsubscribed};
use std::sync::Arc;

/// Why the server subscribed a connection, for logs.
#[derive(Clone, Copy, Debug)]
enum Source {
    Personal,
    Claim,
    Api,
}

impl Session {
    /// Counts the connection against `limits.max_connections_per_user`; over it, 4503. A
    /// broker that cannot count lets the connection in (the per-IP and global limits still
    /// hold), logged and counted as a broker error.
    pub(super) async fn admit(&mut self) -> Result<(), End> {
        match self
            .hub
            .admit_connection(&self.info.user, &self.info.client)
            .await
        {
            Ok(true) => {
                self.counted = !self.info.user.is_empty()
                    && self.hub.live().config.limits.max_connections_per_user > 0;
            }
            Ok(false) => return Err(End::Close(Disconnect::CONNECTION_LIMIT)),
            Err(_) => {}
        }
        if let Some(webhooks) = &self.hub.webhooks {
            webhooks.connection(&self.info.user, true);
            self.online = true;
        }
        Ok(())
    }

    /// Releases what [`admit`](Self::admit) counted.
    pub(super) async fn release(&mut self) {
        if std::mem::take(&mut self.online)
            && let Some(webhooks) = &self.hub.webhooks
        {
            webhooks.connection(&self.info.user, false);
        }
        if std::mem::take(&mut self.counted) {
            self.hub
                .release_connection(&self.info.user, &self.info.client)
                .await;
        }
    }

    /// Subscribes a protocol-mode connection to its personal channel, then to the token's
    /// `subs`. A broker failure closes with 4003 (reconnect later); an invalid name in `subs`,
    /// another user's personal channel or one past `limits.max_subscriptions` is skipped.
    pub(super) async fn server_subscriptions(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        let personal = self.hub.config.users.personal_channel(&self.info.user);
        let subs = std::mem::take(&mut self.identity.subs);
        let wanted = personal
            .into_iter()
            .map(|c| (c, Source::Personal))
            .chain(subs.into_iter().map(|c| (c, Source::Claim)));
        for (channel, source) in wanted {
            if self.server_subscribe(&channel, source, wire).await? == Joined::Failed {
                return Err(End::Close(Disconnect::UNAVAILABLE));
            }
        }
        Ok(())
    }

    /// Applies a server API operation. Plain-mode connections have one room and no pushes:
    /// they ignore both.
    pub(super) async fn on_server_op(
        &mut self,
        op: ServerOp,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        if matches!(self.mode, Mode::Plain { .. }) {
            return Ok(());
        }
        match op {
            ServerOp::Subscribe(channel) => {
                self.server_subscribe(&channel, Source::Api, wire).await?;
            }
            ServerOp::Unsubscribe(channel) => {
                if self.subscriptions.remove(&channel).is_some() {
                    self.granted.remove(&channel);
                    self.hub.unsubscribe(&channel, self.id, &self.info).await;
                    let push = Push::Unsubscribed(Unsubscribed {
                        channel: channel.to_string(),
                        reason: "server".into(),
                    });
                    self.send_text(push.to_json(), wire)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the connection may subscribe to, read the history and presence of `channel`:
    /// its own personal channel always, another user's never, any other as its namespace's
    /// rules and its token allow.
    ///
    /// # Errors
    /// 103 for another user's personal channel; the namespace's refusal otherwise (112, 103).
    pub(super) fn check_read(&self, channel: &str) -> Outcome<()> {
        let hub = &self.hub;
        match hub.config.users.owner(channel) {
            Some(owner) if owner == self.info.user => Ok(()),
            Some(_) => Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED)),
            None => hub
                .live()
                .namespaces
                .check_subscribe(&self.identity, channel, &hub.metrics),
        }
    }

    /// Whether the connection may publish to `channel`: never on another user's personal
    /// channel, on its own when its token's publish patterns allow it (to reach the user's
    /// other connections), on any other as its namespace's rules and its token allow.
    ///
    /// # Errors
    /// 103 for another user's personal channel; the namespace's refusal otherwise (112, 103).
    pub(super) fn check_write(&self, channel: &str) -> Outcome<()> {
        let hub = &self.hub;
        if hub
            .config
            .users
            .owner(channel)
            .is_some_and(|owner| owner != self.info.user)
        {
            return Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED));
        }
        hub.live()
            .namespaces
            .check_publish(&self.identity, channel, &hub.metrics)
    }

    async fn server_subscribe(
        &mut self,
        channel: &str,
        source: Source,
        wire: &mut impl Wire,
    ) -> Result<Joined, End> {
        let refused = checked_channel(channel).is_err()
            || self
                .hub
                .config
                .users
                .owner(channel)
                .is_some_and(|owner| owner != self.info.user);
        if refused {
            tracing::debug!(client = %self.info.client, channel, ?source, "server subscription refused");
            self.hub.metrics.limit_hit("server_subscription_channel");
            return Ok(Joined::Skipped);
        }
        if self.subscriptions.contains_key(channel) {
            return Ok(Joined::Skipped);
        }
        if self.subscriptions.len() >= self.hub.live().config.limits.max_subscriptions {
            self.hub.metrics.limit_hit("max_subscriptions");
            return Ok(Joined::Skipped);
        }
        let member = Member {
            id: self.id,
            info: &self.info,
            subscriber: self.subscriber.clone(),
        };
        // The `subscribed` push carries a position, not publications: no `latest` here.
        let start = Start {
            since: None,
            latest: Some(0),
        };
        let Ok(joined) = self.hub.subscribe(channel, member, start).await else {
            // Counted and logged by the service API.
            return Ok(Joined::Failed);
        };
        let push = Push::Subscribed(Subscribed {
            channel: channel.to_owned(),
            offset: joined.position.offset,
            epoch: joined.position.epoch.clone(),
        });
        self.granted.insert(Arc::clone(&joined.name));
        self.subscriptions
            .insert(Arc::clone(&joined.name), LiveFilter::new(joined.position));
        self.send_text(push.to_json(), wire)?;
        Ok(Joined::Done)
    }
}

/// How one server subscription went.
#[derive(Debug, PartialEq, Eq)]
enum Joined {
    Done,
    Skipped,
    Failed,
}
