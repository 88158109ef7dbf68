//! Delivery: every node renews its life and tries for the lease each tick; the one that holds
//! it sweeps (through the broker) and POSTs the outbox's oldest events, in order, a batch at
//! a time, removing them only once the backend answered 2xx. A failed POST is retried after a
//! wait that doubles up to `webhooks.max_backoff`; the events stay in the outbox meanwhile,
//! so they survive this node.

use super::Webhooks;
use super::event::body;
use super::sign::signature;
use crate::broker::{Broker, Lead};
use crate::fetch::{self, FetchError, Outgoing, WEBHOOK_ID};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a node renews its life and its claim on the lease.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// The first wait after a failed POST.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

impl Webhooks {
    /// Leads when it can and delivers, forever.
    pub(crate) async fn deliver(&self, broker: &dyn Broker, node: &str) {
        let mut backoff = FIRST_BACKOFF;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Batch after batch while this node leads and events wait.
            while let Some(lead) = self.lead(broker, node).await
                && lead.leader
                && lead.waiting > 0
            {
                if let Err(e) = self.deliver_batch(broker).await {
                    tracing::warn!(error = %e, wait = ?backoff, "webhook POST failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    break;
                }
                backoff = FIRST_BACKOFF;
            }
        }
    }

    async fn lead(&self, broker: &dyn Broker, node: &str) -> Option<Lead> {
        match broker.outbox_lead(node, self.policy).await {
            Ok(lead) => {
                self.metrics.webhook_appended(lead.appended);
                self.metrics
                    .webhook_queue
                    .set(i64::try_from(lead.waiting).unwrap_or(i64::MAX));
                if lead.rejoined {
                    self.tracker.resync();
                }
                Some(lead)
            }
            Err(e) => {
                tracing::debug!(error = %e, "webhook lead failed");
                None
            }
        }
    }

    /// POSTs the oldest batch to each endpoint it has events for, and removes it once every
    /// one took it. A failure anywhere sends the whole batch again later: an endpoint that
    /// took it gets it twice (same ids, for Herald's events), as at-least-once allows.
    async fn deliver_batch(&self, broker: &dyn Broker) -> Result<(), FetchError> {
        let entries = broker
            .outbox_read(self.config.batch)
            .await
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = entries.len() as u64;
        let mut posts = Vec::new();
        if let Some(herald) = &self.herald
            && let Some((body, first)) = body(&entries, &self.config.events)
        {
            let timestamp = now.as_secs();
            let signature = signature(self.secret.as_bytes(), timestamp, &body);
            let headers = vec![
                (WEBHOOK_ID, first),
                ("herald-timestamp", timestamp.to_string()),
                ("herald-signature", signature),
            ];
            posts.push((herald, body, headers));
        }
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        for app in &self.pusher {
            if let Some((body, signature)) = app.body(&entries, now_ms) {
                let headers = vec![
                    (WEBHOOK_ID, first.id.clone()),
                    ("x-pusher-key", app.key.clone()),
                    ("x-pusher-signature", signature),
                ];
                posts.push((&app.endpoint, body, headers));
            }
        }
        for (endpoint, body, headers) in posts {
            let post = fetch::call(
                &endpoint.url,
                endpoint.tls.as_ref(),
                Outgoing::Webhook(body.into(), headers),
                0,
            );
            let sent = tokio::time::timeout(self.config.timeout, post)
                .await
                .unwrap_or(Err(FetchError::Timeout));
            if let Err(e) = sent {
                self.metrics.webhook_events("failed", n);
                return Err(e);
            }
        }
        self.metrics.webhook_events("sent", n);
        let ids: Vec<String> = entries.into_iter().map(|e| e.id).collect();
        if let Err(e) = broker.outbox_ack(&ids).await {
            // Delivered, but still in the outbox: it will be delivered again (same ids).
            tracing::warn!(error = %e, "webhook acknowledgement failed");
        }
        Ok(())
    }
}
