//! Protocol mode (`herald.v1`): commands in, replies and pushes out.

use super::{End, Session};
use crate::broadcast::data_json;
use crate::broker::{HistoryQuery, Payload, Publication};
use crate::hub::valid_channel;
use crate::limits::Rate;
use crate::recovery::{LiveFilter, recover};
use bytes::Bytes;
use herald_hub_protocol::{
    Call, ChannelParams, Command, CommandError, Connected, Disconnect, Empty, ErrorBody, ErrorCode,
    HistoryParams, HistoryResult, PresenceResult, PublicationBody, PublishParams, PublishResult,
    Push, Reply, StreamPosition, SubscribeParams, SubscribeResult,
};
use serde::Serialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

type Outcome<T> = Result<T, ErrorBody>;

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn start_protocol(&mut self) -> Result<(), End> {
        let push = Push::Connected(Connected {
            client: self.info.client.clone(),
            user: self.info.user.clone(),
            ping_interval: self.hub.config.heartbeat.interval.as_secs(),
        });
        self.send_text(push.to_json()).await
    }

    pub(super) async fn on_command(&mut self, text: &str) -> Result<(), End> {
        let command = match Command::parse(text) {
            Ok(command) => command,
            Err(CommandError::Malformed) => return Err(End::Close(Disconnect::BAD_REQUEST)),
            Err(CommandError::UnknownMethod { id }) => {
                return self
                    .reply::<Empty>(id, Err(ErrorBody::new(ErrorCode::UNKNOWN_METHOD)))
                    .await;
            }
            Err(CommandError::BadParams { id, detail }) => {
                let error = ErrorBody::with_message(ErrorCode::BAD_REQUEST, detail);
                return self.reply::<Empty>(id, Err(error)).await;
            }
        };
        let id = command.id;
        match command.call {
            Call::Subscribe(p) => {
                let outcome = self.subscribe(p).await;
                self.reply(id, outcome).await
            }
            Call::Unsubscribe(p) => {
                let outcome = self.unsubscribe(p).await;
                self.reply(id, outcome).await
            }
            Call::Publish(p) => match self.publish(p).await {
                Err(e) if e.code == ErrorCode::RATE_LIMITED && self.abusive() => {
                    self.reply::<Empty>(id, Err(e)).await?;
                    Err(End::Close(Disconnect::POLICY))
                }
                outcome => self.reply(id, outcome).await,
            },
            Call::History(p) => {
                let outcome = self.history(p).await;
                self.reply(id, outcome).await
            }
            Call::Presence(p) => {
                let outcome = self.presence(p).await;
                self.reply(id, outcome).await
            }
            Call::Ping => self.reply(id, Ok(Empty {})).await,
        }
    }

    async fn reply<T: Serialize>(&mut self, id: u64, outcome: Outcome<T>) -> Result<(), End> {
        let reply = match outcome {
            Ok(result) => Reply::ok(id, result),
            Err(error) => Reply::error(id, error),
        };
        // Serialising a reply cannot fail: every map key is a string.
        let text = serde_json::to_string(&reply).unwrap_or_default();
        self.send_text(text).await
    }

    fn abusive(&self) -> bool {
        self.rate.refused_too_often()
    }

    async fn subscribe(&mut self, p: SubscribeParams) -> Outcome<SubscribeResult> {
        let channel = checked_channel(&p.channel)?;
        if !self.identity.can_subscribe(channel) {
            return Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED));
        }
        if self.subscriptions.contains_key(channel) {
            return Err(ErrorBody::new(ErrorCode::ALREADY_SUBSCRIBED));
        }
        if self.subscriptions.len() >= self.hub.config.limits.max_subscriptions {
            return Err(ErrorBody::with_message(
                ErrorCode::LIMIT_EXCEEDED,
                "too many subscriptions",
            ));
        }
        let join_leave = p.join_leave && self.hub.config.presence.join_leave;
        let (name, position, recovery) = self.join(channel, p.recover.as_ref(), join_leave).await?;
        let (recovered, publications) = match recovery {
            Some((recovered, publications)) => (Some(recovered), publications),
            None => (None, Vec::new()),
        };
        self.subscriptions
            .insert(name, LiveFilter::new(position.clone()));
        Ok(SubscribeResult {
            offset: position.offset,
            epoch: position.epoch,
            recovered,
            publications: publications.iter().map(|p| body(p)).collect(),
        })
    }

    /// Registers for live delivery, then reads history: the order that leaves no gap.
    #[allow(clippy::type_complexity)]
    pub(super) async fn join(
        &mut self,
        channel: &str,
        since: Option<&StreamPosition>,
        join_leave: bool,
    ) -> Outcome<(
        Arc<str>,
        StreamPosition,
        Option<(bool, Vec<Arc<Publication>>)>,
    )> {
        let hub = self.hub.clone();
        let mut subscriber = self.subscriber.clone();
        subscriber.presence_events = join_leave;
        let name = hub
            .node
            .add(hub.broker.as_ref(), channel, self.id, subscriber)
            .await
            .map_err(broker_error)?;
        let query = HistoryQuery {
            after: since.map_or(0, |s| s.offset),
            limit: if since.is_some() {
                hub.config.history.size
            } else {
                0
            },
        };
        let start = Instant::now();
        let history = hub.broker.history(channel, query).await;
        hub.metrics
            .broker_op("history", start.elapsed().as_secs_f64());
        let history = match history {
            Ok(history) => history,
            Err(e) => {
                hub.node.remove(hub.broker.as_ref(), channel, self.id).await;
                return Err(broker_error(e));
            }
        };
        if hub.config.presence.enabled
            && let Err(e) = hub.broker.presence_add(channel, self.info.clone()).await
        {
            tracing::warn!(channel, error = %e, "presence add failed");
        }
        Ok(match since {
            Some(since) => {
                let r = recover(since, history);
                (name, r.position, Some((r.recovered, r.publications)))
            }
            None => (name, history.position, None),
        })
    }

    async fn unsubscribe(&mut self, p: ChannelParams) -> Outcome<Empty> {
        if self.subscriptions.remove(p.channel.as_str()).is_none() {
            return Err(ErrorBody::new(ErrorCode::NOT_SUBSCRIBED));
        }
        self.leave(&p.channel).await;
        Ok(Empty {})
    }

    async fn publish(&mut self, p: PublishParams) -> Outcome<PublishResult> {
        let channel = checked_channel(&p.channel)?;
        if !self.identity.can_publish(channel) {
            return Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED));
        }
        if self.rate.check(Instant::now()) != Rate::Allowed {
            return Err(ErrorBody::new(ErrorCode::RATE_LIMITED));
        }
        let payload = Payload::Json(Bytes::copy_from_slice(p.data.get().as_bytes()));
        let position = self
            .hub
            .publish(channel, payload, Some(self.info.clone()))
            .await
            .map_err(broker_error)?;
        Ok(PublishResult {
            offset: position.offset,
            epoch: position.epoch,
        })
    }

    async fn history(&mut self, p: HistoryParams) -> Outcome<HistoryResult> {
        let channel = checked_channel(&p.channel)?;
        if !self.identity.can_subscribe(channel) {
            return Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED));
        }
        history(&self.hub, channel, p.since.as_ref(), p.limit).await
    }

    async fn presence(&mut self, p: ChannelParams) -> Outcome<PresenceResult> {
        let channel = checked_channel(&p.channel)?;
        if !self.identity.can_subscribe(channel) {
            return Err(ErrorBody::new(ErrorCode::PERMISSION_DENIED));
        }
        presence(&self.hub, channel).await
    }
}

