//! The service API's user operations, for the backend (the HTTP API): publish to a user,
//! subscribe and unsubscribe a user's connections, disconnect a user, and what every node
//! reports (channels with subscriber counts, connections, version). They work whichever node
//! the user is on: actions go to every node over the broker's control bus
//! ([`Broker::control`](crate::broker::Broker::control)), reports are gathered with a survey
//! ([`Broker::survey`](crate::broker::Broker::survey)).

use crate::broker::Payload;
use crate::control::{self, Control, Question, Report};
use crate::hub::Hub;
use crate::service::{Outcome, checked_channel};
use herald_hub_protocol::{
    ClientInfo, Disconnect, ErrorBody, ErrorCode, PresenceResult, StreamPosition,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// One node as a survey found it.
#[derive(Debug, Serialize)]
pub(crate) struct NodeInfo {
    /// Its id (the prefix of its client ids).
    pub(crate) node: String,
    /// The hub's version there.
    pub(crate) version: String,
    /// Its open WebSocket connections.
    pub(crate) connections: u64,
}

/// Channels with subscribers over every node.
#[derive(Debug, Serialize)]
pub(crate) struct Channels {
    /// Channel name → subscribers over every node that answered.
    pub(crate) channels: BTreeMap<String, u64>,
    /// How many nodes answered.
    pub(crate) nodes: usize,
    /// Whether some node had more matching channels than it lists.
    pub(crate) truncated: bool,
}

/// A channel's presence, counted.
#[derive(Debug, Serialize)]
pub(crate) struct PresenceCounts {
    /// Connections subscribed.
    pub(crate) clients: usize,
    /// Distinct user ids among them (anonymous connections count as one).
    pub(crate) users: usize,
}

impl Hub {
    /// Publishes to `user`'s personal channel: every connection of the user, on every node.
    ///
    /// # Errors
    /// 107 when personal channels are off or the user id is empty; as [`Hub::publish`].
    pub(crate) async fn publish_to_user(
        &self,
        user: &str,
        payload: Payload,
    ) -> Outcome<StreamPosition> {
        let channel = self.personal_channel(user)?;
        self.publish(&channel, payload, None).await
    }

    /// Subscribes every protocol-mode connection of `user` to `channel` (a `subscribed` push);
    /// one holding it already keeps its subscription.
    ///
    /// # Errors
    /// 107 for an invalid channel or user; 109 when the broker is unreachable.
    pub(crate) async fn subscribe_user(&self, user: &str, channel: &str) -> Outcome<()> {
        checked_user(user)?;
        checked_channel(channel)?;
        self.send(Control::Subscribe {
            user: user.into(),
            channel: channel.into(),
        })
        .await
    }

    /// Ends the subscription of every connection of `user` to `channel` (an `unsubscribed`
    /// push).
    ///
    /// # Errors
    /// As [`subscribe_user`](Self::subscribe_user).
    pub(crate) async fn unsubscribe_user(&self, user: &str, channel: &str) -> Outcome<()> {
        checked_user(user)?;
        checked_channel(channel)?;
        self.send(Control::Unsubscribe {
            user: user.into(),
            channel: channel.into(),
        })
        .await
    }

    /// Closes every connection of `user` (all but `except`, a client id, when set) with
    /// `code` and `reason` (default 4504 `terminated`'s).
    ///
    /// # Errors
    /// 107 for an empty user, a code outside 4000–4999, a reason over 32 bytes or not
    /// printable ASCII, or an empty `except`; 109 when the broker is unreachable.
    pub(crate) async fn disconnect_user(
        &self,
        user: &str,
        close: Option<(u16, String)>,
        except: Option<String>,
    ) -> Outcome<()> {
        checked_user(user)?;
        let (code, reason) = close.unwrap_or_else(|| {
            let d = Disconnect::TERMINATED;
            (d.code, d.reason.to_owned())
        });
        if !control::custom_disconnect_ok(code, &reason) {
            return Err(bad("code must be 4000-4999 with a short ASCII reason"));
        }
        if except
            .as_deref()
            .is_some_and(|e| e.is_empty() || e.len() > control::MAX_NAME)
        {
            return Err(bad("invalid except"));
        }
        self.send(Control::Disconnect {
            user: user.into(),
            code,
            reason,
            except,
        })
        .await
    }

    /// The channels with subscribers on any node (matching `pattern` when set), with their
    /// subscriber counts summed over the nodes that answered.
    ///
    /// # Errors
    /// 107 for an over-long pattern; the broker's error.
    pub(crate) async fn channels(&self, pattern: Option<&str>) -> Outcome<Channels> {
        if pattern.is_some_and(|p| p.is_empty() || p.len() > control::MAX_NAME) {
            return Err(bad("invalid pattern"));
        }
        let reports = self
            .survey(Question {
                channels: true,
                pattern: pattern.map(str::to_owned),
                ..Question::default()
            })
            .await?;
        let mut channels = BTreeMap::new();
        let mut truncated = false;
        for report in &reports {
            truncated |= report.truncated;
            for (channel, n) in &report.channels {
                *channels.entry(channel.clone()).or_insert(0) += n;
            }
        }
        Ok(Channels {
            channels,
            nodes: reports.len(),
            truncated,
        })
    }

    /// Every node that answered, with its connections and version.
    ///
    /// # Errors
    /// The broker's error.
    pub(crate) async fn nodes(&self) -> Outcome<Vec<NodeInfo>> {
        let mut nodes: Vec<NodeInfo> = self
            .survey(Question::default())
            .await?
            .into_iter()
            .map(|r| NodeInfo {
                node: r.node,
                version: r.version,
                connections: r.connections,
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// How many connections and distinct users `channel`'s presence holds.
    ///
    /// # Errors
    /// As [`Hub::presence`].
    pub(crate) async fn presence_counts(&self, channel: &str) -> Outcome<PresenceCounts> {
        let PresenceResult { clients } = self.presence(channel).await?;
        let users: HashSet<&str> = clients
            .iter()
            .map(|c: &ClientInfo| c.user.as_str())
            .collect();
        Ok(PresenceCounts {
            clients: clients.len(),
            users: users.len(),
        })
    }

    /// `user`'s personal channel.
    ///
    /// # Errors
    /// 107 when personal channels are off, or for an empty user.
    pub(crate) fn personal_channel(&self, user: &str) -> Outcome<String> {
        checked_user(user)?;
        let channel = self
            .config
            .users
            .personal_channel(user)
            .ok_or_else(|| bad("personal channels are off"))?;
        checked_channel(&channel)?;
        Ok(channel)
    }

    async fn send(&self, control: Control) -> Outcome<()> {
        self.timed("control", self.broker.control(control.to_bytes()))
            .await
    }

    /// Asks every node; answers that do not parse are dropped and counted.
    pub(crate) async fn survey(&self, question: Question) -> Outcome<Vec<Report>> {
        let timeout = self.config.redis.op_timeout;
        let answers = self
            .timed("survey", self.broker.survey(question.to_bytes(), timeout))
            .await?;
        let reports: Vec<Report> = answers.iter().filter_map(|a| Report::parse(a)).collect();
        for _ in reports.len()..answers.len() {
            self.metrics.control_message("malformed");
        }
        Ok(reports)
    }
}

fn checked_user(user: &str) -> Outcome<()> {
    if user.is_empty() || user.len() > control::MAX_NAME {
        return Err(bad("invalid user"));
    }
    Ok(())
}

fn bad(message: &str) -> ErrorBody {
    ErrorBody::with_message(ErrorCode::BAD_REQUEST, message)
}

impl Hub {
    /// Counts connection `client` of `user` against `limits.max_connections_per_user` over
    /// every node. `Ok(false)`: the user holds the limit already (counted in
    /// `limit_hits{limit="max_connections_per_user"}`). Anonymous connections and a limit of
    /// 0 are not counted (`Ok(true)`).
    ///
    /// # Errors
    /// The broker's error; nothing was counted.
    pub(crate) async fn admit_connection(&self, user: &str, client: &str) -> Outcome<bool> {
        let limit = self.live().config.limits.max_connections_per_user;
        if limit == 0 || user.is_empty() {
            return Ok(true);
        }
        let admitted = self.count_connection(user, client, limit).await?;
        if !admitted {
            self.metrics.limit_hit("max_connections_per_user");
        }
        Ok(admitted)
    }

    /// Counts connection `client` under `key` over every node, unless `limit` are counted
    /// there already: the count [`admit_connection`](Self::admit_connection) keeps per user,
    /// for other groups of connections (a Pusher app's). Released by
    /// [`release_connection`](Self::release_connection) with the same key.
    pub(crate) async fn count_connection(
        &self,
        key: &str,
        client: &str,
        limit: usize,
    ) -> Outcome<bool> {
        self.timed(
            "connection_add",
            self.broker.connection_add(key, client, limit),
        )
        .await
    }

    /// Stops counting a connection [`admit_connection`](Self::admit_connection) counted.
    pub(crate) async fn release_connection(&self, user: &str, client: &str) {
        let _ = self
            .timed(
                "connection_remove",
                self.broker.connection_remove(user, client),
            )
            .await;
    }
}
