//! The session's rules without a socket: commands go in as messages, what the session queues
//! is recorded by an in-memory [`Wire`]. Time-based rules run the driver under paused time.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::broadcast::{Broadcast, PresenceEvent};
use crate::broker::Payload;
use crate::config::HubConfig;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use wildmatch::WildMatch;

/// What the session queued.
#[derive(Clone, Debug, PartialEq)]
enum Sent {
    Text(Value),
    Publication {
        channel: String,
        offset: u64,
        plain: bool,
    },
    Presence {
        channel: String,
        client: String,
    },
}

/// An in-memory wire: messages in from a channel, everything out into a shared log.
#[derive(Clone)]
struct Recorder {
    sent: Arc<Mutex<Vec<Sent>>>,
    full: Arc<AtomicBool>,
    closed: Arc<Mutex<Option<Disconnect>>>,
    incoming: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Message>>>,
}

impl Recorder {
    fn new() -> (Self, mpsc::UnboundedSender<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Self {
            sent: Arc::default(),
            full: Arc::default(),
            closed: Arc::default(),
            incoming: Arc::new(tokio::sync::Mutex::new(rx)),
        };
        (recorder, tx)
    }

    fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }

    /// The replies queued so far, by command id.
    fn replies(&self) -> Vec<Value> {
        self.take()
            .into_iter()
            .filter_map(|s| match s {
                Sent::Text(v) if v.get("id").is_some() => Some(v),
                _ => None,
            })
            .collect()
    }
}

impl Wire for Recorder {
    async fn next(&mut self) -> Option<Result<Message, Gone>> {
        self.incoming.lock().await.recv().await.map(Ok)
    }

    fn send_text(&mut self, text: String) -> Result<(), Gone> {
        let value = serde_json::from_str(&text).unwrap();
        self.sent.lock().unwrap().push(Sent::Text(value));
        Ok(())
    }

    fn send_publication(&mut self, broadcast: &Broadcast, plain: bool) -> Result<(), Gone> {
        self.sent.lock().unwrap().push(Sent::Publication {
            channel: broadcast.channel.to_string(),
            offset: broadcast.publication.offset,
            plain,
        });
        Ok(())
    }

    fn send_presence(&mut self, event: &PresenceEvent) -> Result<(), Gone> {
        self.sent.lock().unwrap().push(Sent::Presence {
            channel: event.channel.to_string(),
            client: event.client.clone(),
        });
        Ok(())
    }

    fn send_prepared(&mut self, message: &herald_proto::PreparedMessage) -> Result<(), Gone> {
        let value = serde_json::from_slice(message.payload()).unwrap();
        self.sent.lock().unwrap().push(Sent::Text(value));
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    async fn close(&mut self, reason: Disconnect) {
        *self.closed.lock().unwrap() = Some(reason);
    }

    fn closed_code(&self) -> u16 {
        1006
    }
}

fn identity(expires: Option<u64>) -> Identity {
    Identity {
        user: "u1".into(),
        subscribe: Arc::from([WildMatch::new("*")]),
        publish: Arc::from([WildMatch::new("*")]),
        subs: Vec::new(),
        expires,
        anonymous: false,
        from_hook: false,
    }
}

struct Fixture {
    hub: Arc<Hub>,
    session: Session,
    wire: Recorder,
    /// The session's queue, which fan-out fills.
    signal: Arc<Signal>,
}

fn fixture(config: HubConfig, mode: Mode) -> Fixture {
    fixture_on(Hub::new(config).unwrap(), mode)
}

fn fixture_on(hub: Arc<Hub>, mode: Mode) -> Fixture {
    let signal = Arc::new(Signal::new(hub.config.limits.queue_size));
    let subscriber = Subscriber {
        signal: signal.clone(),
        presence_events: false,
    };
    let session = Session::new(hub.clone(), identity(None), mode, subscriber);
    let (wire, _) = Recorder::new();
    Fixture {
        hub,
        session,
        wire,
        signal,
    }
}

impl Fixture {
    async fn command(&mut self, id: u64, method: &str, params: Value) -> Result<(), End> {
        let text = json!({"id": id, "method": method, "params": params}).to_string();
        self.session
            .on_message(Message::text(text), &mut self.wire)
            .await
    }

    /// Sends a command and returns its one reply.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.command(1, method, params).await.unwrap();
        let mut replies = self.wire.replies();
        assert_eq!(replies.len(), 1, "{replies:?}");
        replies.remove(0)
    }

    /// The oldest queued delivery.
    fn next_delivery(&self) -> Delivery {
        let mut one = Vec::new();
        assert_eq!(self.signal.take(&mut one, 1), 1, "no delivery queued");
        one.remove(0)
    }

    /// Moves every queued delivery to the wire; the first rule that ends the session wins.
    fn deliver_queued(&mut self) -> Result<(), End> {
        let mut queued = Vec::new();
        self.signal.take(&mut queued, usize::MAX);
        for delivery in &queued {
            self.session.deliver(delivery, &mut self.wire)?;
        }
        Ok(())
    }
}

fn json_payload(v: Value) -> Payload {
    Payload::Json(bytes::Bytes::from(v.to_string()))
}

mod subscriptions {
    //! `subscribe`: 104 for a channel held already, 106 past `limits.max_subscriptions`.
    use super::*;

    #[tokio::test]
    async fn subscribing_twice_to_one_channel_answers_104() {
        let mut f = fixture(HubConfig::default(), Mode::Protocol);
        let first = f.call("subscribe", json!({"channel": "news"})).await;
        assert_eq!(first["result"]["offset"], 0, "{first}");
        let second = f.call("subscribe", json!({"channel": "news"})).await;
        assert_eq!(second["error"]["code"], 104, "{second}");
    }

    #[tokio::test]
    async fn subscribing_past_max_subscriptions_answers_106() {
        let mut config = HubConfig::default();
        config.limits.max_subscriptions = 2;
        let mut f = fixture(config, Mode::Protocol);
        for channel in ["a", "b"] {
            let reply = f.call("subscribe", json!({"channel": channel})).await;
            assert!(reply.get("result").is_some(), "{reply}");
        }
        let third = f.call("subscribe", json!({"channel": "c"})).await;
        assert_eq!(third["error"]["code"], 106, "{third}");
        let unsubscribed = f.call("unsubscribe", json!({"channel": "a"})).await;
        assert!(unsubscribed.get("result").is_some());
        let again = f.call("subscribe", json!({"channel": "c"})).await;
        assert!(again.get("result").is_some(), "{again}");
    }
}

mod rates {
    //! Publishes past `limits.publish_burst`, and any command past `limits.command_burst`,
    //! answer 108; a connection refused a whole burst more is closed with 1008.
    use super::*;

