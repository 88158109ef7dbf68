//! The channels a client holds and the position it last applied in each: the rules that make
//! every publication arrive once, in order, across reconnects. Pure: replies and pushes in,
//! events (and the reads to make) out; the driver does the I/O.

use crate::event::{Event, Subscribed, Unsubscribed};
use crate::{Error, Result, SubscribeOptions};
use herald_hub_protocol as proto;
use herald_hub_protocol::{
    ErrorBody, HistoryResult, Publication, PublicationBody, StreamPosition, SubscribeParams,
    SubscribeResult,
};
use std::collections::HashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Who asked for a channel.
#[derive(Debug)]
pub(crate) enum Origin {
    /// The application, with its options: the client resubscribes after each reconnect.
    Client(SubscribeOptions),
    /// The server (`subscribed` push): it resubscribes the client itself.
    Server,
}

/// Where a channel stands on the current connection.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Not held on this connection (yet).
    Idle,
    /// A `subscribe` is in flight.
    Subscribing,
    /// Reading what was missed on a server-side subscription, up to `live`, where the push
    /// said live delivery starts; live publications wait in `buffer`.
    CatchingUp {
        live: StreamPosition,
        previous: StreamPosition,
        buffer: Vec<Publication>,
    },
    /// Publications are applied as they come.
    Live,
}

/// One held channel.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) origin: Origin,
    /// The last publication applied (or the position a subscribe reply gave).
    pub(crate) position: Option<StreamPosition>,
    pub(crate) phase: Phase,
    /// The application's `subscribe` call, until its first outcome.
    waiter: Option<oneshot::Sender<Result<Subscribed>>>,
    /// Temporary refusals in a row, and when to try again.
    retries: u32,
    pub(crate) retry_at: Option<Instant>,
}

/// Every held channel, bounded.
#[derive(Debug)]
pub(crate) struct Channels {
    map: HashMap<String, Channel>,
    max_subscriptions: usize,
    max_buffered: usize,
}

impl Channels {
    pub(crate) fn new(max_subscriptions: usize, max_buffered: usize) -> Self {
        Self {
            map: HashMap::new(),
            max_subscriptions,
            max_buffered,
        }
    }

    /// Whether the application may hold `channel` too.
    ///
    /// # Errors
    /// [`Error::AlreadySubscribed`], [`Error::TooManySubscriptions`].
    pub(crate) fn admit(&self, channel: &str) -> Result<()> {
        if self.map.contains_key(channel) {
            return Err(Error::AlreadySubscribed(channel.to_owned()));
        }
        if self.map.len() >= self.max_subscriptions {
            return Err(Error::TooManySubscriptions);
        }
        Ok(())
    }

    /// Holds `channel` for the application (after [`admit`](Self::admit)); `waiter` hears the
    /// first outcome.
    pub(crate) fn insert(
        &mut self,
        channel: &str,
        options: SubscribeOptions,
        waiter: oneshot::Sender<Result<Subscribed>>,
    ) {
        let position = options.since.clone();
        self.map.insert(
            channel.to_owned(),
            Channel {
                origin: Origin::Client(options),
                position,
                phase: Phase::Idle,
                waiter: Some(waiter),
                retries: 0,
                retry_at: None,
            },
        );
    }

    /// Forgets `channel`; returns it if it was held.
    pub(crate) fn remove(&mut self, channel: &str) -> Option<Channel> {
        self.map.remove(channel)
    }

    /// The connection is gone: nothing is held on the server any more. Positions stay.
    pub(crate) fn reset(&mut self) {
        for channel in self.map.values_mut() {
            channel.phase = Phase::Idle;
            channel.retry_at = None;
        }
    }

