//! This node's connections by user, and the node's side of the control bus: the
//! [`BrokerEvents`] the hub registers with its broker, which hands channel events to the
//! [`Node`] and applies control messages and surveys to the users' connections here.

use crate::broker::{BrokerEvents, Publication};
use crate::control::{self, Control, Question, Report};
use crate::metrics::Metrics;
use crate::node::{Node, Signal};
use bytes::Bytes;
use herald_hub_protocol::ClientInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Server operations queued per connection; more are dropped (and counted).
pub(crate) const OPS_QUEUE: usize = 16;

/// What the server asks of one connection, from outside its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServerOp {
    /// Subscribe to the channel (a `subscribed` push).
    Subscribe(Arc<str>),
    /// End the subscription to the channel (an `unsubscribed` push).
    Unsubscribe(Arc<str>),
}

/// How the node reaches one connection of a user.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    /// Its client id.
    pub(crate) client: String,
    /// Its server operations.
    pub(crate) ops: mpsc::Sender<ServerOp>,
    /// Its kill signal.
    pub(crate) signal: Arc<Signal>,
}

/// Connections by user id, on this node (anonymous ones are not held).
#[derive(Debug, Default)]
pub(crate) struct Users {
    users: Mutex<HashMap<String, HashMap<u64, Handle>>>,
}

impl Users {
    /// Holds connection `id` of `user`.
    pub(crate) fn add(&self, user: &str, id: u64, handle: Handle) {
        lock(&self.users)
            .entry(user.to_owned())
            .or_default()
            .insert(id, handle);
    }

    /// Forgets connection `id` of `user`.
    pub(crate) fn remove(&self, user: &str, id: u64) {
        let mut users = lock(&self.users);
        if let Some(held) = users.get_mut(user) {
            held.remove(&id);
            if held.is_empty() {
                users.remove(user);
            }
        }
    }

    /// The user's connections here.
    pub(crate) fn handles(&self, user: &str) -> Vec<Handle> {
        lock(&self.users)
            .get(user)
            .map(|held| held.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// What the hub registers with its broker.
pub(crate) struct HubEvents {
    pub(crate) node: Arc<Node>,
    pub(crate) users: Arc<Users>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) node_id: String,
    pub(crate) reasons: control::Reasons,
    pub(crate) streams: Arc<crate::transport::stream::Streams>,
    pub(crate) polls: Arc<crate::transport::poll::Polls>,
}

impl HubEvents {
    fn apply(&self, control: Control) {
        match control {
            Control::Subscribe { user, channel } => {
                self.queue(&user, &ServerOp::Subscribe(channel.into()));
            }
            Control::Unsubscribe { user, channel } => {
                self.queue(&user, &ServerOp::Unsubscribe(channel.into()));
            }
            Control::Disconnect {
                user,
                code,
                reason,
                except,
            } => {
                let close = self.reasons.disconnect(code, &reason);
                for handle in self.users.handles(&user) {
                    if except.as_deref() != Some(handle.client.as_str()) {
                        handle.signal.kill(close);
                    }
                }
            }
        }
    }

    /// Queues `op` to each of the user's connections; a full queue drops it, counted.
    fn queue(&self, user: &str, op: &ServerOp) {
        for handle in self.users.handles(user) {
            if handle.ops.try_send(op.clone()).is_err() {
                self.metrics.limit_hit("server_ops_queue");
            }
        }
    }

    fn report(&self, question: &Question) -> Report {
        let (channels, truncated) = if question.channels {
            let pattern = question.pattern.as_deref().map(wildmatch::WildMatch::new);
            let matches = |c: &str| pattern.as_ref().is_none_or(|p| p.matches(c));
            self.node.counts(matches, control::MAX_LISTED)
        } else {
            (Vec::new(), false)
        };
        Report {
            node: self.node_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            connections: self.metrics.open_connections(),
            channels,
            truncated,
            delivered: question.deliver.as_ref().map(|d| {
                let commands = Bytes::copy_from_slice(d.commands.as_bytes());
                self.streams.deliver(&d.session, commands)
            }),
            polled: question
                .poll
                .as_ref()
                .map(|p| self.polls.answer(&p.session, p.last)),
        }
    }
}

impl BrokerEvents for HubEvents {
    fn publication(&self, channel: &str, epoch: &Arc<str>, publication: Arc<Publication>) {
        self.node.publication(channel, epoch, publication);
    }

    fn join(&self, channel: &str, info: &ClientInfo) {
        self.node.join(channel, info);
    }

    fn leave(&self, channel: &str, info: &ClientInfo) {
        self.node.leave(channel, info);
    }

    fn lost(&self) {
        self.node.lost();
    }

    fn control(&self, message: &[u8]) {
        match Control::parse(message) {
            Some(control) => {
                self.metrics.control_message("handled");
                self.apply(control);
            }
            None => {
                self.metrics.control_message("malformed");
                tracing::debug!(bytes = message.len(), "malformed control message dropped");
            }
        }
    }

    fn control_malformed(&self) {
        self.metrics.control_message("malformed");
    }

    fn survey(&self, question: &[u8]) -> Option<Bytes> {
        let Some(question) = Question::parse(question) else {
            self.metrics.control_message("malformed");
            return None;
        };
        self.metrics.control_message("surveyed");
        serde_json::to_vec(&self.report(&question))
            .ok()
            .map(Bytes::from)
    }
}

// A poisoned lock means a panic elsewhere already; the registry stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::{Hub, HubConfig};

    #[tokio::test]
    async fn a_malformed_control_message_or_survey_is_dropped_and_counted() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        hub.broker
            .control(b"{not json".to_vec().into())
            .await
            .unwrap();
        let unknown = br#"{"op":"explode","user":"ann"}"#.to_vec();
        hub.broker.control(unknown.into()).await.unwrap();
        let answers = hub.broker.survey(
            br#"{"channels":"yes"}"#.to_vec().into(),
            std::time::Duration::ZERO,
        );
        assert!(
            answers.await.unwrap().is_empty(),
            "a malformed survey gets no answer"
        );
        let text = hub.metrics.render();
        assert!(
            text.contains(r#"herald_control_messages_total{outcome="malformed"} 3"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_survey_reports_this_nodes_channels_by_pattern_and_its_version() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let all = hub.channels(None).await.unwrap();
        assert_eq!((all.nodes, all.channels.len()), (1, 0));
        let nodes = hub.nodes().await.unwrap();
        assert_eq!(nodes[0].version, env!("CARGO_PKG_VERSION"));
        assert!(
            hub.channels(Some("")).await.is_err(),
            "an empty pattern is refused"
        );
    }
}