    #[tokio::test]
    async fn publishing_past_the_burst_answers_108_then_closes_with_1008() {
        let mut config = HubConfig::default();
        config.limits.publish_rate = 1;
        config.limits.publish_burst = 3;
        let mut f = fixture(config, Mode::Protocol);
        let mut codes = Vec::new();
        let mut end = None;
        for id in 0..10 {
            let result = f
                .command(id, "publish", json!({"channel": "c", "data": id}))
                .await;
            codes.extend(f.wire.replies().iter().map(|r| r["error"]["code"].clone()));
            if let Err(e) = result {
                end = Some(e);
                break;
            }
        }
        assert_eq!(
            codes,
            [
                Value::Null,
                Value::Null,
                Value::Null,
                json!(108),
                json!(108),
                json!(108),
                json!(108)
            ]
        );
        assert_eq!(end, Some(End::Close(Disconnect::POLICY)));
    }

    #[tokio::test]
    async fn commands_past_the_budget_answer_108_then_close_with_1008() {
        let mut config = HubConfig::default();
        config.limits.command_rate = 1;
        config.limits.command_burst = 4;
        let mut f = fixture(config, Mode::Protocol);
        let mut refused = 0;
        let mut end = None;
        for id in 0..20 {
            let result = f.command(id, "history", json!({"channel": "c"})).await;
            refused += f
                .wire
                .replies()
                .iter()
                .filter(|r| r["error"]["code"] == 108)
                .count();
            if let Err(e) = result {
                end = Some(e);
                break;
            }
        }
        assert_eq!(refused, 5, "a whole burst of refusals, then the close");
        assert_eq!(end, Some(End::Close(Disconnect::POLICY)));
        assert!(f.hub.metrics.render().contains("limit=\"command_rate\""));
    }

    #[tokio::test]
    async fn a_large_reply_is_paid_for_before_the_next_command() {
        let mut config = HubConfig::default();
        config.limits.command_rate = 10;
        config.limits.command_burst = 10;
        let mut f = fixture(config, Mode::Protocol);
        let big = json!("x".repeat(8 << 10));
        for _ in 0..8 {
            f.hub
                .publish("big", json_payload(big.clone()), None)
                .await
                .unwrap();
        }
        // 8 publications of 8 KiB: a reply of about 64 KiB costs 16 units, past the burst.
        let history = f.call("history", json!({"channel": "big"})).await;
        assert_eq!(
            history["result"]["publications"].as_array().unwrap().len(),
            8
        );
        let next = f.call("ping", json!({})).await;
        assert_eq!(next["error"]["code"], 108, "{next}");
    }

    #[tokio::test]
    async fn pings_count_against_the_command_budget() {
        let mut config = HubConfig::default();
        config.limits.command_rate = 1;
        config.limits.command_burst = 5;
        let mut f = fixture(config, Mode::Protocol);
        let mut end = None;
        for _ in 0..20 {
            let ping = Message::Ping(bytes::Bytes::from_static(b"x"));
            if let Err(e) = f.session.on_message(ping, &mut f.wire).await {
                end = Some(e);
                break;
            }
        }
        assert_eq!(end, Some(End::Close(Disconnect::POLICY)));
    }
}

mod replies {
    //! `limits.max_reply_size` caps one reply: history returns the oldest publications that
    //! fit, a recovery that would not fit answers `recovered: false`.
    use super::*;

    #[tokio::test]
    async fn history_past_the_reply_cap_returns_the_oldest_that_fit() {
        let mut config = HubConfig::default();
        config.limits.max_reply_size = 10 << 10;
        let mut f = fixture(config, Mode::Protocol);
        for i in 0..10 {
            let data = json!({"i": i, "pad": "x".repeat(2000)});
            f.hub.publish("c", json_payload(data), None).await.unwrap();
        }
        let reply = f.call("history", json!({"channel": "c"})).await;
        let offsets: Vec<u64> = reply["result"]["publications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(offsets, [1, 2, 3, 4]);
        assert_eq!(reply["result"]["offset"], 10);
        let text = reply.to_string();
        assert!(text.len() <= 10 << 10, "{} bytes", text.len());
    }

    #[tokio::test]
    async fn recovery_past_the_reply_cap_answers_not_recovered() {
        let mut config = HubConfig::default();
        config.limits.max_reply_size = 4 << 10;
        let mut f = fixture(config, Mode::Protocol);
        let first = f
            .hub
            .publish("c", json_payload(json!(0)), None)
            .await
            .unwrap();
        for _ in 0..5 {
            let data = json!("x".repeat(2000));
            f.hub.publish("c", json_payload(data), None).await.unwrap();
        }
        let since = json!({"offset": first.offset, "epoch": first.epoch});
        let reply = f
            .call("subscribe", json!({"channel": "c", "recover": since}))
            .await;
        assert_eq!(reply["result"]["recovered"], false, "{reply}");
        assert!(
            reply["result"]
                .get("publications")
                .is_none_or(|p| p == &json!([]))
        );
        assert_eq!(reply["result"]["offset"], 6);
    }
}

mod delivery {
    //! Live delivery: in order, a gap closes with 4002, plain mode does not echo.
    use super::*;

    #[tokio::test]
    async fn a_gap_in_live_delivery_closes_with_4002() {
        let mut f = fixture(HubConfig::default(), Mode::Protocol);
        f.call("subscribe", json!({"channel": "c"})).await;
        f.hub
            .publish("c", json_payload(json!(1)), None)
            .await
            .unwrap();
        let delivery = f.next_delivery();
        f.session.deliver(&delivery, &mut f.wire).unwrap();
        assert_eq!(f.wire.take().len(), 1);
        // The same publication again (it came with history too) is dropped.
        f.session.deliver(&delivery, &mut f.wire).unwrap();
        assert!(f.wire.take().is_empty());
        let Delivery::Publication(last) = &delivery else {
            unreachable!("a publication was published")
        };
        let skipped = Delivery::Publication(Arc::new(Broadcast::new(
            last.channel.clone(),
            last.epoch.clone(),
            Arc::new(crate::broker::Publication {
                offset: last.publication.offset + 2,
                payload: json_payload(json!("late")),
                publisher: None,
            }),
            None,
        )));
        assert_eq!(
            f.session.deliver(&skipped, &mut f.wire),
            Err(End::Close(Disconnect::INSUFFICIENT_STATE))
        );
    }

    /// A plain-mode session in room `chat:1` that has sent one message, "mine".
    async fn plain_sender(config: HubConfig) -> Fixture {
        let room = "chat:1".into();
        let mut f = fixture(config, Mode::Plain { room });
        f.session.start(&mut f.wire).await.unwrap();
        f.session
            .on_message(Message::text("mine"), &mut f.wire)
            .await
            .unwrap();
        f
    }

    #[tokio::test]
    async fn plain_mode_does_not_echo_a_clients_own_message() {
        let mut f = plain_sender(HubConfig::default()).await;
        f.hub
            .publish("chat:1", Payload::Text("theirs".into()), None)
            .await
            .unwrap();
        f.deliver_queued().unwrap();
        let sent = f.wire.take();
        assert_eq!(
            sent,
            [Sent::Publication {
                channel: "chat:1".into(),
                offset: 2,
                plain: true
            }]
        );
    }