    /// The application's channels not held on this connection whose time has come (all of
    /// them right after connecting): marks them subscribing, returns their `subscribe`s.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<SubscribeParams> {
        let mut out = Vec::new();
        for (name, channel) in &mut self.map {
            let Origin::Client(options) = &channel.origin else {
                continue;
            };
            let waiting = channel.retry_at.is_some_and(|at| at > now);
            if !matches!(channel.phase, Phase::Idle) || waiting {
                continue;
            }
            channel.phase = Phase::Subscribing;
            channel.retry_at = None;
            out.push(params(name, options, channel.position.as_ref()));
        }
        out
    }

    /// The earliest scheduled resubscribe.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.map.values().filter_map(|c| c.retry_at).min()
    }

    /// Applies a `subscribe` reply.
    pub(crate) fn on_subscribe_reply(
        &mut self,
        name: &str,
        result: SubscribeResult,
        out: &mut Vec<Event>,
    ) {
        let Some(channel) = self.map.get_mut(name) else {
            return; // Unsubscribed meanwhile.
        };
        if !matches!(channel.phase, Phase::Subscribing) {
            return;
        }
        let previous = channel.position.clone();
        let epoch = result.epoch;
        if result.recovered == Some(false) {
            // Never a partial replay: the application reloads, live delivery goes on from here.
            channel.position = None;
        } else {
            for body in result.publications {
                let publication = from_body(name, &epoch, body);
                apply(&mut channel.position, publication, out);
            }
        }
        let behind = channel
            .position
            .as_ref()
            .is_none_or(|p| p.epoch != epoch || p.offset < result.offset);
        if behind {
            channel.position = Some(StreamPosition {
                offset: result.offset,
                epoch: epoch.clone(),
            });
        }
        channel.phase = Phase::Live;
        channel.retries = 0;
        let subscribed = Subscribed {
            channel: name.to_owned(),
            offset: result.offset,
            epoch,
            recovered: result.recovered,
            previous: previous.filter(|_| result.recovered.is_some()),
            server_side: false,
        };
        if let Some(waiter) = channel.waiter.take() {
            let _ = waiter.send(Ok(subscribed.clone()));
        }
        out.push(Event::Subscribed(subscribed));
    }

    /// Applies a refused `subscribe`: a temporary refusal is retried after `delay` while
    /// connected; any other ends the subscription.
    pub(crate) fn on_subscribe_error(
        &mut self,
        name: &str,
        error: ErrorBody,
        retry_at: impl FnOnce(u32) -> Instant,
        out: &mut Vec<Event>,
    ) {
        let Some(channel) = self.map.get_mut(name) else {
            return;
        };
        if !matches!(channel.phase, Phase::Subscribing) {
            return;
        }
        if error.temporary {
            channel.phase = Phase::Idle;
            channel.retry_at = Some(retry_at(channel.retries));
            channel.retries = channel.retries.saturating_add(1);
            return;
        }
        let Some(mut channel) = self.map.remove(name) else {
            return;
        };
        match channel.waiter.take() {
            Some(waiter) => {
                let _ = waiter.send(Err(Error::Server(error)));
            }
            None => out.push(Event::Unsubscribed(Unsubscribed {
                channel: name.to_owned(),
                reason: error.message.clone(),
                refused: Some(error),
            })),
        }
    }

    /// A `pub` push: applied on a live channel, held back while catching up, else dropped.
    pub(crate) fn on_publication(&mut self, publication: Publication, out: &mut Vec<Event>) {
        let max_buffered = self.max_buffered;
        let Some(channel) = self.map.get_mut(&publication.channel) else {
            tracing::debug!(channel = %publication.channel, "publication on a channel not held");
            return;
        };
        match &mut channel.phase {
            Phase::Live => apply(&mut channel.position, publication, out),
            Phase::CatchingUp { buffer, .. } if buffer.len() < max_buffered => {
                buffer.push(publication);
            }
            Phase::CatchingUp { .. } => {
                tracing::warn!(channel = %publication.channel, "too many live publications while catching up");
                give_up(channel, &publication.channel, out);
                apply(&mut channel.position, publication, out);
            }
            Phase::Idle | Phase::Subscribing => {
                tracing::debug!(channel = %publication.channel, "publication before the channel is live");
            }
        }
    }

    /// A `join` or `leave` push: delivered only on a live channel.
    pub(crate) fn is_live(&self, name: &str) -> bool {
        self.map
            .get(name)
            .is_some_and(|c| matches!(c.phase, Phase::Live | Phase::CatchingUp { .. }))
    }

    /// A `subscribed` push. Returns the position to read history from when publications were
    /// missed since the position held.
    pub(crate) fn on_server_subscribed(
        &mut self,
        push: proto::Subscribed,
        out: &mut Vec<Event>,
    ) -> Option<StreamPosition> {
        let live = StreamPosition {
            offset: push.offset,
            epoch: push.epoch,
        };
        if !self.map.contains_key(&push.channel) && self.map.len() >= self.max_subscriptions {
            tracing::warn!(channel = %push.channel, "subscribed push past max_subscriptions ignored");
            return None;
        }
        let channel = self
            .map
            .entry(push.channel.clone())
            .or_insert_with(|| Channel {
                origin: Origin::Server,
                position: None,
                phase: Phase::Idle,
                waiter: None,
                retries: 0,
                retry_at: None,
            });
        if matches!(channel.origin, Origin::Client(_)) || !matches!(channel.phase, Phase::Idle) {
            tracing::debug!(channel = %push.channel, "subscribed push for a channel already held");
            return None;
        }
        let previous = channel.position.clone();
        match previous {
            Some(previous) if previous.epoch == live.epoch && previous.offset < live.offset => {
                let since = previous.clone();
                channel.phase = Phase::CatchingUp {
                    live,
                    previous,
                    buffer: Vec::new(),
                };
                return Some(since);
            }
            Some(previous) if previous.epoch == live.epoch => {
                out.push(server_subscribed(
                    &push.channel,
                    &live,
                    Some(true),
                    Some(previous),
                ));
            }
            Some(previous) => {
                channel.position = Some(live.clone());
                out.push(server_subscribed(
                    &push.channel,
                    &live,
                    Some(false),
                    Some(previous),
                ));
            }
            None => {
                channel.position = Some(live.clone());
                out.push(server_subscribed(&push.channel, &live, None, None));
            }
        }
        channel.phase = Phase::Live;
        None
    }

    /// A `history` reply (or refusal) while catching up. Returns where to read on when the
    /// reply stopped short (the reply cap) and made progress.
    pub(crate) fn on_catch_up(
        &mut self,
        name: &str,
        reply: std::result::Result<HistoryResult, ErrorBody>,
        out: &mut Vec<Event>,
    ) -> Option<StreamPosition> {
        let channel = self.map.get_mut(name)?;
        let Phase::CatchingUp { live, .. } = &channel.phase else {
            return None;
        };
        let live = live.clone();
        let history = match reply {
            Ok(history) if history.epoch == live.epoch => history,
            _ => {
                give_up(channel, name, out);
                return None;
            }
        };
        let before = channel.position.as_ref().map_or(0, |p| p.offset);
        for body in history.publications {
            if body.offset <= live.offset {
                apply(
                    &mut channel.position,
                    from_body(name, &live.epoch, body),
                    out,
                );
            }
        }
        let reached = channel.position.as_ref().map_or(0, |p| p.offset);
        if reached >= live.offset {
            finish(channel, name, true, out);
            None
        } else if reached > before {
            channel.position.clone()
        } else {
            give_up(channel, name, out);
            None
        }
    }

    /// An `unsubscribed` push.
    pub(crate) fn on_server_unsubscribed(
        &mut self,
        push: proto::Unsubscribed,
        out: &mut Vec<Event>,
    ) {
        if self.map.remove(&push.channel).is_some() {
            out.push(Event::Unsubscribed(Unsubscribed {
                channel: push.channel,
                reason: push.reason,
                refused: None,
            }));
        }
    }

    /// The position held in `channel`.
    #[cfg(test)]
    fn position(&self, channel: &str) -> Option<&StreamPosition> {
        self.map.get(channel)?.position.as_ref()
    }
}

