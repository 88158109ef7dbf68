//! Protocol mode (`herald.v1`): commands in, replies and pushes out.

use super::{BYTES_PER_UNIT, End, Session, Wire};
use crate::broker::Payload;
use crate::limits::Rate;
use crate::recovery::LiveFilter;
use crate::service::{Member, Outcome, Read, Start, checked_channel};
use bytes::Bytes;
use herald_hub_protocol::{
    Call, ChannelParams, Command, CommandError, Connected, Disconnect, Empty, ErrorBody, ErrorCode,
    HistoryParams, HistoryResult, PresenceResult, PublishParams, PublishResult, Push, Reply,
    RpcParams, RpcResult, SubscribeParams, SubscribeResult,
};
use serde::Serialize;
use std::time::Instant;

/// What a command costs before its reply, in units of `limits.command_rate`.
fn base_cost(call: &Call) -> f64 {
    match call {
        Call::Subscribe(_) => 2.0,
        _ => 1.0,
    }
}

impl Session {
    pub(super) async fn start_protocol(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        let push = Push::Connected(Connected {
            client: self.info.client.clone(),
            user: self.info.user.clone(),
            ping_interval: self.hub.config.heartbeat.interval.as_secs(),
            expires: self.identity.expires.filter(|&e| e != u64::MAX),
        });
        self.send_text(push.to_json(), wire)?;
        self.server_subscriptions(wire).await
    }

    pub(super) async fn on_command(&mut self, text: &str, wire: &mut impl Wire) -> Result<(), End> {
        let command = match Command::parse(text) {
            Ok(command) => command,
            Err(CommandError::Malformed) => return Err(End::Close(Disconnect::BAD_REQUEST)),
            Err(CommandError::UnknownMethod { id }) => {
                self.meter(1.0, id, wire)?;
                return self.reply::<Empty>(
                    id,
                    Err(ErrorBody::new(ErrorCode::UNKNOWN_METHOD)),
                    wire,
                );
            }
            Err(CommandError::BadParams { id, detail }) => {
                self.meter(1.0, id, wire)?;
                let error = ErrorBody::with_message(ErrorCode::BAD_REQUEST, detail);
                return self.reply::<Empty>(id, Err(error), wire);
            }
        };
        let id = command.id;
        if !matches!(command.call, Call::Publish(_))
            && !self.meter(base_cost(&command.call), id, wire)?
        {
            return Ok(());
        }
        match command.call {
            Call::Subscribe(p) => {
                let outcome = self.subscribe(p).await;
                self.reply(id, outcome, wire)
            }
            Call::Unsubscribe(p) => {
                let outcome = self.unsubscribe(p).await;
                self.reply(id, outcome, wire)
            }
            Call::Publish(p) => match self.publish(p).await {
                Err(e)
                    if e.code == ErrorCode::RATE_LIMITED
                        && self.publish_rate.refused_too_often() =>
                {
                    self.reply::<Empty>(id, Err(e), wire)?;
                    Err(self.abuse("publish_rate"))
                }
                outcome => self.reply(id, outcome, wire),
            },
            Call::History(p) => {
                let outcome = self.history(p).await;
                self.reply(id, outcome, wire)
            }
            Call::Presence(p) => {
                let outcome = self.presence(p).await;
                self.reply(id, outcome, wire)
            }
            Call::Ping => self.reply(id, Ok(Empty {}), wire),
            Call::Refresh(p) => {
                let outcome = self.refresh(p, wire).await?;
                self.reply(id, outcome, wire)
            }
            Call::Rpc(p) => {
                let outcome = self.rpc(p).await;
                self.reply(id, outcome, wire)
            }
        }
    }

    /// Spends `cost` from the command budget. `Ok(false)`: refused, and the 108 reply is
    /// queued; a connection refused a whole burst in a row is closed with 1008.
    fn meter(&mut self, cost: f64, id: u64, wire: &mut impl Wire) -> Result<bool, End> {
        match self.commands.spend(Instant::now(), cost) {
            Rate::Allowed => Ok(true),
            rate => {
                self.hub.metrics.limit_hit("command_rate");
                self.reply::<Empty>(id, Err(ErrorBody::new(ErrorCode::RATE_LIMITED)), wire)?;
                if rate == Rate::Abusive {
                    return Err(self.abuse("command_rate"));
                }
                Ok(false)
            }
        }
    }