    #[tokio::test]
    async fn plain_mode_echoes_when_configured() {
        let mut config = HubConfig::default();
        config.plain.echo = true;
        let mut f = plain_sender(config).await;
        f.deliver_queued().unwrap();
        assert_eq!(f.wire.take().len(), 1);
    }
}

mod driver {
    //! The driver's waits: the token's expiry (4501), the idle timer that Pings do not reset
    //! (4502), and a full wire that pulls no deliveries until fan-out cuts it off (4001).
    use super::*;

    pub(super) fn unix_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    pub(super) async fn start(
        config: HubConfig,
        expires: Option<u64>,
    ) -> (
        Arc<Hub>,
        Recorder,
        mpsc::UnboundedSender<Message>,
        tokio::task::JoinHandle<()>,
    ) {
        let hub = Hub::new(config).unwrap();
        let (wire, tx) = Recorder::new();
        let grant = Grant {
            identity: identity(expires),
            mode: Mode::Protocol,
            transport: Transport::WebSocket,
        };
        let task = tokio::spawn(run(hub.clone(), wire.clone(), grant));
        (hub, wire, tx, task)
    }

    pub(super) fn command(id: u64, method: &str, params: Value) -> Message {
        Message::text(json!({"id": id, "method": method, "params": params}).to_string())
    }