/// The `subscribe` for a channel: `recover` from its position, else `latest` as asked.
fn params(
    name: &str,
    options: &SubscribeOptions,
    position: Option<&StreamPosition>,
) -> SubscribeParams {
    SubscribeParams {
        channel: name.to_owned(),
        recover: position.cloned(),
        join_leave: options.join_leave,
        latest: if position.is_some() {
            None
        } else {
            options.latest
        },
    }
}

/// Applies `publication` once: anything at or before the position in the same epoch was
/// delivered already (it came with a recovery and again live).
fn apply(position: &mut Option<StreamPosition>, publication: Publication, out: &mut Vec<Event>) {
    if let Some(at) = position
        && at.epoch == publication.epoch
        && publication.offset <= at.offset
    {
        return;
    }
    *position = Some(StreamPosition {
        offset: publication.offset,
        epoch: publication.epoch.clone(),
    });
    out.push(Event::Publication(publication));
}

/// The catch-up cannot fill the gap: report `recovered: false`, go live from where the push
/// said live delivery starts.
fn give_up(channel: &mut Channel, name: &str, out: &mut Vec<Event>) {
    finish(channel, name, false, out);
}

fn finish(channel: &mut Channel, name: &str, recovered: bool, out: &mut Vec<Event>) {
    let Phase::CatchingUp {
        live,
        previous,
        buffer,
    } = std::mem::replace(&mut channel.phase, Phase::Live)
    else {
        return;
    };
    if !recovered {
        channel.position = Some(live.clone());
    }
    out.push(server_subscribed(
        name,
        &live,
        Some(recovered),
        Some(previous),
    ));
    for publication in buffer {
        apply(&mut channel.position, publication, out);
    }
}

fn server_subscribed(
    name: &str,
    live: &StreamPosition,
    recovered: Option<bool>,
    previous: Option<StreamPosition>,
) -> Event {
    Event::Subscribed(Subscribed {
        channel: name.to_owned(),
        offset: live.offset,
        epoch: live.epoch.clone(),
        recovered,
        previous,
        server_side: true,
    })
}

fn from_body(channel: &str, epoch: &str, body: PublicationBody) -> Publication {
    Publication {
        channel: channel.to_owned(),
        offset: body.offset,
        epoch: epoch.to_owned(),
        data: body.data,
        encoding: body.encoding,
        user: body.user,
    }
}

#[cfg(test)]
mod tests;
