//! The hub's one service API: publish, history, presence, subscribe and unsubscribe.
//!
//! Every caller goes through here: WebSocket sessions (plain and protocol mode), the HTTP
//! API, and any transport added later. Each operation validates its input, times the broker
//! call (`herald_broker_latency_seconds{op}`), and counts and logs a broker failure once
//! (`herald_broker_errors_total{op,kind}`) before mapping it to the reply error a client sees.
//! Permissions are the caller's: a connection checks its identity before calling (through
//! `namespace.rs`, which holds each namespace's anonymous patterns), the HTTP API checks its
//! key. Every other namespace rule (unknown namespace, history size and TTL, presence,
//! join/leave, publishing by connections, recovery, `latest`) is applied here.

use crate::broadcast::data_json;
use crate::broker::{BrokerError, History, HistoryQuery, Payload, Publication};
use crate::hub::Hub;
use crate::hub::valid_channel;
use crate::namespace::{Rules, check_client_publish, check_presence};
use crate::node::Subscriber;
use crate::recovery::{continues_from, recover};
use herald_hub_protocol::{
    ClientInfo, ErrorBody, ErrorCode, HistoryResult, PresenceResult, PublicationBody,
    StreamPosition,
};
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A service result: the value, or the error a client sees.
pub(crate) type Outcome<T> = Result<T, ErrorBody>;

/// Bytes a publication adds to a reply besides its data: offset, user and JSON punctuation.
const PUBLICATION_OVERHEAD: usize = 96;

/// A connection joining a channel.
pub(crate) struct Member<'a> {
    /// The node-local connection id.
    pub(crate) id: u64,
    /// Who it is, for presence.
    pub(crate) info: &'a ClientInfo,
    /// How fan-out reaches it.
    pub(crate) subscriber: Subscriber,
}

/// A subscription made.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The node's name for the channel (shared by its subscribers).
    pub(crate) name: Arc<str>,
    /// Where live delivery continues from.
    pub(crate) position: StreamPosition,
    /// With a `since`: whether the recovery is complete (`false`: nothing was recovered).
    pub(crate) recovered: Option<bool>,
    /// The recovered publications, or without `since` the latest ones, oldest first, as the
    /// reply carries them.
    pub(crate) publications: Vec<PublicationBody>,
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Start<'a> {
    /// Recover from this position.
    pub(crate) since: Option<&'a StreamPosition>,
    /// Without `since`: how many of the newest publications to return (capped by the
    /// namespace's `latest`; unset: the namespace's `latest`).
    pub(crate) latest: Option<usize>,
}

/// Which part of history a `history` call reads.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Read<'a> {
    /// Only publications after this (reachable) position.
    pub(crate) since: Option<&'a StreamPosition>,
    /// At most this many (capped by the namespace's history size).
    pub(crate) limit: Option<usize>,
    /// Newest first: the newest `limit`.
    pub(crate) reverse: bool,
}

impl Hub {
    /// Publishes to `channel` (validated), from a connection (`publisher`) or from the server
    /// side (what `POST /api/publish` does).
    ///
    /// The channel's namespace decides what its history keeps, and whether a connection may
    /// publish there at all.
    ///
    /// # Errors
    /// The error a client would see: 107 for an invalid channel name, 112 for an unknown
    /// namespace, 103 for a connection in a namespace only the server publishes to, 109 when
    /// the broker is unreachable (nothing was published), 100 for a broker failure.
    pub async fn publish(
        &self,
        channel: &str,
        payload: Payload,
        publisher: Option<ClientInfo>,
    ) -> Outcome<StreamPosition> {
        checked_channel(channel)?;
        let (retention, webhook) = {
            let live = self.live();
            let rules = live.namespaces.rules(channel, &self.metrics)?;
            if publisher.is_some() {
                check_client_publish(rules, &self.metrics)?;
            }
            (rules.retention, rules.webhook_publications)
        };
        let webhook =
            (webhook && self.webhooks.is_some()).then(|| (payload.clone(), publisher.clone()));
        let publish = self.broker.publish(channel, payload, publisher, retention);
        let position = self.timed("publish", publish).await?;
        self.metrics.publications.inc();
        if let (Some(webhooks), Some((payload, publisher))) = (&self.webhooks, webhook) {
            let broker = self.broker.as_ref();
            webhooks
                .publication(broker, channel, &position, &payload, publisher.as_ref())
                .await;
        }
        Ok(position)
    }