    /// Waits (in paused time) until the wire holds a reply to `id`.
    pub(super) async fn reply(wire: &Recorder, id: u64) -> Value {
        for _ in 0..1000 {
            let found = wire.sent.lock().unwrap().iter().find_map(|s| match s {
                Sent::Text(v) if v["id"] == id => Some(v.clone()),
                _ => None,
            });
            if let Some(v) = found {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no reply to {id}");
    }

    #[tokio::test(start_paused = true)]
    async fn token_expiry_closes_with_4501() {
        let (_hub, wire, tx, task) = start(HubConfig::default(), Some(unix_now() + 30)).await;
        tx.send(command(1, "subscribe", json!({"channel": "c"})))
            .unwrap();
        reply(&wire, 1).await;
        let started = Instant::now();
        task.await.unwrap();
        assert_eq!(*wire.closed.lock().unwrap(), Some(Disconnect::UNAUTHORIZED));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(28) && waited <= Duration::from_secs(31),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_expiry_too_far_to_represent_never_fires() {
        let (_hub, wire, tx, task) = start(HubConfig::default(), Some(u64::MAX)).await;
        tx.send(command(1, "subscribe", json!({"channel": "c"})))
            .unwrap();
        reply(&wire, 1).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!task.is_finished());
        assert_eq!(*wire.closed.lock().unwrap(), None);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_subscribe_reaches_a_connection_whose_token_never_expires() {
        let (hub, wire, tx, task) = start(HubConfig::default(), None).await;
        tx.send(command(1, "subscribe", json!({"channel": "c"})))
            .unwrap();
        reply(&wire, 1).await;
        // Long after the session started: an unset expiry must not be a timer gone off.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let handle = hub
            .users
            .handles("u1")
            .pop()
            .expect("the user's connection");
        handle
            .ops
            .send(crate::users::ServerOp::Subscribe("d".into()))
            .await
            .unwrap();
        let mut pushed = false;
        for _ in 0..100 {
            pushed = wire.sent.lock().unwrap().iter().any(
                |s| matches!(s, Sent::Text(v) if v["push"] == "subscribed" && v["channel"] == "d"),
            );
            if pushed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*wire.closed.lock().unwrap(), None, "the session ended");
        assert!(pushed, "no subscribed push for d");
        assert!(!task.is_finished());
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn pings_alone_do_not_keep_an_idle_connection_open() {
        let mut config = HubConfig::default();
        config.limits.idle_timeout = Duration::from_secs(60);
        // A personal channel is a subscription: without one the connection holds none.
        config.users.personal_prefix = String::new();
        let (_hub, wire, tx, task) = start(config, None).await;
        let pinger = tokio::spawn(async move {
            for _ in 0..40 {
                let _ = tx.send(Message::Ping(bytes::Bytes::from_static(b"p")));
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        let started = Instant::now();
        task.await.unwrap();
        assert_eq!(*wire.closed.lock().unwrap(), Some(Disconnect::IDLE));
        let waited = started.elapsed();
        assert!(waited <= Duration::from_secs(61), "{waited:?}");
        pinger.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_wire_pulls_no_deliveries_and_overflow_closes_with_4001() {
        let mut config = HubConfig::default();
        config.limits.queue_size = 8;
        let (hub, wire, tx, task) = start(config, None).await;
        tx.send(command(1, "subscribe", json!({"channel": "c"})))
            .unwrap();
        reply(&wire, 1).await;
        wire.take();
        wire.full.store(true, Ordering::Relaxed);
        for i in 0..20 {
            hub.publish("c", json_payload(json!(i)), None)
                .await
                .unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the session ends")
            .unwrap();
        assert_eq!(*wire.closed.lock().unwrap(), Some(Disconnect::SLOW));
        let delivered = wire
            .take()
            .iter()
            .filter(|s| matches!(s, Sent::Publication { .. }))
            .count();
        assert_eq!(delivered, 0, "nothing is queued on a full wire");
    }
}

mod server_side {
    //! Server-side subscriptions: the personal channel and the `subs` claim at connect, each
    //! announced with a `subscribed` push whose position `history` continues from; the server
    //! API's subscribe and unsubscribe; personal channels stay personal.
    use super::*;
    use crate::users::ServerOp;

    fn user(name: &str, subs: &[&str]) -> Identity {
        Identity {
            user: name.into(),
            subs: subs.iter().map(|s| (*s).to_owned()).collect(),
            ..identity(None)
        }
    }

    /// A protocol-mode session for `identity`, started (connected, server subscriptions).
    pub(super) async fn started(hub: &Arc<Hub>, identity: Identity) -> Fixture {
        let signal = Arc::new(Signal::new(hub.config.limits.queue_size));
        let subscriber = Subscriber {
            signal: signal.clone(),
            presence_events: false,
        };
        let mut f = Fixture {
            session: Session::new(hub.clone(), identity, Mode::Protocol, subscriber),
            hub: hub.clone(),
            wire: Recorder::new().0,
            signal,
        };
        f.session.start(&mut f.wire).await.unwrap();
        f
    }

    fn pushes(sent: &[Sent], kind: &str) -> Vec<Value> {
        sent.iter()
            .filter_map(|s| match s {
                Sent::Text(v) if v["push"] == kind => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    fn publications(sent: &[Sent]) -> Vec<(String, u64)> {
        sent.iter()
            .filter_map(|s| match s {
                Sent::Publication {
                    channel, offset, ..
                } => Some((channel.clone(), *offset)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_user_is_subscribed_to_its_personal_channel_right_after_connected() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let mut f = started(&hub, user("ann", &[])).await;
        let sent = f.wire.take();
        let Sent::Text(first) = &sent[0] else {
            panic!("{sent:?}")
        };
        assert_eq!(first["push"], "connected");
        let subscribed = pushes(&sent, "subscribed");
        assert_eq!(subscribed.len(), 1, "{sent:?}");
        assert_eq!(subscribed[0]["channel"], "#ann");
        assert_eq!(subscribed[0]["offset"], 0);
        hub.publish_to_user("ann", json_payload(json!("hi")))
            .await
            .unwrap();
        f.deliver_queued().unwrap();
        assert_eq!(publications(&f.wire.take()), [("#ann".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn subs_are_subscribed_at_connect_but_never_another_users_personal_channel() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let mut f = started(&hub, user("ann", &["news", "#bob", "bad name!"])).await;
        let channels: Vec<Value> = pushes(&f.wire.take(), "subscribed")
            .iter()
            .map(|p| p["channel"].clone())
            .collect();
        assert_eq!(channels, [json!("#ann"), json!("news")]);
        hub.publish("#bob", json_payload(json!(1)), None)
            .await
            .unwrap();
        hub.publish("news", json_payload(json!(1)), None)
            .await
            .unwrap();
        f.deliver_queued().unwrap();
        assert_eq!(publications(&f.wire.take()), [("news".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn an_anonymous_connection_has_no_personal_channel() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let f = started(&hub, user("", &[])).await;
        assert!(pushes(&f.wire.take(), "subscribed").is_empty());
    }

    #[tokio::test]
    async fn another_users_personal_channel_answers_103_for_subscribe_history_presence_and_publish()
    {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let mut f = started(&hub, user("ann", &[])).await;
        f.wire.take();
        for (method, params) in [
            ("subscribe", json!({"channel": "#bob"})),
            ("history", json!({"channel": "#bob"})),
            ("presence", json!({"channel": "#bob"})),
            ("publish", json!({"channel": "#bob", "data": 1})),
        ] {
            let reply = f.call(method, params).await;
            assert_eq!(reply["error"]["code"], 103, "{method}: {reply}");
        }
    }

    #[tokio::test]
    async fn a_user_may_read_its_own_personal_channel_and_publish_there_when_its_token_allows() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let mut narrow = user("ann", &[]);
        narrow.subscribe = Arc::from([WildMatch::new("news")]);
        narrow.publish = Arc::from([]);
        let mut f = started(&hub, narrow).await;
        f.wire.take();
        let history = f.call("history", json!({"channel": "#ann"})).await;
        assert!(history.get("result").is_some(), "{history}");
        let again = f.call("subscribe", json!({"channel": "#ann"})).await;
        assert_eq!(again["error"]["code"], 104, "held already: {again}");
        let publish = json!({"channel": "#ann", "data": 1});
        let denied = f.call("publish", publish.clone()).await;
        assert_eq!(denied["error"]["code"], 103, "{denied}");
        let mut g = started(&hub, user("ann", &[])).await;
        g.wire.take();
        let allowed = g.call("publish", publish).await;
        assert_eq!(allowed["result"]["offset"], 1, "{allowed}");
    }

    #[tokio::test]
    async fn history_since_the_last_position_up_to_the_subscribed_offset_fills_exactly_the_gap() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let first = hub
            .publish_to_user("ann", json_payload(json!(1)))
            .await
            .unwrap();
        for n in 2..=3 {
            hub.publish_to_user("ann", json_payload(json!(n)))
                .await
                .unwrap();
        }
        // The client saw offset 1 before it reconnected.
        let mut f = started(&hub, user("ann", &[])).await;
        let subscribed = pushes(&f.wire.take(), "subscribed").remove(0);
        assert_eq!(subscribed["offset"], 3);
        assert_eq!(subscribed["epoch"], first.epoch.as_str());
        hub.publish_to_user("ann", json_payload(json!(4)))
            .await
            .unwrap();
        let since = json!({"offset": first.offset, "epoch": first.epoch});
        let history = f
            .call("history", json!({"channel": "#ann", "since": since}))
            .await;
        let missed: Vec<u64> = history["result"]["publications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(
            missed,
            [2, 3, 4],
            "history reaches past the subscribed offset"
        );
        f.deliver_queued().unwrap();
        assert_eq!(
            publications(&f.wire.take()),
            [("#ann".to_owned(), 4)],
            "live delivery starts right after the subscribed offset: a client drops what it \
             already applied from history"
        );
    }

    #[tokio::test]
    async fn a_server_subscribe_pushes_subscribed_once_and_an_unsubscribe_pushes_unsubscribed() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let mut f = started(&hub, user("ann", &[])).await;
        f.wire.take();
        for _ in 0..2 {
            f.session
                .on_server_op(ServerOp::Subscribe("room".into()), &mut f.wire)
                .await
                .unwrap();
        }
        let sent = f.wire.take();
        assert_eq!(pushes(&sent, "subscribed").len(), 1, "{sent:?}");
        let unsubscribe = ServerOp::Unsubscribe("room".into());
        f.session
            .on_server_op(unsubscribe.clone(), &mut f.wire)
            .await
            .unwrap();
        f.session
            .on_server_op(unsubscribe, &mut f.wire)
            .await
            .unwrap();
        let unsubscribed = pushes(&f.wire.take(), "unsubscribed");
        assert_eq!(unsubscribed.len(), 1);
        assert_eq!(unsubscribed[0]["channel"], "room");
        hub.publish("room", json_payload(json!(1)), None)
            .await
            .unwrap();
        f.deliver_queued().unwrap();
        assert!(publications(&f.wire.take()).is_empty());
    }

    #[tokio::test]
    async fn a_server_subscribe_past_max_subscriptions_is_skipped() {
        let mut config = HubConfig::default();
        config.limits.max_subscriptions = 1;
        let hub = Hub::new(config).unwrap();
        let f = started(&hub, user("ann", &["news"])).await;
        let channels: Vec<Value> = pushes(&f.wire.take(), "subscribed")
            .iter()
            .map(|p| p["channel"].clone())
            .collect();
        assert_eq!(channels, [json!("#ann")]);
    }

    #[tokio::test]
    async fn a_plain_mode_connection_ignores_server_subscriptions() {
        let mut f = fixture(
            HubConfig::default(),
            Mode::Plain {
                room: "chat:1".into(),
            },
        );
        f.session.start(&mut f.wire).await.unwrap();
        f.session
            .on_server_op(ServerOp::Subscribe("room".into()), &mut f.wire)
            .await
            .unwrap();
        assert!(f.wire.take().is_empty(), "no personal channel, no pushes");
    }
}

mod connection_limit {
    //! `limits.max_connections_per_user`: one connection more closes with 4503 right after
    //! the upgrade, before `connected`; a closed connection frees its slot.
    use super::*;

    fn grant() -> Grant {
        Grant {
            identity: identity(None),
            mode: Mode::Protocol,
            transport: Transport::WebSocket,
        }
    }

    async fn connected(wire: &Recorder) {
        for _ in 0..1000 {
            let found = wire
                .sent
                .lock()
                .unwrap()
                .iter()
                .any(|s| matches!(s, Sent::Text(v) if v["push"] == "connected"));
            if found {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("never connected");
    }

    #[tokio::test]
    async fn one_connection_over_the_limit_closes_with_4503_and_a_closed_one_frees_its_slot() {
        let mut config = HubConfig::default();
        config.limits.max_connections_per_user = 1;
        let hub = Hub::new(config).unwrap();
        let (first, first_tx) = Recorder::new();
        let task = tokio::spawn(run(hub.clone(), first.clone(), grant()));
        connected(&first).await;
        let (second, _tx) = Recorder::new();
        run(hub.clone(), second.clone(), grant()).await;
        assert_eq!(
            *second.closed.lock().unwrap(),
            Some(Disconnect::CONNECTION_LIMIT)
        );
        assert!(second.take().is_empty(), "refused before connected");
        drop(first_tx);
        task.await.unwrap();
        let (third, third_tx) = Recorder::new();
        let task = tokio::spawn(run(hub.clone(), third.clone(), grant()));
        connected(&third).await;
        drop(third_tx);
        task.await.unwrap();
        let text = hub.metrics.render();
        assert!(
            text.contains(r#"herald_limit_hits_total{limit="max_connections_per_user"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_disconnect_closes_every_connection_of_the_user_but_the_one_kept() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let mut wires = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (wire, tx) = Recorder::new();
            tasks.push(tokio::spawn(run(hub.clone(), wire.clone(), grant())));
            connected(&wire).await;
            wires.push((wire, tx));
        }
        let kept = wires[2].0.take().iter().find_map(|s| match s {
            Sent::Text(v) if v["push"] == "connected" => v["client"].as_str().map(str::to_owned),
            _ => None,
        });
        hub.disconnect_user("u1", Some((4100, "moved".into())), kept)
            .await
            .unwrap();
        for task in tasks.drain(..2) {
            task.await.unwrap();
        }
        for (wire, _) in &wires[..2] {
            let closed = wire.closed.lock().unwrap().unwrap();
            assert_eq!((closed.code, closed.reason), (4100, "moved"));
        }
        assert!(!tasks[0].is_finished(), "the excepted connection stays");
        hub.disconnect_user("u1", None, None).await.unwrap();
        tasks.remove(0).await.unwrap();
        assert_eq!(
            *wires[2].0.closed.lock().unwrap(),
            Some(Disconnect::TERMINATED)
        );
    }
}

mod refresh {
    //! `refresh`: the push at `auth.refresh_notice` before `exp`, the command that moves the
    //! expiry, refusals that keep it (101, 103), and channels the new claims no longer allow.
    use super::driver::{command, reply, start, unix_now};
    use super::*;
    use crate::auth::{Claims, issue_hs256};

    const SECRET: &str = "s3";

    fn config(notice: Duration) -> HubConfig {
        let mut config = HubConfig::default();
        config.auth.hs256_secret = Some(SECRET.into());
        config.auth.refresh_notice = notice;
        // Connections without subscriptions stay open: only the token ends them.
        config.limits.idle_timeout = Duration::ZERO;
        config
    }

    fn token(sub: &str, exp: u64, channels: &[&str]) -> String {
        let claims = Claims {
            sub: sub.into(),
            exp,
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            subscribe: vec![],
            publish: vec![],
            subs: vec![],
        };
        issue_hs256(SECRET, &claims).unwrap()
    }

    /// The pushes of `kind` queued so far.
    fn pushes(wire: &Recorder, kind: &str) -> Vec<Value> {
        wire.sent
            .lock()
            .unwrap()
            .iter()
            .filter_map(|s| match s {
                Sent::Text(v) if v["push"] == kind => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits (in paused time) for the session to end; how long it took.
    async fn ended(task: tokio::task::JoinHandle<()>) -> Duration {
        let started = Instant::now();
        task.await.unwrap();
        started.elapsed()
    }

    fn around(waited: Duration, secs: u64) -> bool {
        waited >= Duration::from_secs(secs.saturating_sub(2))
            && waited <= Duration::from_secs(secs + 1)
    }

    #[tokio::test(start_paused = true)]
    async fn the_refresh_push_comes_at_the_notice_before_expiry() {
        let exp = unix_now() + 300;
        let (_hub, wire, _tx, task) = start(config(Duration::from_secs(60)), Some(exp)).await;
        let started = Instant::now();
        while pushes(&wire, "refresh").is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(around(started.elapsed(), 240), "{:?}", started.elapsed());
        assert_eq!(
            pushes(&wire, "refresh"),
            [json!({"push": "refresh", "expires": exp})]
        );
        assert!(around(ended(task).await, 60));
        assert_eq!(*wire.closed.lock().unwrap(), Some(Disconnect::UNAUTHORIZED));
        assert_eq!(pushes(&wire, "refresh").len(), 1, "one push per token");
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_token_is_noticed_at_half_its_time_left() {
        let (_hub, wire, _tx, task) =
            start(config(Duration::from_secs(60)), Some(unix_now() + 40)).await;
        let started = Instant::now();
        while pushes(&wire, "refresh").is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(around(started.elapsed(), 20), "{:?}", started.elapsed());
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_moves_the_expiry_and_the_next_notice() {
        let (hub, wire, tx, task) =
            start(config(Duration::from_secs(10)), Some(unix_now() + 30)).await;
        let exp = unix_now() + 600;
        tx.send(command(
            1,
            "refresh",
            json!({"token": token("u1", exp, &["*"])}),
        ))
        .unwrap();
        assert_eq!(reply(&wire, 1).await["result"], json!({"expires": exp}));
        let waited = ended(task).await;
        assert!(around(waited, 600), "{waited:?}");
        assert_eq!(*wire.closed.lock().unwrap(), Some(Disconnect::UNAUTHORIZED));
        let due = pushes(&wire, "refresh");
        assert_eq!(
            due,
            [json!({"push": "refresh", "expires": exp})],
            "the first notice moved"
        );
        assert!(
            hub.metrics()
                .render()
                .contains("herald_token_refreshes_total{result=\"ok\"} 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_refresh_keeps_the_old_expiry() {
        let (hub, wire, tx, task) =
            start(config(Duration::from_secs(10)), Some(unix_now() + 30)).await;
        let later = unix_now() + 600;
        let forged = {
            let claims = Claims {
                sub: "u1".into(),
                exp: later,
                channels: vec![],
                subscribe: vec![],
                publish: vec![],
                subs: vec![],
            };
            issue_hs256("other", &claims).unwrap()
        };
        let cases = [
            (1, forged, 101),
            (2, token("u1", unix_now() - 5, &["*"]), 101),
            (3, String::new(), 101),
            (4, "x.y.z".to_owned(), 101),
            (5, token("someone-else", later, &["*"]), 103),
        ];
        for (id, token, code) in cases {
            tx.send(command(id, "refresh", json!({"token": token})))
                .unwrap();
            let answer = reply(&wire, id).await;
            assert_eq!(answer["error"]["code"], code, "{id}: {answer}");
        }
        let waited = ended(task).await;
        assert!(around(waited, 30), "{waited:?}");
        assert_eq!(*wire.closed.lock().unwrap(), Some(Disconnect::UNAUTHORIZED));
        let metrics = hub.metrics().render();
        assert!(metrics.contains("result=\"invalid\"} 3"), "{metrics}");
        assert!(metrics.contains("result=\"expired\"} 1"), "{metrics}");
        assert!(metrics.contains("result=\"other_user\"} 1"), "{metrics}");
    }

    #[tokio::test]
    async fn refresh_spends_from_the_command_budget() {
        let mut cfg = config(Duration::from_secs(60));
        cfg.limits.command_rate = 1;
        cfg.limits.command_burst = 2;
        let mut f = fixture(cfg, Mode::Protocol);
        f.session.identity = identity(Some(unix_now() + 60));
        let fresh = token("u1", unix_now() + 600, &["*"]);
        for _ in 0..2 {
            let answer = f.call("refresh", json!({"token": fresh})).await;
            assert!(answer.get("result").is_some(), "{answer}");
        }
        let refused = f.call("refresh", json!({"token": fresh})).await;
        assert_eq!(refused["error"]["code"], 108, "{refused}");
    }

    #[tokio::test]
    async fn an_anonymous_connection_cannot_refresh() {
        let mut f = fixture(HubConfig::default(), Mode::Protocol);
        let answer = f
            .call(
                "refresh",
                json!({"token": token("u1", unix_now() + 60, &[])}),
            )
            .await;
        assert_eq!(answer["error"]["code"], 101, "{answer}");
    }

    #[tokio::test]
    async fn a_refresh_keeps_the_personal_channel_and_the_subscriptions_the_server_made() {
        let hub = Hub::new(config(Duration::from_secs(60))).unwrap();
        let mut granted = identity(Some(unix_now() + 60));
        granted.subs = vec!["news".into()];
        let mut f = super::server_side::started(&hub, granted).await;
        f.wire.take();
        // The new claims cover neither `#u1` nor `news`: the server granted both, and keeps them.
        let narrow = token("u1", unix_now() + 600, &["a:*"]);
        f.command(7, "refresh", json!({"token": narrow}))
            .await
            .unwrap();
        let sent = f.wire.take();
        assert_eq!(sent.len(), 1, "only the reply: {sent:?}");
        for channel in ["#u1", "news"] {
            hub.publish(channel, json_payload(json!(1)), None)
                .await
                .unwrap();
        }
        f.deliver_queued().unwrap();
        let delivered: Vec<String> = f
            .wire
            .take()
            .into_iter()
            .filter_map(|s| match s {
                Sent::Publication { channel, .. } => Some(channel),
                _ => None,
            })
            .collect();
        assert_eq!(delivered, ["#u1", "news"]);
    }

    #[tokio::test]
    async fn channels_the_new_claims_no_longer_allow_are_left_with_a_push() {
        let mut f = fixture(config(Duration::from_secs(60)), Mode::Protocol);
        f.session.identity = identity(Some(unix_now() + 60));
        for channel in ["a:1", "b:1"] {
            let reply = f.call("subscribe", json!({"channel": channel})).await;
            assert!(reply.get("result").is_some(), "{reply}");
        }
        let narrow = token("u1", unix_now() + 600, &["a:*"]);
        f.command(7, "refresh", json!({"token": narrow}))
            .await
            .unwrap();
        let sent = f.wire.take();
        let texts: Vec<&Value> = sent
            .iter()
            .filter_map(|s| match s {
                Sent::Text(v) => Some(v),
                _ => None,
            })
            .collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert_eq!(
            *texts[0],
            json!({"push": "unsubscribed", "channel": "b:1", "reason": "not allowed by the refreshed token"})
        );
        assert_eq!(texts[1]["id"], 7);
        assert!(texts[1]["result"]["expires"].is_u64(), "{}", texts[1]);
        for channel in ["a:1", "b:1"] {
            f.hub
                .publish(channel, json_payload(json!(1)), None)
                .await
                .unwrap();
        }
        f.deliver_queued().unwrap();
        let delivered: Vec<Sent> = f.wire.take();
        assert_eq!(
            delivered,
            [Sent::Publication {
                channel: "a:1".into(),
                offset: 1,
                plain: false
            }]
        );
        let again = f.call("unsubscribe", json!({"channel": "b:1"})).await;
        assert_eq!(again["error"]["code"], 105, "{again}");
        let denied = f.call("subscribe", json!({"channel": "b:1"})).await;
        assert_eq!(denied["error"]["code"], 103, "{denied}");
    }
}

mod namespaces {
    //! The namespace rules a session meets: 112 for an unknown namespace, 103 (plain mode:
    //! 1008) where only the server publishes, and `latest` that live delivery continues
    //! without repeating.
    use super::*;
    use crate::config::NamespaceConfig;

    fn with(name: &str, table: NamespaceConfig) -> HubConfig {
        let mut c = HubConfig::default();
        c.namespaces.insert(name.into(), table);
        c.namespaces
            .insert("chat".into(), NamespaceConfig::default());
        c
    }

    #[tokio::test]
    async fn every_command_on_an_unknown_namespace_answers_112() {
        let mut f = fixture(with("news", NamespaceConfig::default()), Mode::Protocol);
        for (method, params) in [
            ("subscribe", json!({"channel": "sport:1"})),
            ("publish", json!({"channel": "sport:1", "data": 1})),
            ("history", json!({"channel": "sport:1"})),
            ("presence", json!({"channel": "sport:1"})),
        ] {
            let reply = f.call(method, params).await;
            assert_eq!(reply["error"]["code"], 112, "{method}: {reply}");
        }
        let known = f.call("subscribe", json!({"channel": "news:1"})).await;
        assert!(known.get("result").is_some(), "{known}");
    }

    #[tokio::test]
    async fn the_latest_publications_come_with_the_reply_and_live_delivery_does_not_repeat_them() {
        let latest = NamespaceConfig {
            latest: Some(2),
            ..NamespaceConfig::default()
        };
        let mut f = fixture(with("prices", latest), Mode::Protocol);
        for n in 1..=3 {
            let data = json_payload(json!(n));
            f.hub.publish("prices:a", data, None).await.unwrap();
        }
        let reply = f.call("subscribe", json!({"channel": "prices:a"})).await;
        let offsets: Vec<u64> = reply["result"]["publications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(offsets, [2, 3], "{reply}");
        let next = f.hub.publish("prices:a", json_payload(json!(4)), None);
        let position = next.await.unwrap();
        let delivery = f.next_delivery();
        let Delivery::Publication(live) = &delivery else {
            unreachable!("a publication was published")
        };
        // Publication 3 arriving live (published before the read, delivered after it) is
        // one the reply held: dropped.
        let repeated = Delivery::Publication(Arc::new(Broadcast::new(
            live.channel.clone(),
            live.epoch.clone(),
            Arc::new(crate::broker::Publication {
                offset: 3,
                payload: json_payload(json!(3)),
                publisher: None,
            }),
            None,
        )));
        f.session.deliver(&repeated, &mut f.wire).unwrap();
        assert!(f.wire.take().is_empty());
        f.session.deliver(&delivery, &mut f.wire).unwrap();
        let sent = f.wire.take();
        assert_eq!(
            sent,
            [Sent::Publication {
                channel: "prices:a".into(),
                offset: position.offset,
                plain: false
            }]
        );
    }

    #[tokio::test]
    async fn a_publish_where_only_the_server_publishes_answers_103() {
        let server_only = NamespaceConfig {
            publish: Some(false),
            ..NamespaceConfig::default()
        };
        let mut f = fixture(with("feed", server_only.clone()), Mode::Protocol);
        let reply = f
            .call("publish", json!({"channel": "feed:1", "data": 1}))
            .await;
        assert_eq!(reply["error"]["code"], 103, "{reply}");
        // The server side publishes there all the same.
        let data = json_payload(json!(1));
        assert!(f.hub.publish("feed:1", data, None).await.is_ok());

        let mut config = with("feed", server_only);
        config.plain.routes.push(crate::config::PlainRoute {
            path: "/feed".into(),
            params: vec!["id".into()],
        });
        let room = "feed:1".into();
        let mut plain = fixture(config, Mode::Plain { room });
        plain.session.start(&mut plain.wire).await.unwrap();
        let sent = plain
            .session
            .on_message(Message::text("mine"), &mut plain.wire)
            .await;
        assert_eq!(sent, Err(End::Close(Disconnect::POLICY)));
    }

    #[tokio::test]
    async fn the_latest_publications_past_the_reply_cap_are_the_newest_that_fit() {
        let latest = NamespaceConfig {
            latest: Some(5),
            ..NamespaceConfig::default()
        };
        let mut config = with("prices", latest);
        config.limits.max_reply_size = 5 << 10;
        let mut f = fixture(config, Mode::Protocol);
        for _ in 0..5 {
            let data = json_payload(json!("x".repeat(2000)));
            f.hub.publish("prices:a", data, None).await.unwrap();
        }
        let reply = f.call("subscribe", json!({"channel": "prices:a"})).await;
        let offsets: Vec<u64> = reply["result"]["publications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(offsets, [4, 5], "{reply}");
        assert_eq!(reply["result"]["offset"], 5);
    }
}

mod pusher_mode {
    //! The Pusher protocol on the session: hostile or wrong messages are answered with
    //! `pusher:error` or `pusher:subscription_error` and counted, never a panic or a close;
    //! signatures decide private and presence subscriptions.
    use super::*;
    use crate::config::{PusherApp, PusherLimits};
    use crate::pusher::sign;

    fn pusher_fixture(client_events: bool) -> Fixture {
        pusher_fixture_with(client_events, PusherLimits::default())
    }

    fn pusher_fixture_with(client_events: bool, limits: PusherLimits) -> Fixture {
        let mut config = HubConfig::default();
        config.pusher.apps.push(PusherApp {
            id: "1".into(),
            key: "k".into(),
            secret: "s".into(),
            client_events,
            namespace: None,
            webhook_url: None,
            limits,
        });
        let hub = Hub::new(config).unwrap();
        let app = hub.pusher.by_key("k").unwrap().clone();
        fixture_on(hub, Mode::Pusher(app))
    }

    impl Fixture {
        async fn pusher(&mut self, message: Value) -> Vec<Value> {
            let text = message.to_string();
            self.session
                .on_message(Message::text(text), &mut self.wire)
                .await
                .unwrap();
            self.texts()
        }

        fn texts(&self) -> Vec<Value> {
            self.wire
                .take()
                .into_iter()
                .filter_map(|s| match s {
                    Sent::Text(v) => Some(v),
                    _ => None,
                })
                .collect()
        }

        fn socket_id(&self) -> String {
            crate::pusher::socket_id(&self.session.info.client)
        }

        fn limit_hits(&self, limit: &str) -> u64 {
            let labels = vec![
                ("app".to_owned(), "1".to_owned()),
                ("limit".to_owned(), limit.to_owned()),
            ];
            self.hub
                .metrics
                .pusher_limit_hits
                .get_or_create(&labels)
                .get()
        }

        fn refusals(&self, reason: &str) -> u64 {
            let labels = vec![("reason".to_owned(), reason.to_owned())];
            self.hub
                .metrics
                .pusher_refusals
                .get_or_create(&labels)
                .get()
        }
    }

    fn event(v: &Value) -> &str {
        v["event"].as_str().unwrap_or("")
    }

    #[tokio::test]
    async fn garbage_and_unknown_events_get_a_pusher_error_and_the_connection_stays() {
        let mut f = pusher_fixture(true);
        for text in ["not json", "[]", r#"{"data":{}}"#] {
            let out = f.session.on_message(Message::text(text), &mut f.wire).await;
            assert!(out.is_ok());
            assert_eq!(event(&f.texts()[0]), "pusher:error");
        }
        assert_eq!(f.refusals("message"), 3);
        let out = f
            .pusher(json!({"event": "pusher:whatever", "data": {}}))
            .await;
        assert_eq!(event(&out[0]), "pusher:error");
        let out = f
            .pusher(json!({"event": "pusher:subscribe", "data": 5}))
            .await;
        assert_eq!(event(&out[0]), "pusher:error");
        let out = f.pusher(json!({"event": "pusher:ping", "data": {}})).await;
        assert_eq!(event(&out[0]), "pusher:pong");
    }

    #[tokio::test]
    async fn a_binary_frame_closes_with_4500() {
        let mut f = pusher_fixture(true);
        let message = Message::Binary(bytes::Bytes::from_static(b"\0"));
        let end = f.session.on_message(message, &mut f.wire).await;
        assert_eq!(end, Err(End::Close(Disconnect::BAD_REQUEST)));
    }

    #[tokio::test]
    async fn invalid_names_and_missing_or_forged_signatures_are_subscription_errors() {
        let mut f = pusher_fixture(true);
        let long = "a".repeat(200);
        for channel in ["a b", "a;b", long.as_str(), "private-x", "presence-x"] {
            let out = f
                .pusher(json!({"event": "pusher:subscribe", "data": {"channel": channel}}))
                .await;
            assert_eq!(event(&out[0]), "pusher:subscription_error", "{channel}");
        }
        let forged = format!("k:{}", "0".repeat(64));
        let out = f
            .pusher(json!({"event": "pusher:subscribe",
                "data": {"channel": "private-x", "auth": forged}}))
            .await;
        assert_eq!(out[0]["data"]["status"], 401);
        assert_eq!(f.refusals("signature"), 3);
        assert!(f.session.subscriptions.is_empty());
    }

    #[tokio::test]
    async fn a_signed_private_subscription_succeeds_and_presence_needs_a_user_id() {
        let mut f = pusher_fixture(true);
        let socket = f.socket_id();
        let auth = |m: &str| format!("k:{}", sign::hex_hmac("s", m));
        let message = sign::channel_message(&socket, "private-x", None);
        let out = f
            .pusher(json!({"event": "pusher:subscribe",
                "data": {"channel": "private-x", "auth": auth(&message)}}))
            .await;
        assert_eq!(event(&out[0]), "pusher_internal:subscription_succeeded");
        assert!(f.session.subscriptions.contains_key("pusher-1:private-x"));
        let data = r#"{"user_info":{}}"#;
        let message = sign::channel_message(&socket, "presence-x", Some(data));
        let out = f
            .pusher(
                json!({"event": "pusher:subscribe", "data": {"channel": "presence-x",
                "auth": auth(&message), "channel_data": data}}),
            )
            .await;
        assert_eq!(out[0]["data"]["status"], 400, "{out:?}");
        assert_eq!(f.refusals("channel_data"), 1);
    }

    #[tokio::test]
    async fn client_events_only_on_subscribed_private_channels_of_apps_that_allow_them() {
        let mut f = pusher_fixture(true);
        f.pusher(json!({"event": "pusher:subscribe", "data": {"channel": "news"}}))
            .await;
        for channel in ["news", "private-elsewhere"] {
            let out = f
                .pusher(json!({"event": "client-x", "channel": channel, "data": {}}))
                .await;
            assert_eq!(event(&out[0]), "pusher:error", "{channel}");
        }
        let mut off = pusher_fixture(false);
        let out = off
            .pusher(json!({"event": "client-x", "channel": "private-x", "data": {}}))
            .await;
        assert!(
            out[0]["data"]["message"]
                .as_str()
                .unwrap()
                .contains("not enabled")
        );
        assert_eq!(f.refusals("client_event") + off.refusals("client_event"), 3);
    }

    #[tokio::test]
    async fn an_unreachable_recovery_position_says_herald_recovered_false() {
        let mut f = pusher_fixture(true);
        let since = json!({"offset": 5, "epoch": "gone"});
        let out = f
            .pusher(json!({"event": "pusher:subscribe",
                "data": {"channel": "feed", "herald_recover": since}}))
            .await;
        assert_eq!(out.len(), 1, "nothing replayed: {out:?}");
        let data: Value = serde_json::from_str(out[0]["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["herald_recovered"], false);
    }

    #[tokio::test]
    async fn an_apps_own_limits_answer_with_pushers_codes_and_count_by_app() {
        let limits = PusherLimits {
            max_connections: 1,
            client_events_per_second: 2,
            max_event_size: 16,
            max_channel_name_length: 12,
            max_user_info_size: 8,
            ..PusherLimits::default()
        };
        let mut f = pusher_fixture_with(true, limits);
        let socket = f.socket_id();
        let auth = |m: &str| format!("k:{}", sign::hex_hmac("s", m));
        let message = sign::channel_message(&socket, "private-x", None);
        f.pusher(json!({"event": "pusher:subscribe",
            "data": {"channel": "private-x", "auth": auth(&message)}}))
            .await;
        let big = json!({"text": "x".repeat(20)});
        let out = f
            .pusher(json!({"event": "client-x", "channel": "private-x", "data": big}))
            .await;
        assert_eq!(out[0]["data"]["code"], 4301, "{out:?}");
        for n in 0..2 {
            let out = f
                .pusher(json!({"event": "client-x", "channel": "private-x", "data": n}))
                .await;
            assert!(out.is_empty(), "within the rate: {out:?}");
        }
        let out = f
            .pusher(json!({"event": "client-x", "channel": "private-x", "data": 3}))
            .await;
        assert_eq!(out[0]["data"]["code"], 4301, "{out:?}");
        let out = f
            .pusher(json!({"event": "pusher:subscribe", "data": {"channel": "a-long-channel"}}))
            .await;
        assert_eq!(out[0]["data"]["status"], 400, "{out:?}");
        let data = r#"{"user_id":"u","user_info":{"name":"too long"}}"#;
        let message = sign::channel_message(&socket, "presence-x", Some(data));
        let out = f
            .pusher(
                json!({"event": "pusher:subscribe", "data": {"channel": "presence-x",
                "auth": auth(&message), "channel_data": data}}),
            )
            .await;
        assert_eq!(out[0]["data"]["status"], 400, "{out:?}");
        // The app's one connection is this one: a second is closed with 4004.
        f.session.start_pusher(&mut f.wire).await.unwrap();
        let mut second = fixture_on(f.hub.clone(), f.session.mode.clone());
        let end = second.session.start_pusher(&mut second.wire).await;
        assert_eq!(
            end.map_err(|e| matches!(e, End::Close(d) if d.code == 4004)),
            Err(true)
        );
        for (limit, hits) in [
            ("max_event_size", 1),
            ("client_events_per_second", 1),
            ("max_channel_name_length", 1),
            ("max_user_info_size", 1),
            ("max_connections", 1),
        ] {
            assert_eq!(f.limit_hits(limit), hits, "{limit}");
        }
        // Once it ends, the count has room again.
        f.session.finish().await;
        let mut third = fixture_on(f.hub.clone(), f.session.mode.clone());
        third.session.start_pusher(&mut third.wire).await.unwrap();
    }

    #[tokio::test]
    async fn hub_closes_become_pushers_codes_after_a_pusher_error() {
        let mut f = pusher_fixture(true);
        let cases = [
            (Disconnect::TERMINATED, 4009),
            (Disconnect::SLOW, 4200),
            (Disconnect::UNAVAILABLE, 4100),
            (Disconnect::IDLE, 4202),
            (Disconnect::SHUTDOWN, 1001),
        ];
        for (hub_close, code) in cases {
            let close = f.session.pusher_close(hub_close, &mut f.wire);
            assert_eq!(close.code, code);
            let errors = f.texts();
            assert_eq!(errors.len(), usize::from(code >= 4000), "{errors:?}");
        }
    }
}

mod footprint {
    //! What an idle connection's task holds for its whole life: the session's futures are as
    //! large as their largest state, so rare and large awaits (commands, backend calls,
    //! server operations, refreshes) are boxed, and the task keeps only the plain path.
    use super::*;

    fn size<T>(_: &T) -> usize {
        std::mem::size_of::<T>()
    }

    #[tokio::test]
    async fn a_sessions_task_holds_no_command_or_backend_call_inline() {
        let mut f = fixture(HubConfig::default(), Mode::Protocol);
        let (wire, _tx) = Recorder::new();
        let grant = Grant {
            identity: identity(None),
            mode: Mode::Protocol,
            transport: Transport::WebSocket,
        };
        // Measured 6,856 bytes before the boxing (4,408 of them a backend call's exchange),
        // 2,680 before `run` stopped being an `async fn` (which held its arguments twice),
        // 1,160 here since the session is made outside it and a message's handling is boxed
        // whole (on a WebSocket wire, in a release build: 1,848 bytes before, 1,384 after).
        let run = run(f.hub.clone(), wire, grant);
        assert!(size(&run) <= 1200, "run: {} bytes", size(&run));
        drop(run);
        let mut w = f.wire.clone();
        let payload = Payload::Text(bytes::Bytes::from_static(b"x"));
        let hook = f.hub.command_hooks.publish(&f.session.info, "x", &payload);
        assert!(
            size(&hook) <= 512,
            "a publish hook call: {} bytes",
            size(&hook)
        );
        drop(hook);
        // Done, or boxed: nothing of a message's handling is inline in the task.
        let message = f.session.on_message(Message::text("x"), &mut w);
        assert!(size(&message) <= 32, "on_message: {} bytes", size(&message));
    }
}
