//! The application's handle: commands as async methods, answered by the connection task.

use crate::driver::{Driver, Request};
use crate::event::{Event, Subscribed};
use crate::{ClientConfig, Error, Result};
use herald::Closed;
use herald_hub_protocol::{
    Call, ChannelParams, ClientInfo, HistoryParams, HistoryResult, PresenceResult, PublishParams,
    PublishResult, RpcParams, RpcResult, StreamPosition,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How many calls may wait for the connection task to take them.
const REQUEST_QUEUE: usize = 64;

/// Options of [`Client::subscribe`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Receive [`Event::Join`] and [`Event::Leave`] for the channel (when the hub allows).
    pub join_leave: bool,
    /// On the first subscribe: also deliver up to this many of the channel's newest
    /// publications (capped by the hub). Unset: the hub's default for the namespace.
    pub latest: Option<usize>,
    /// Start from this position (kept from an earlier run): the first subscribe recovers
    /// everything after it, and reports whether it could.
    pub since: Option<StreamPosition>,
}

impl SubscribeOptions {
    /// Sets [`join_leave`](Self::join_leave).
    pub fn join_leave(mut self, on: bool) -> Self {
        self.join_leave = on;
        self
    }

    /// Sets [`latest`](Self::latest).
    pub fn latest(mut self, publications: usize) -> Self {
        self.latest = Some(publications);
        self
    }

    /// Sets [`since`](Self::since).
    pub fn since(mut self, position: StreamPosition) -> Self {
        self.since = Some(position);
        self
    }
}

/// Options of [`Client::history`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryOptions {
    /// Only publications after this position (its epoch must be current, else 110).
    pub since: Option<StreamPosition>,
    /// At most this many publications (the hub caps it, and the reply's size).
    pub limit: Option<usize>,
    /// Newest first: with `limit`, the newest `limit` publications.
    pub reverse: bool,
}

impl HistoryOptions {
    /// Sets [`since`](Self::since).
    pub fn since(mut self, position: StreamPosition) -> Self {
        self.since = Some(position);
        self
    }

    /// Sets [`limit`](Self::limit).
    pub fn limit(mut self, publications: usize) -> Self {
        self.limit = Some(publications);
        self
    }

    /// Sets [`reverse`](Self::reverse).
    pub fn reverse(mut self, newest_first: bool) -> Self {
        self.reverse = newest_first;
        self
    }
}

/// A client of one hub. Cheap to clone: every clone talks to the same connection task.
///
/// The task keeps the connection open, reconnecting with backoff, until
/// [`close`](Self::close), a close code that says not to reconnect, or until every handle is
/// dropped.
#[derive(Clone, Debug)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    /// Tells the task a close is coming, so that it stops waiting on a full event queue.
    closing: Arc<watch::Sender<bool>>,
    timeout: Duration,
}