    /// Publications after `read.since` (which must be reachable: [`continues_from`]), at
    /// most `read.limit` (capped by the namespace's history size), oldest first or with
    /// `read.reverse` the newest first, and no more than fit in `max_reply_size` (the oldest,
    /// or with `reverse` the newest, that fit).
    ///
    /// # Errors
    /// 107 for an invalid channel, 112 for an unknown namespace, 110 when `since` is
    /// unreachable, the broker's error.
    pub(crate) async fn history(&self, channel: &str, read: Read<'_>) -> Outcome<HistoryResult> {
        checked_channel(channel)?;
        let limit = self
            .live()
            .namespaces
            .rules(channel, &self.metrics)?
            .history_limit(read.limit);
        let query = HistoryQuery {
            after: read.since.map_or(0, |s| s.offset),
            limit,
            reverse: read.reverse,
        };
        let history = match read.since {
            Some(since) if read.reverse => self.newest_since(channel, since, query).await?,
            _ => {
                self.timed("history", self.broker.history(channel, query))
                    .await?
            }
        };
        if let Some(since) = read.since
            && !read.reverse
            && !continues_from(since, &history)
        {
            return Err(ErrorBody::new(ErrorCode::POSITION_UNAVAILABLE));
        }
        let fit = self.fitting(&history.publications);
        if fit < history.publications.len() {
            self.metrics.limit_hit("max_reply_size");
        }
        let publications =
            bodies(&history.publications[..fit]).map_err(|e| self.failed("history", &e))?;
        Ok(HistoryResult {
            offset: history.position.offset,
            epoch: history.position.epoch,
            publications,
        })
    }

    /// A reverse read after `since`: a reverse read cannot show that nothing between `since`
    /// and its oldest publication was trimmed, so the oldest end is read first, one
    /// publication, and must pass [`continues_from`]; the reverse read must then be of the
    /// same stream (a lost and restarted stream between the two reads is 110 too).
    async fn newest_since(
        &self,
        channel: &str,
        since: &StreamPosition,
        query: HistoryQuery,
    ) -> Outcome<History> {
        let probe = HistoryQuery {
            after: since.offset,
            limit: 1,
            reverse: false,
        };
        let oldest = self
            .timed("history", self.broker.history(channel, probe))
            .await?;
        if !continues_from(since, &oldest) {
            return Err(ErrorBody::new(ErrorCode::POSITION_UNAVAILABLE));
        }
        let newest = self
            .timed("history", self.broker.history(channel, query))
            .await?;
        if newest.position.epoch != oldest.position.epoch {
            return Err(ErrorBody::new(ErrorCode::POSITION_UNAVAILABLE));
        }
        Ok(newest)
    }

    /// Every member of `channel`'s presence.
    ///
    /// # Errors
    /// 107 for an invalid channel or when the namespace tracks no presence, 112 for an
    /// unknown namespace; the broker's error.
    pub(crate) async fn presence(&self, channel: &str) -> Outcome<PresenceResult> {
        checked_channel(channel)?;
        check_presence(
            self.live().namespaces.rules(channel, &self.metrics)?,
            &self.metrics,
        )?;
        let clients = self
            .timed("presence", self.broker.presence(channel))
            .await?;
        Ok(PresenceResult { clients })
    }

    /// Registers `member` for live delivery on `channel`, then reads history (the order that
    /// leaves no gap), then adds it to presence. With `start.since`, recovers what it missed:
    /// all of it, or `recovered: false` when history cannot continue from `since`, the missed
    /// publications would not fit in one reply, or the namespace offers no recovery. Without
    /// it, returns the namespace's `latest` newest publications (or fewer, as asked). Join and
    /// leave pushes reach the member only where the namespace allows them.
    ///
    /// # Errors
    /// 107 for an invalid channel, 112 for an unknown namespace; the broker's error (the
    /// registration is undone).
    pub(crate) async fn subscribe(
        &self,
        channel: &str,
        member: Member<'_>,
        start: Start<'_>,
    ) -> Outcome<Joined> {
        checked_channel(channel)?;
        let rules = self.rules(channel)?;
        let id = member.id;
        let mut subscriber = member.subscriber;
        subscriber.presence_events &= rules.presence && rules.join_leave;
        let name = self
            .timed(
                "subscribe",
                self.node.add(self.broker.as_ref(), channel, id, subscriber),
            )
            .await?;
        let query = self.first_read(&rules, start);
        let history = self
            .timed("history", self.broker.history(channel, query))
            .await;
        let joined = history.and_then(|history| self.joined(name, &rules, start, history));
        if joined.is_err() {
            self.node.remove(self.broker.as_ref(), channel, id).await;
            return joined;
        }
        if let Some(webhooks) = self.webhooks_for(channel) {
            webhooks.subscription(channel, &member.info.user, rules.presence, true);
        }
        if rules.presence {
            // Presence is best effort: the subscription stands without it.
            let _ = self
                .timed(
                    "presence_add",
                    self.broker.presence_add(channel, member.info.clone()),
                )
                .await;
        }
        joined
    }

