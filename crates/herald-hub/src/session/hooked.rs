//! The command hooks as a session asks them: only in the namespaces that turn them on, and
//! only for what the hub's own rules would let through.

use super::Session;
use crate::broker::Payload;
use crate::service::Outcome;
use serde_json::value::RawValue;

impl Session {
    /// The subscribe hook's answer for `channel`: `Ok(None)` when its namespace does not ask.
    ///
    /// # Errors
    /// 112 for an unknown namespace; the hook's 103 or 109.
    pub(super) async fn ask_subscribe(&self, channel: &str) -> Outcome<Option<Box<RawValue>>> {
        let hub = &self.hub;
        if !hub
            .live()
            .namespaces
            .rules(channel, &hub.metrics)?
            .subscribe_hook
        {
            return Ok(None);
        }
        // A hook is on only in a configured namespace, so the channel has its prefix.
        let namespace = channel.split_once(':').map_or("", |(ns, _)| ns);
        hub.command_hooks
            .subscribe(&self.info, channel, namespace)
            .await
    }

    /// The publish hook's answer for `payload` on `channel`: `Ok(None)` to publish it as is
    /// (or when the namespace does not ask, or refuses connections' publications anyway),
    /// `Ok(Some(data))` to publish `data` instead.
    ///
    /// # Errors
    /// 112 for an unknown namespace; the hook's 103 or 109.
    pub(super) async fn ask_publish(
        &self,
        channel: &str,
        payload: &Payload,
    ) -> Outcome<Option<Box<RawValue>>> {
        let hub = &self.hub;
        let asks = {
            let live = hub.live();
            let rules = live.namespaces.rules(channel, &hub.metrics)?;
            rules.publish_hook && rules.client_publish
        };
        if !asks {
            return Ok(None);
        }
        hub.command_hooks
            .publish(&self.info, channel, payload)
            .await
    }
}