impl Client {
    /// Starts connecting (on a task of the current tokio runtime); returns the handle and the
    /// receiver of [`Event`]s. Commands sent before the connection is up wait for it.
    ///
    /// Read the events steadily: while their queue is full the client stops reading the
    /// connection, so a command awaited inside the loop that reads them waits too.
    ///
    /// # Errors
    /// [`Error::WebSocket`] for an invalid URL or header.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect(config: ClientConfig) -> Result<(Self, mpsc::Receiver<Event>)> {
        config.builder(None)?;
        let timeout = config.command_timeout;
        let (requests, inbox) = mpsc::channel(REQUEST_QUEUE);
        let (events, receiver) = mpsc::channel(config.event_capacity.max(1));
        let (closing, closing_seen) = watch::channel(false);
        tokio::spawn(Driver::new(config, inbox, events, closing_seen).run());
        let client = Self {
            requests,
            closing: Arc::new(closing),
            timeout,
        };
        Ok((client, receiver))
    }

    /// Publishes `data` (anything serde writes as JSON); returns where it landed.
    ///
    /// # Errors
    /// [`Error::Encode`], and as for every command: [`Error::Server`] (e.g. 103 permission
    /// denied, 108 rate limited), [`Error::Timeout`], [`Error::Disconnected`] (it may or may
    /// not have been published), [`Error::Closed`], [`Error::TooManyPending`].
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        data: &T,
    ) -> Result<PublishResult> {
        let data =
            serde_json::value::to_raw_value(data).map_err(|e| Error::Encode(e.to_string()))?;
        self.publish_raw(channel, data).await
    }

    /// Publishes JSON text as it is (kept byte for byte by the hub).
    ///
    /// # Errors
    /// As for [`publish`](Self::publish).
    pub async fn publish_raw(&self, channel: &str, data: Box<RawValue>) -> Result<PublishResult> {
        let call = Call::Publish(PublishParams {
            channel: channel.to_owned(),
            data,
        });
        parse(&self.call(call).await?)
    }

    /// Reads a channel's retained history: the current position and publications (oldest
    /// first, newest first with `reverse`). A reply holds at most the hub's reply size: compare
    /// the last publication's offset with the reply's and read on `since` it.
    ///
    /// # Errors
    /// As for [`publish`](Self::publish), with 110 when `since` is trimmed or of another epoch.
    pub async fn history(&self, channel: &str, options: HistoryOptions) -> Result<HistoryResult> {
        let call = Call::History(HistoryParams {
            channel: channel.to_owned(),
            since: options.since,
            limit: options.limit,
            reverse: options.reverse,
        });
        parse(&self.call(call).await?)
    }

    /// The connections subscribed to `channel`.
    ///
    /// # Errors
    /// As for [`publish`](Self::publish).
    pub async fn presence(&self, channel: &str) -> Result<Vec<ClientInfo>> {
        let call = Call::Presence(ChannelParams {
            channel: channel.to_owned(),
        });
        Ok(parse::<PresenceResult>(&self.call(call).await?)?.clients)
    }

    /// Calls `method` on the application's backend through the hub's RPC hook and returns
    /// its answer, as `T`.
    ///
    /// # Errors
    /// [`Error::Encode`] when `data` is not JSON or the answer is not a `T`; [`Error::Server`]
    /// with the backend's own code (1000–1999), 102 when the hub has no RPC hook, 109 when
    /// the backend is unavailable; and as for [`publish`](Self::publish).
    pub async fn rpc<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        data: &T,
    ) -> Result<R> {
        let data =
            serde_json::value::to_raw_value(data).map_err(|e| Error::Encode(e.to_string()))?;
        let call = Call::Rpc(RpcParams {
            method: method.to_owned(),
            data,
        });
        let result: RpcResult = parse(&self.call(call).await?)?;
        serde_json::from_str(result.data.get()).map_err(|e| Error::Encode(e.to_string()))
    }

    /// A round trip to the hub.
    ///
    /// # Errors
    /// As for [`publish`](Self::publish).
    pub async fn ping(&self) -> Result<()> {
        self.call(Call::Ping).await.map(drop)
    }

    /// Subscribes to `channel`, now (or once connected) and after every reconnect, recovering
    /// what was missed meanwhile. Publications arrive as [`Event::Publication`]; each
    /// (re)subscribe is reported as [`Event::Subscribed`], whose `recovered: Some(false)` asks
    /// the application to reload the channel's state. Returns the first subscribe's outcome.
    ///
    /// # Errors
    /// [`Error::AlreadySubscribed`], [`Error::TooManySubscriptions`], [`Error::Server`] (the
    /// subscription is dropped), [`Error::Closed`]. [`Error::Timeout`] when no outcome came
    /// within the command timeout: the subscription stays and the client keeps trying (its
    /// outcome comes as an event); [`unsubscribe`](Self::unsubscribe) drops it.
    pub async fn subscribe(&self, channel: &str, options: SubscribeOptions) -> Result<Subscribed> {
        let (reply, outcome) = oneshot::channel();
        let request = Request::Subscribe {
            channel: channel.to_owned(),
            options,
            reply,
        };
        self.request(request, outcome).await
    }

    /// Stops receiving `channel` (one the application or the server subscribed).
    ///
    /// # Errors
    /// [`Error::NotSubscribed`]; as for [`publish`](Self::publish) when the hub is asked.
    pub async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let (reply, outcome) = oneshot::channel();
        let request = Request::Unsubscribe {
            channel: channel.to_owned(),
            reply,
        };
        self.request(request, outcome).await
    }

    /// Closes for good: waiting commands fail with [`Error::Closed`], the connection closes
    /// with 1000, no reconnect. Returns how the closing handshake went, when a connection was
    /// open. Every clone is closed. Events not yet queued when the queue is full are dropped,
    /// so this returns also when nobody reads them.
    pub async fn close(&self) -> Option<Closed> {
        let (done, closed) = oneshot::channel();
        self.closing.send_replace(true);
        if self.requests.send(Request::Close { done }).await.is_err() {
            return None;
        }
        closed.await.ok().flatten()
    }

    async fn call(&self, call: Call) -> Result<Box<RawValue>> {
        let (reply, outcome) = oneshot::channel();
        self.request(Request::Command { call, reply }, outcome)
            .await
    }

    async fn request<T>(
        &self,
        request: Request,
        outcome: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        let exchange = async {
            self.requests
                .send(request)
                .await
                .map_err(|_| Error::Closed)?;
            outcome.await.map_err(|_| Error::Closed)?
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout)?
    }
}

fn parse<T: DeserializeOwned>(raw: &RawValue) -> Result<T> {
    serde_json::from_str(raw.get()).map_err(|e| Error::BadReply(e.to_string()))
}