    /// What a subscribe reads once registered: with `since` (and recovery offered) every
    /// retained publication after it; without, the newest `latest`; else only the position.
    fn first_read(&self, rules: &Rules, start: Start<'_>) -> HistoryQuery {
        match start.since {
            Some(since) if rules.recover => HistoryQuery {
                after: since.offset,
                limit: rules.retention.size,
                reverse: false,
            },
            Some(_) => HistoryQuery::default(),
            None => HistoryQuery {
                after: 0,
                limit: rules.latest(start.latest),
                reverse: true,
            },
        }
    }

    /// The subscription made once history was read: where live delivery continues, and with
    /// `since` the recovery (all of it, or `recovered: false` when it is not reachable, would
    /// not fit in one reply, or the namespace offers none); without, the latest publications
    /// that fit, oldest first. Live delivery continues after the position read, so a live
    /// publication the reply already holds is dropped as a duplicate.
    fn joined(
        &self,
        name: Arc<str>,
        rules: &Rules,
        start: Start<'_>,
        history: History,
    ) -> Outcome<Joined> {
        let Some(since) = start.since else {
            return self.latest(name, history);
        };
        if !rules.recover {
            self.metrics.namespace_refusal("recover");
            return Ok(Joined {
                name,
                position: history.position,
                recovered: Some(false),
                publications: Vec::new(),
            });
        }
        let mut r = recover(since, history);
        if r.recovered && self.fitting(&r.publications) < r.publications.len() {
            self.metrics.limit_hit("max_reply_size");
            r.recovered = false;
            r.publications.clear();
        }
        let publications = bodies(&r.publications).map_err(|e| self.failed("history", &e))?;
        Ok(Joined {
            name,
            position: r.position,
            recovered: Some(r.recovered),
            publications,
        })
    }

    /// A subscription without `since`: the newest publications read (newest first), as many
    /// as fit in one reply, handed out oldest first.
    fn latest(&self, name: Arc<str>, history: History) -> Outcome<Joined> {
        let fit = self.fitting(&history.publications);
        if fit < history.publications.len() {
            self.metrics.limit_hit("max_reply_size");
        }
        let mut publications =
            bodies(&history.publications[..fit]).map_err(|e| self.failed("history", &e))?;
        publications.reverse();
        Ok(Joined {
            name,
            position: history.position,
            recovered: None,
            publications,
        })
    }

    /// Unregisters connection `id` from `channel` and removes it from presence.
    pub(crate) async fn unsubscribe(&self, channel: &str, id: u64, info: &ClientInfo) {
        let removed = self.node.remove(self.broker.as_ref(), channel, id).await;
        if removed && let Some(webhooks) = self.webhooks_for(channel) {
            let presence = self.tracks_presence(channel);
            webhooks.subscription(channel, &info.user, presence, false);
        }
        if self.tracks_presence(channel) {
            let _ = self
                .timed(
                    "presence_remove",
                    self.broker.presence_remove(channel, info.clone()),
                )
                .await;
        }
    }

    /// The webhooks that track `channel`'s subscriptions: none for a personal channel (its
    /// user's `user_online` and `user_offline` say it all).
    fn webhooks_for(&self, channel: &str) -> Option<&crate::webhooks::Webhooks> {
        let webhooks = self.webhooks.as_deref()?;
        self.config
            .users
            .owner(channel)
            .is_none()
            .then_some(webhooks)
    }