/// `history` for a connection or the HTTP API: publications after `since` (which must be
/// reachable: same epoch, not trimmed), at most `limit` (capped by the history size).
pub(crate) async fn history(
    hub: &crate::Hub,
    channel: &str,
    since: Option<&StreamPosition>,
    limit: Option<usize>,
) -> Outcome<HistoryResult> {
    let size = hub.config.history.size;
    let query = HistoryQuery {
        after: since.map_or(0, |s| s.offset),
        limit: limit.unwrap_or(size).min(size),
    };
    let history = hub
        .broker
        .history(channel, query)
        .await
        .map_err(broker_error)?;
    if let Some(since) = since {
        let reachable = since.epoch == history.position.epoch
            && since.offset <= history.position.offset
            && history
                .publications
                .first()
                .is_none_or(|p| p.offset == since.offset + 1)
            && (since.offset == history.position.offset || !history.publications.is_empty());
        if !reachable {
            return Err(ErrorBody::new(ErrorCode::POSITION_UNAVAILABLE));
        }
    }
    Ok(HistoryResult {
        offset: history.position.offset,
        epoch: history.position.epoch,
        publications: history.publications.iter().map(|p| body(p)).collect(),
    })
}

/// `presence` for a connection or the HTTP API.
pub(crate) async fn presence(hub: &crate::Hub, channel: &str) -> Outcome<PresenceResult> {
    if !hub.config.presence.enabled {
        return Err(ErrorBody::with_message(
            ErrorCode::BAD_REQUEST,
            "presence is disabled",
        ));
    }
    let clients = hub.broker.presence(channel).await.map_err(broker_error)?;
    Ok(PresenceResult { clients })
}

fn checked_channel(name: &str) -> Outcome<&str> {
    if valid_channel(name) {
        Ok(name)
    } else {
        Err(ErrorBody::with_message(
            ErrorCode::BAD_REQUEST,
            "invalid channel name",
        ))
    }
}

pub(crate) fn broker_error(e: crate::broker::BrokerError) -> ErrorBody {
    match e {
        crate::broker::BrokerError::Unavailable(_) => ErrorBody::new(ErrorCode::UNAVAILABLE),
        crate::broker::BrokerError::Internal(_) => ErrorBody::new(ErrorCode::INTERNAL),
        crate::broker::BrokerError::Limit(_) => {
            ErrorBody::with_message(ErrorCode::LIMIT_EXCEEDED, "history limit reached")
        }
        crate::broker::BrokerError::OutcomeUnknown(_) => ErrorBody::new(ErrorCode::OUTCOME_UNKNOWN),
    }
}

/// A publication as replies carry it.
pub(crate) fn body(p: &Publication) -> PublicationBody {
    let (data, encoding) = data_json(&p.payload);
    let data = String::from_utf8(data.into_owned())
        .ok()
        .and_then(|s| RawValue::from_string(s).ok())
        // Stored JSON was validated on the way in; `null` is never expected here.
        .unwrap_or_default();
    PublicationBody {
        offset: p.offset,
        data,
        encoding: encoding.map(str::to_owned),
        user: p
            .publisher
            .as_ref()
            .map(|i| i.user.clone())
            .filter(|u| !u.is_empty()),
    }
}
