//! The Pusher Channels protocol (version 7) on the hub's session: a Pusher client's events
//! become the hub's service calls, and the hub's publications and presence events become
//! Pusher events. The protocol's own rules (channel authorisation, socket ids, codes) are in
//! `crate::pusher`; limits, namespaces and fan-out are the session's and the hub's, as for
//! any connection.

use super::{BYTES_PER_UNIT, End, Session, Wire};
use crate::broadcast::{Delivery, PresenceEvent};
use crate::limits::{Rate, RateLimiter};
use crate::pusher::frame::{self, Envelope, Incoming, Outgoing};
use crate::pusher::{App, Kind, sign};
use crate::recovery::{Live, LiveFilter};
use crate::service::{Member, Start};
use crate::users::Handle;
use herald_hub_protocol::{ClientInfo, Disconnect, ErrorCode};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// The prefix of a signed-in user's own channel (`#server-to-user-ID`).
const USER_CHANNEL: &str = "#server-to-user-";

/// What a `channel_data` or `user_data` may hold besides its `user_info` (bounded by the
/// app's `limits.max_user_info_size`): the id and the JSON around it.
const USER_DATA_OVERHEAD: usize = 1024;

/// Longest user id (Pusher's).
const MAX_USER_ID: usize = 128;

/// A Pusher connection's state besides the session's.
#[derive(Debug)]
pub(crate) struct PusherState {
    pub(crate) app: Arc<App>,
    socket_id: String,
    /// The member each presence subscription joined as (its `channel_data`), by hub channel.
    members: HashMap<Arc<str>, ClientInfo>,
    /// Each presence channel's users, by Pusher user id, and their connections (hub client
    /// ids): a user is announced when its first connection joins and gone when its last
    /// leaves, as Pusher announces users, not connections.
    present: HashMap<Arc<str>, HashMap<String, HashSet<String>>>,
    /// The signed-in user, as the hub's users registry holds it, and its Pusher id.
    user: Option<(String, String)>,
    /// How the users registry reaches this connection, once it signs in.
    pub(crate) handle: Option<Handle>,
    /// Client events sent (the app's `limits.client_events_per_second`).
    client_events: RateLimiter,
    /// The key the app's connection count holds this connection under, once counted.
    counted: Option<String>,
    /// Signed in: the hub channel its user is present in for the watchlists that name it.
    online: Option<Arc<str>>,
    /// The users its watchlist names, by the hub channel of their presence.
    watching: HashMap<Arc<str>, String>,
}

impl PusherState {
    pub(crate) fn new(app: Arc<App>, client: &str) -> Self {
        let rate = app.config.limits.client_events_per_second;
        Self {
            app,
            socket_id: crate::pusher::socket_id(client),
            members: HashMap::new(),
            present: HashMap::new(),
            user: None,
            handle: None,
            client_events: RateLimiter::new(rate, rate),
            counted: None,
            online: None,
            watching: HashMap::new(),
        }
    }
}

impl PusherState {
    /// Counts a join or leave in its channel's users: whether it is the user's first
    /// connection there (a join) or its last (a leave), so Pusher's event is due.
    fn count_member(&mut self, event: &PresenceEvent) -> bool {
        let (user, _) = frame::member(&event.user, &event.client);
        let Some(users) = self.present.get_mut(&*event.channel) else {
            return true;
        };
        if event.joined {
            let clients = users.entry(user).or_default();
            clients.insert(event.client.clone()) && clients.len() == 1
        } else {
            let Some(clients) = users.get_mut(&user) else {
                return false;
            };
            if !clients.remove(&event.client) || !clients.is_empty() {
                return false;
            }
            users.remove(&user);
            true
        }
    }
}