    /// The rules of `channel`'s namespace in force now, kept by an operation that waits on
    /// the broker in between (a reload meanwhile does not change them under it).
    ///
    /// # Errors
    /// 112 for an unknown namespace.
    fn rules(&self, channel: &str) -> Outcome<Arc<Rules>> {
        self.live()
            .namespaces
            .rules(channel, &self.metrics)
            .cloned()
    }

    /// Whether `channel`'s namespace may hold a presence member of a subscription: it tracks
    /// presence, did before a reload turned it off, or a reload removed it since the channel
    /// was subscribed (the member is removed all the same, so none is left behind).
    fn tracks_presence(&self, channel: &str) -> bool {
        self.live().namespaces.may_hold_presence(channel)
    }

    /// How many of `publications`, in their order, fit in one reply.
    fn fitting(&self, publications: &[Arc<Publication>]) -> usize {
        let cap = self.live().config.limits.max_reply_size;
        let mut total = 0usize;
        publications
            .iter()
            .take_while(|p| {
                total = total.saturating_add(p.payload.len() + PUBLICATION_OVERHEAD);
                total <= cap
            })
            .count()
    }

    /// Runs a broker operation: timed, and on failure counted, logged and mapped once.
    pub(crate) async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, BrokerError>>,
    ) -> Outcome<T> {
        let start = Instant::now();
        let result = call.await;
        self.metrics.broker_op(op, start.elapsed().as_secs_f64());
        result.map_err(|e| self.failed(op, &e))
    }

    /// A failed broker operation: counted and logged once, mapped to the error a client sees.
    fn failed(&self, op: &'static str, e: &BrokerError) -> ErrorBody {
        let (kind, body) = broker_error(e);
        self.metrics.broker_error(op, kind);
        if let BrokerError::Limit(limit) = e {
            self.metrics.limit_hit(limit);
        }
        tracing::warn!(op, error = %e, "broker operation failed");
        body
    }
}

/// 107 unless `name` is a valid channel name.
pub(crate) fn checked_channel(name: &str) -> Outcome<&str> {
    if valid_channel(name) {
        Ok(name)
    } else {
        Err(ErrorBody::with_message(
            ErrorCode::BAD_REQUEST,
            "invalid channel name",
        ))
    }
}

/// A broker failure as the metric's kind and the error a client sees.
pub(crate) fn broker_error(e: &BrokerError) -> (&'static str, ErrorBody) {
    let body = match e {
        BrokerError::Unavailable(_) => ErrorBody::new(ErrorCode::UNAVAILABLE),
        BrokerError::Limit(limit) => {
            ErrorBody::with_message(ErrorCode::LIMIT_EXCEEDED, format!("{limit} reached"))
        }
        BrokerError::OutcomeUnknown(_) => ErrorBody::new(ErrorCode::OUTCOME_UNKNOWN),
        _ => ErrorBody::new(ErrorCode::INTERNAL),
    };
    (e.kind(), body)
}

/// Publications as replies carry them.
///
/// # Errors
/// [`BrokerError::Internal`] when a broker handed back [`Payload::Json`] data that is not JSON:
/// the hub stores only JSON it parsed, so the broker answered something unexpected.
fn bodies(publications: &[Arc<Publication>]) -> Result<Vec<PublicationBody>, BrokerError> {
    publications.iter().map(|p| body(p)).collect()
}

/// A publication as replies carry it.
fn body(p: &Publication) -> Result<PublicationBody, BrokerError> {
    let (data, encoding) = data_json(&p.payload);
    let data = RawValue::from_string(data.into_owned())
        .map_err(|_| BrokerError::Internal("stored publication data is not JSON".into()))?;
    Ok(PublicationBody {
        offset: p.offset,
        data,
        encoding: encoding.map(str::to_owned),
        user: p
            .publisher
            .as_ref()
            .map(|i| i.user.clone())
            .filter(|u| !u.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_stored_json_payload_that_is_not_json_is_an_internal_broker_error() {
        let p = Publication {
            offset: 1,
            payload: Payload::Json(Bytes::from_static(b"{not json")),
            publisher: None,
        };
        assert!(matches!(body(&p), Err(BrokerError::Internal(_))));
        let ok = Publication {
            payload: Payload::Json(Bytes::from_static(b"[1,2]")),
            ..p
        };
        assert_eq!(
            body(&ok).map(|b| b.data.get().to_owned()).ok().as_deref(),
            Some("[1,2]")
        );
    }
}