    /// Queues a reply; its size is charged to the command budget.
    pub(super) fn reply<T: Serialize>(
        &mut self,
        id: u64,
        outcome: Outcome<T>,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        let reply = match outcome {
            Ok(result) => Reply::ok(id, result),
            Err(error) => Reply::error(id, error),
        };
        // serde_json fails only on maps with non-string keys and on writers that fail; a
        // reply has neither.
        let text = serde_json::to_string(&reply).expect("a reply serialises to JSON");
        self.commands.charge((text.len() / BYTES_PER_UNIT) as f64);
        self.send_text(text, wire)
    }

    /// Queues a reply or push (text).
    pub(super) fn send_text(&mut self, text: String, wire: &mut impl Wire) -> Result<(), End> {
        self.hub.metrics.messages_out.inc();
        self.hub.metrics.bytes_out.inc_by(text.len() as u64);
        Ok(wire.send_text(text)?)
    }

    async fn subscribe(&mut self, p: SubscribeParams) -> Outcome<SubscribeResult> {
        let channel = checked_channel(&p.channel)?;
        self.check_read(channel)?;
        if self.subscriptions.contains_key(channel) {
            return Err(ErrorBody::new(ErrorCode::ALREADY_SUBSCRIBED));
        }
        if self.subscriptions.len() >= self.hub.live().config.limits.max_subscriptions {
            self.hub.metrics.limit_hit("max_subscriptions");
            return Err(ErrorBody::with_message(
                ErrorCode::LIMIT_EXCEEDED,
                "too many subscriptions",
            ));
        }
        let data = self.ask_subscribe(channel).await?;
        let mut subscriber = self.subscriber.clone();
        // The namespace may turn them off (`Hub::subscribe`).
        subscriber.presence_events = p.join_leave;
        let member = Member {
            id: self.id,
            info: &self.info,
            subscriber,
        };
        let start = Start {
            since: p.recover.as_ref(),
            latest: p.latest,
        };
        let joined = self.hub.subscribe(channel, member, start).await?;
        self.subscriptions
            .insert(joined.name, LiveFilter::new(joined.position.clone()));
        Ok(SubscribeResult {
            offset: joined.position.offset,
            epoch: joined.position.epoch,
            recovered: joined.recovered,
            publications: joined.publications,
            data,
        })
    }

    async fn unsubscribe(&mut self, p: ChannelParams) -> Outcome<Empty> {
        if self.subscriptions.remove(p.channel.as_str()).is_none() {
            return Err(ErrorBody::new(ErrorCode::NOT_SUBSCRIBED));
        }
        self.granted.remove(p.channel.as_str());
        self.hub.unsubscribe(&p.channel, self.id, &self.info).await;
        Ok(Empty {})
    }

    async fn publish(&mut self, p: PublishParams) -> Outcome<PublishResult> {
        checked_channel(&p.channel)?;
        self.check_write(&p.channel)?;
        if self.publish_rate.check(Instant::now()) != Rate::Allowed {
            self.hub.metrics.limit_hit("publish_rate");
            return Err(ErrorBody::new(ErrorCode::RATE_LIMITED));
        }
        let mut payload = Payload::Json(Bytes::copy_from_slice(p.data.get().as_bytes()));
        if let Some(data) = self.ask_publish(&p.channel, &payload).await? {
            payload = Payload::Json(Bytes::copy_from_slice(data.get().as_bytes()));
        }
        let position = self
            .hub
            .publish(&p.channel, payload, Some(self.info.clone()))
            .await?;
        Ok(PublishResult {
            offset: position.offset,
            epoch: position.epoch,
        })
    }

    async fn rpc(&mut self, p: RpcParams) -> Outcome<RpcResult> {
        let hooks = &self.hub.command_hooks;
        let data = hooks.rpc(&self.info, &p.method, &p.data).await?;
        Ok(RpcResult { data })
    }

    async fn history(&mut self, p: HistoryParams) -> Outcome<HistoryResult> {
        checked_channel(&p.channel)?;
        self.check_read(&p.channel)?;
        let read = Read {
            since: p.since.as_ref(),
            limit: p.limit,
            reverse: p.reverse,
        };
        self.hub.history(&p.channel, read).await
    }

    async fn presence(&mut self, p: ChannelParams) -> Outcome<PresenceResult> {
        checked_channel(&p.channel)?;
        self.check_read(&p.channel)?;
        self.hub.presence(&p.channel).await
    }
}