/// A refusal on one channel, as pusher-js reports an auth endpoint's: status and message.
struct Refused(u16, &'static str, String);

impl Session {
    fn pusher(&self) -> &PusherState {
        // Every caller runs in pusher mode, which `Session::new` gives a state.
        self.pusher
            .as_deref()
            .expect("a pusher session has its state")
    }

    fn pusher_mut(&mut self) -> &mut PusherState {
        self.pusher
            .as_deref_mut()
            .expect("a pusher session has its state")
    }

    /// Admits the connection within the app's `limits.max_connections` (4004 past it), then
    /// sends `pusher:connection_established`.
    pub(super) async fn start_pusher(&mut self, wire: &mut impl Wire) -> Result<(), End> {
        let app = self.pusher().app.clone();
        let limit = app.config.limits.max_connections;
        if limit > 0 {
            let key = app.connections_key();
            match self
                .hub
                .count_connection(&key, &self.info.client, limit)
                .await
            {
                Ok(true) => self.pusher_mut().counted = Some(key),
                Ok(false) => {
                    self.hub
                        .metrics
                        .pusher_limit(&app.config.id, "max_connections");
                    return Err(End::Close(Disconnect::new(4004, "over connection quota")));
                }
                // As with the hub's own counts, an unreachable broker keeps nobody out.
                Err(_) => {}
            }
        }
        let timeout = self.hub.config.pusher.activity_timeout.as_secs();
        let text = frame::established(&self.pusher().socket_id, timeout);
        self.send_text(text, wire)
    }

    pub(super) async fn on_pusher(&mut self, text: &str, wire: &mut impl Wire) -> Result<(), End> {
        let cost = 1.0 + (text.len() / BYTES_PER_UNIT) as f64;
        match self.commands.spend(Instant::now(), cost) {
            Rate::Allowed => {}
            Rate::Abusive => return Err(self.abuse("command_rate")),
            _ => {
                self.hub.metrics.limit_hit("command_rate");
                return self.pusher_error(Some(4301), "rate limit exceeded", wire);
            }
        }
        let Ok(message) = serde_json::from_str::<Incoming>(text) else {
            self.hub.metrics.pusher_refusal("message");
            return self.pusher_error(
                None,
                "invalid message: expected {\"event\", \"data\"}",
                wire,
            );
        };
        let data = message.data.as_deref();
        match message.event.as_str() {
            "pusher:ping" => {
                let pong = frame::event("pusher:pong", None, &json!({}));
                self.send_text(pong, wire)
            }
            "pusher:pong" => Ok(()),
            "pusher:subscribe" => match parse::<frame::Subscribe>(data) {
                Some(s) => self.pusher_subscribe(s, wire).await,
                None => self.bad_data("pusher:subscribe", wire),
            },
            "pusher:unsubscribe" => match parse::<frame::Unsubscribe>(data) {
                Some(u) => {
                    self.pusher_unsubscribe(&u.channel).await;
                    Ok(())
                }
                None => self.bad_data("pusher:unsubscribe", wire),
            },
            "pusher:signin" => match parse::<frame::Signin>(data) {
                Some(s) => self.signin(s, wire).await,
                None => self.bad_data("pusher:signin", wire),
            },
            event if event.starts_with("client-") => self.client_event(&message, data, wire).await,
            _ => {
                self.hub.metrics.pusher_refusal("event");
                self.pusher_error(None, "unknown event", wire)
            }
        }
    }

    fn bad_data(&mut self, event: &str, wire: &mut impl Wire) -> Result<(), End> {
        self.hub.metrics.pusher_refusal("message");
        self.pusher_error(None, &format!("invalid data for {event}"), wire)
    }

    fn pusher_error(
        &mut self,
        code: Option<u16>,
        message: &str,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        self.send_text(frame::error(code, message), wire)
    }

    async fn pusher_subscribe(
        &mut self,
        s: frame::Subscribe,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        let (data, replay) = match self.join(&s).await {
            Ok(joined) => joined,
            Err(Refused(status, reason, message)) => {
                self.hub.metrics.pusher_refusal(reason);
                let text = frame::subscription_error(&s.channel, status, &message);
                return self.send_text(text, wire);
            }
        };
        let succeeded = "pusher_internal:subscription_succeeded";
        self.send_text(frame::event(succeeded, Some(&s.channel), &data), wire)?;
        // Live delivery continues after the recovered events, so they come first.
        let own = self.pusher().socket_id.clone();
        for event in replay.iter().filter(|e| e.exclude.as_ref() != Some(&own)) {
            self.hub.metrics.messages_out.inc();
            wire.send_prepared(&event.message)?;
        }
        Ok(())
    }

    /// Subscribes after checking the name and the app's signature: the data of
    /// `subscription_succeeded` (the members, on a presence channel; the position; with
    /// `herald_recover`, whether the missed events follow), and the missed events.
    async fn join(&mut self, s: &frame::Subscribe) -> Result<(Value, Vec<Outgoing>), Refused> {
        let member = self.authorize(s)?;
        let state = self.pusher();
        let channel = state.app.hub_channel(&s.channel);
        let kind = Kind::of(&s.channel);
        if self.subscriptions.contains_key(channel.as_str()) {
            // pusher-js subscribes again after a reconnect of its own; already done.
            return Ok((self.members_data(&channel, kind).await?, Vec::new()));
        }
        if self.subscriptions.len() >= self.hub.live().config.limits.max_subscriptions {
            self.hub.metrics.limit_hit("max_subscriptions");
            return Err(Refused(429, "limit", "too many subscriptions".into()));
        }
        let app = state.app.clone();
        let per_app = app.config.limits.max_channels_per_connection;
        if per_app > 0 && self.subscriptions.len() >= per_app {
            self.hub
                .metrics
                .pusher_limit(&app.config.id, "max_channels_per_connection");
            return Err(Refused(429, "limit", "too many channels".into()));
        }
        if let Some(member) = &member {
            self.presence_room(&app, &channel, member).await?;
        }
        let info = member.unwrap_or_else(|| self.info.clone());
        let mut subscriber = self.subscriber.clone();
        subscriber.presence_events = kind == Kind::Presence;
        let joining = Member {
            id: self.id,
            info: &info,
            subscriber,
        };
        let start = Start {
            since: s.herald_recover.as_ref(),
            latest: None,
        };
        let joined = self
            .hub
            .subscribe(&channel, joining, start)
            .await
            .map_err(|e| {
                let status = if e.code == ErrorCode::UNAVAILABLE {
                    503
                } else {
                    400
                };
                Refused(status, "hub", e.message)
            })?;
        let position = joined.position.clone();
        let replay: Vec<Outgoing> = joined
            .publications
            .iter()
            .map(|p| Outgoing::from_json(&s.channel, p.offset, &position.epoch, p.data.get(), None))
            .collect();
        self.subscriptions
            .insert(joined.name.clone(), LiveFilter::new(joined.position));
        if kind == Kind::Presence {
            self.pusher_mut().members.insert(joined.name, info);
        }
        let mut data = self.members_data(&channel, kind).await?;
        data["herald_position"] = json!({"offset": position.offset, "epoch": position.epoch});
        if let Some(recovered) = joined.recovered {
            data["herald_recovered"] = recovered.into();
        }
        Ok((data, replay))
    }

    /// Whether presence channel `channel` has room for `member`: a user already there (by
    /// another connection) always has; a new one only below `limits.max_presence_members`.
    async fn presence_room(
        &self,
        app: &App,
        channel: &str,
        member: &ClientInfo,
    ) -> Result<(), Refused> {
        let limit = app.config.limits.max_presence_members;
        if limit == 0 {
            return Ok(());
        }
        let presence = self
            .hub
            .presence(channel)
            .await
            .map_err(|e| Refused(503, "hub", e.message))?;
        let (me, _) = frame::member(&member.user, &member.client);
        let users: HashSet<String> = presence
            .clients
            .iter()
            .map(|c| frame::member(&c.user, &c.client).0)
            .collect();
        if users.len() < limit || users.contains(&me) {
            return Ok(());
        }
        self.hub
            .metrics
            .pusher_limit(&app.config.id, "max_presence_members");
        // Pusher's over-capacity code: pusher-js reports it as the subscription's status.
        Err(Refused(4100, "limit", "presence channel is full".into()))
    }

    /// The presence member this subscription joins as (`None`: the connection itself), once
    /// the app's signature over it checks out.
    fn authorize(&self, s: &frame::Subscribe) -> Result<Option<ClientInfo>, Refused> {
        let name = s.channel.as_str();
        let state = self.pusher();
        if let Some(id) = name.strip_prefix(USER_CHANNEL) {
            return match &state.user {
                Some((_, user)) if user == id => Ok(None),
                _ => Err(Refused(
                    403,
                    "signature",
                    "sign in as this user first".into(),
                )),
            };
        }
        if !state.app.valid_channel(name) {
            let limits = &state.app.config.limits;
            if name.len() > limits.max_channel_name_length {
                let id = &state.app.config.id;
                self.hub.metrics.pusher_limit(id, "max_channel_name_length");
            }
            return Err(Refused(400, "channel", "invalid channel name".into()));
        }
        let kind = Kind::of(name);
        if !kind.needs_auth() {
            return Ok(None);
        }
        let data = (kind == Kind::Presence).then_some(s.channel_data.as_deref().unwrap_or(""));
        let message = sign::channel_message(&state.socket_id, name, data);
        let app = &state.app.config;
        let auth = s.auth.as_deref().unwrap_or("");
        if !sign::verify_auth(&app.key, &app.secret, &message, auth) {
            return Err(Refused(401, "signature", "invalid signature".into()));
        }
        let Some(data) = data else {
            return Ok(None);
        };
        let max_info = app.limits.max_user_info_size;
        let member = (data.len() <= max_info + USER_DATA_OVERHEAD)
            .then(|| serde_json::from_str::<frame::Member>(data).ok())
            .flatten();
        let Some(member) = member.filter(|m| valid_user_id(&m.user_id)) else {
            return Err(Refused(400, "channel_data", "invalid channel_data".into()));
        };
        if member
            .user_info
            .as_ref()
            .is_some_and(|i| i.get().len() > max_info)
        {
            self.hub.metrics.pusher_limit(&app.id, "max_user_info_size");
            return Err(Refused(400, "channel_data", "user_info too large".into()));
        }
        Ok(Some(ClientInfo {
            client: self.info.client.clone(),
            user: data.to_owned(),
        }))
    }

    /// `subscription_succeeded`'s data: on a presence channel, its members by user id.
    async fn members_data(&mut self, channel: &str, kind: Kind) -> Result<Value, Refused> {
        if kind != Kind::Presence {
            return Ok(json!({}));
        }
        let presence = self
            .hub
            .presence(channel)
            .await
            .map_err(|e| Refused(503, "hub", e.message))?;
        let mut hash = Map::new();
        let mut present: HashMap<String, HashSet<String>> = HashMap::new();
        for c in &presence.clients {
            let (id, info) = frame::member(&c.user, &c.client);
            present
                .entry(id.clone())
                .or_default()
                .insert(c.client.clone());
            hash.insert(id, info);
        }
        if let Some(name) = self
            .subscriptions
            .get_key_value(channel)
            .map(|(k, _)| k.clone())
        {
            self.pusher_mut().present.insert(name, present);
        }
        let ids: Vec<&String> = hash.keys().collect();
        Ok(json!({"presence": {"ids": ids, "hash": hash, "count": hash.len()}}))
    }

    async fn pusher_unsubscribe(&mut self, name: &str) {
        let channel = self.pusher().app.hub_channel(name);
        if self.subscriptions.remove(channel.as_str()).is_some() {
            self.pusher_mut().present.remove(channel.as_str());
            let info = self.channel_info(&channel);
            self.hub.unsubscribe(&channel, self.id, &info).await;
        }
    }

    /// Who the connection is in `channel`: its presence member there, or itself.
    pub(super) fn channel_info(&mut self, channel: &str) -> ClientInfo {
        self.pusher
            .as_deref_mut()
            .and_then(|p| p.members.remove(channel))
            .unwrap_or_else(|| self.info.clone())
    }

    /// `pusher:signin`: the app's signature over `SOCKET_ID::user::USER_DATA`, then the
    /// connection is the user's (terminate_connections, the user's own channel), present for
    /// the watchlists that name the user, and told about the users its own watchlist names.
    async fn signin(&mut self, s: frame::Signin, wire: &mut impl Wire) -> Result<(), End> {
        let state = self.pusher();
        let message = format!("{}::user::{}", state.socket_id, s.user_data);
        let app = state.app.clone();
        if !sign::verify_auth(&app.config.key, &app.config.secret, &message, &s.auth) {
            self.hub.metrics.pusher_refusal("signature");
            return self.pusher_error(Some(4009), "invalid signin signature", wire);
        }
        let limits = &app.config.limits;
        let longest = limits.max_user_info_size
            + USER_DATA_OVERHEAD
            + limits.max_watchlist * (MAX_USER_ID + 3);
        let data = (s.user_data.len() <= longest)
            .then(|| serde_json::from_str::<frame::UserData>(&s.user_data).ok())
            .flatten()
            .filter(|d| !d.id.is_empty() && d.id.len() <= MAX_USER_ID);
        let (Some(data), None) = (data, &state.user) else {
            self.hub.metrics.pusher_refusal("signin");
            return self.pusher_error(None, "user_data needs an id, once per connection", wire);
        };
        if data
            .user_info
            .as_ref()
            .is_some_and(|i| i.get().len() > limits.max_user_info_size)
        {
            self.hub
                .metrics
                .pusher_limit(&app.config.id, "max_user_info_size");
            return self.pusher_error(None, "user_info too large", wire);
        }
        let watchlist = data.watchlist.unwrap_or_default();
        if watchlist.len() > limits.max_watchlist {
            self.hub
                .metrics
                .pusher_limit(&app.config.id, "max_watchlist");
            return self.pusher_error(None, "watchlist too long", wire);
        }
        if watchlist
            .iter()
            .any(|w| w.is_empty() || w.len() > MAX_USER_ID)
        {
            self.hub.metrics.pusher_refusal("signin");
            return self.pusher_error(None, "invalid user id in watchlist", wire);
        }
        let id = data.id;
        let user = app.hub_user(&id);
        if let Some(handle) = state.handle.clone() {
            self.hub.users.add(&user, self.id, handle);
        }
        self.pusher_mut().user = Some((user, id.clone()));
        let data = json!({"user_data": s.user_data});
        self.send_text(frame::event("pusher:signin_success", None, &data), wire)?;
        self.go_online(&app, &id).await;
        self.watch(&app, watchlist, wire).await
    }

    /// Joins the presence of the signed-in user's online channel, which the watchlists that
    /// name the user follow. Best effort, as presence is: sign-in stands without it.
    async fn go_online(&mut self, app: &App, id: &str) {
        let channel = app.online_channel(id);
        let info = ClientInfo {
            client: self.info.client.clone(),
            user: id.to_owned(),
        };
        let member = Member {
            id: self.id,
            info: &info,
            subscriber: self.subscriber.clone(),
        };
        if let Ok(joined) = self.hub.subscribe(&channel, member, Start::default()).await {
            self.pusher_mut().online = Some(joined.name);
        }
    }

    /// Follows the presence of each watched user's online channel, and sends
    /// `pusher_internal:watchlist_events` with those online now; then each watched user's
    /// first connection (over every node) is an `online` event, its last an `offline`.
    async fn watch(
        &mut self,
        app: &App,
        watchlist: Vec<String>,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        let mut online = Vec::new();
        let me = self.pusher().user.as_ref().map(|(_, id)| id.clone());
        for id in watchlist.into_iter().filter(|w| Some(w) != me.as_ref()) {
            let channel = app.online_channel(&id);
            if self.pusher().watching.contains_key(channel.as_str()) {
                continue;
            }
            let mut subscriber = self.subscriber.clone();
            subscriber.presence_events = true;
            let member = Member {
                id: self.id,
                info: &self.info.clone(),
                subscriber,
            };
            let Ok(joined) = self.hub.subscribe(&channel, member, Start::default()).await else {
                continue;
            };
            let name = joined.name;
            self.pusher_mut().watching.insert(name.clone(), id.clone());
            // The watched user's connections, which the presence events then keep.
            let clients: HashSet<String> = match self.hub.presence(&channel).await {
                Ok(presence) => presence
                    .clients
                    .into_iter()
                    .filter(|c| c.user == id)
                    .map(|c| c.client)
                    .collect(),
                Err(_) => HashSet::new(),
            };
            if !clients.is_empty() {
                online.push(id.clone());
            }
            let users = HashMap::from([(id, clients)]);
            self.pusher_mut().present.insert(name, users);
        }
        if online.is_empty() {
            return Ok(());
        }
        self.send_text(frame::watchlist_events("online", &online), wire)
    }

    async fn client_event(
        &mut self,
        message: &Incoming,
        data: Option<&RawValue>,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        let Some(name) = message.channel.as_deref() else {
            return self.bad_data(&message.event, wire);
        };
        let state = self.pusher();
        let channel = state.app.hub_channel(name);
        let refusal = if !state.app.config.client_events {
            Some("client events are not enabled for this app")
        } else if !matches!(Kind::of(name), Kind::Private | Kind::Presence) {
            Some("client events are only supported on private and presence channels")
        } else if !self.subscriptions.contains_key(channel.as_str()) {
            Some("client event on a channel the connection is not subscribed to")
        } else {
            None
        };
        let user_id = state
            .members
            .get(channel.as_str())
            .map(|m| frame::member(&m.user, &m.client).0);
        let socket_id = state.socket_id.clone();
        let limits = state.app.config.limits;
        let app = state.app.config.id.clone();
        if let Some(reason) = refusal {
            self.hub.metrics.pusher_refusal("client_event");
            return self.pusher_error(None, reason, wire);
        }
        // The app's limits, Pusher's codes: 4301 for each client event refused.
        let over = if message.event.len() > limits.max_event_name_length {
            Some((
                "max_event_name_length",
                "client event rejected: event name too long",
            ))
        } else if data.map_or(0, |d| d.get().len()) > limits.max_event_size {
            Some(("max_event_size", "client event rejected: data too large"))
        } else if self.pusher_mut().client_events.check(Instant::now()) != Rate::Allowed {
            Some((
                "client_events_per_second",
                "client event rejected due to rate limit",
            ))
        } else {
            None
        };
        if let Some((limit, reason)) = over {
            self.hub.metrics.pusher_limit(&app, limit);
            return self.pusher_error(Some(4301), reason, wire);
        }
        if self.publish_rate.check(Instant::now()) != Rate::Allowed {
            self.hub.metrics.limit_hit("publish_rate");
            if self.publish_rate.refused_too_often() {
                return Err(self.abuse("publish_rate"));
            }
            return self.pusher_error(Some(4301), "client event rejected: rate limit", wire);
        }
        let null = RawValue::NULL;
        let envelope = Envelope {
            event: message.event.as_str().into(),
            data: data.unwrap_or(null),
            // Never to the sender, live or recovered.
            socket_id: Some(socket_id.as_str().into()),
            user_id: user_id.as_deref().map(Into::into),
        };
        let published = self
            .hub
            .publish(&channel, envelope.to_payload(), Some(self.info.clone()))
            .await;
        if published.is_ok()
            && let Some(webhooks) = &self.hub.webhooks
        {
            let event = crate::webhooks::client_event(
                &app,
                name,
                &message.event,
                data.map_or("null", RawValue::get),
                &socket_id,
                user_id.as_deref(),
            );
            webhooks
                .pusher_client_event(self.hub.broker.as_ref(), &app, event)
                .await;
        }
        match published {
            Ok(_) => Ok(()),
            Err(e) => {
                let reason = e.message;
                self.pusher_error(None, &reason, wire)
            }
        }
    }

    /// Queues a delivery as a Pusher event: the publication (not to the connection that
    /// sent it, nor to the socket the HTTP API excluded), or a member added or removed.
    pub(super) fn deliver_pusher(
        &mut self,
        delivery: &Delivery,
        wire: &mut impl Wire,
    ) -> Result<(), End> {
        match delivery {
            Delivery::Publication(b) => {
                let Some(filter) = self.subscriptions.get_mut(&b.channel) else {
                    return Ok(());
                };
                match filter.accept(&b.epoch, b.publication.offset) {
                    Live::Deliver => {}
                    Live::Duplicate => return Ok(()),
                    Live::Gap => return Err(End::Close(Disconnect::INSUFFICIENT_STATE)),
                }
                let own = b.publication.publisher.as_ref();
                if own.is_some_and(|p| p.client == self.info.client) {
                    return Ok(());
                }
                let state = self.pusher();
                let Some(name) = state.app.pusher_channel(&b.channel) else {
                    return Ok(());
                };
                let out = b.pusher(name);
                if out.exclude.as_deref() == Some(state.socket_id.as_str()) {
                    return Ok(());
                }
                self.hub.metrics.messages_out.inc();
                Ok(wire.send_prepared(&out.message)?)
            }
            Delivery::Presence(event) => {
                if let Some(watched) = self.pusher().watching.get(&event.channel) {
                    // Only the watched user's own connections count, not other watchers'.
                    if event.user != *watched || !self.pusher_mut().count_member(event) {
                        return Ok(());
                    }
                    let name = if event.joined { "online" } else { "offline" };
                    let text = frame::watchlist_events(name, std::slice::from_ref(&event.user));
                    return self.send_text(text, wire);
                }
                if event.client == self.info.client
                    || !self.subscriptions.contains_key(&event.channel)
                {
                    return Ok(());
                }
                let Some(name) = self.pusher().app.pusher_channel(&event.channel) else {
                    return Ok(());
                };
                if !self.pusher_mut().count_member(event) {
                    // Another connection of a user already present, or not its last.
                    return Ok(());
                }
                let text = if event.joined {
                    frame::member_added(name, &event.user, &event.client)
                } else {
                    frame::member_removed(name, &event.user, &event.client)
                };
                self.send_text(text, wire)
            }
        }
    }

    /// The close a Pusher client gets for `reason`: a `pusher:error` first, and a code in
    /// Pusher's ranges where the hub's would mean otherwise to pusher-js (4000–4099: do not
    /// reconnect, 4100–4199: reconnect after a while, 4200–4299: reconnect now).
    pub(super) fn pusher_close(&mut self, reason: Disconnect, wire: &mut impl Wire) -> Disconnect {
        let reason = match reason {
            Disconnect::SLOW | Disconnect::INSUFFICIENT_STATE | Disconnect::WRITE_TIMEOUT => {
                Disconnect::new(4200, reason.reason)
            }
            Disconnect::UNAVAILABLE => Disconnect::new(4100, reason.reason),
            Disconnect::IDLE => Disconnect::new(4202, reason.reason),
            Disconnect::TERMINATED => Disconnect::new(4009, reason.reason),
            other => other,
        };
        if reason.code >= 4000 {
            let _ = self.send_text(frame::error(Some(reason.code), reason.reason), wire);
        }
        reason
    }

    /// Forgets the signed-in user.
    pub(super) fn sign_out(&mut self) {
        let user = self.pusher.as_deref_mut().and_then(|p| p.user.take());
        if let Some((user, _)) = user {
            self.hub.users.remove(&user, self.id);
        }
    }

    /// Leaves what a Pusher connection holds besides its subscriptions: the app's connection
    /// count, the user's online channel and the watched users' (each an `offline` to the
    /// watchers of a user whose last connection this was).
    pub(super) async fn finish_pusher(&mut self) {
        let Some(state) = self.pusher.as_deref_mut() else {
            return;
        };
        let counted = state.counted.take();
        let online = state.online.take();
        let watching: Vec<Arc<str>> = state.watching.drain().map(|(c, _)| c).collect();
        let user = state.user.as_ref().map(|(_, id)| id.clone());
        if let Some(key) = counted {
            self.hub.release_connection(&key, &self.info.client).await;
        }
        if let (Some(channel), Some(id)) = (online, user) {
            let info = ClientInfo {
                client: self.info.client.clone(),
                user: id,
            };
            self.hub.unsubscribe(&channel, self.id, &info).await;
        }
        for channel in watching {
            self.hub
                .unsubscribe(&channel, self.id, &self.info.clone())
                .await;
        }
    }
}

/// Whether a presence member's `user_id` is one Pusher accepts: a string or number of at most
/// 128 characters.
fn valid_user_id(id: &Value) -> bool {
    match id {
        Value::String(s) => !s.is_empty() && s.len() <= MAX_USER_ID,
        Value::Number(n) => n.to_string().len() <= MAX_USER_ID,
        _ => false,
    }
}

/// A message's data: an object, or (as some clients send it) a string holding one.
fn parse<T: serde::de::DeserializeOwned>(data: Option<&RawValue>) -> Option<T> {
    let data = data?.get();
    serde_json::from_str::<T>(data).ok().or_else(|| {
        let inner = serde_json::from_str::<String>(data).ok()?;
        serde_json::from_str::<T>(&inner).ok()
    })
}
