//! Plain mode: any WebSocket client, no SDK. Every message a client sends is published to
//! its room; every publication in the room reaches the client as the bare payload.

use super::{End, Session};
use crate::broker::Payload;
use crate::hooks::plain_payload;
use crate::limits::Rate;
use crate::recovery::LiveFilter;
use crate::service::{Member, Start};
use herald::Message;
use herald_hub_protocol::{Disconnect, ErrorCode};
use std::time::Instant;

impl Session {
    pub(super) async fn start_plain(&mut self, room: &str) -> Result<(), End> {
        if self.check_read(room).is_err() {
            return Err(End::Close(Disconnect::POLICY));
        }
        // A refusal by the subscribe hook is a policy like a missing permission; plain mode
        // has no error replies, so it closes right after the upgrade.
        match self.ask_subscribe(room).await {
            Ok(_) => {}
            // The backend, not the broker, failed: 1011, reconnect later.
            Err(e) if e.code == ErrorCode::UNAVAILABLE => {
                return Err(End::Close(Disconnect::INTERNAL));
            }
            Err(_) => return Err(End::Close(Disconnect::POLICY)),
        }
        let member = Member {
            id: self.id,
            info: &self.info,
            subscriber: self.subscriber.clone(),
        };
        match self.hub.subscribe(room, member, Start::default()).await {
            Ok(joined) => {
                self.subscriptions
                    .insert(joined.name, LiveFilter::new(joined.position));
                Ok(())
            }
            Err(_) => Err(End::Close(Disconnect::UNAVAILABLE)),
        }
    }

    pub(super) async fn on_plain(&mut self, room: &str, message: Message) -> Result<(), End> {
        let mut payload = match message {
            Message::Text(text) => Payload::Text(text.into_bytes()),
            Message::Binary(data) => Payload::Binary(data),
            _ => return Ok(()),
        };
        if self.check_write(room).is_err() {
            return Err(End::Close(Disconnect::POLICY));
        }
        // Plain mode has no error replies: over the rate is a policy violation.
        if self.publish_rate.check(Instant::now()) != Rate::Allowed {
            return Err(self.abuse("publish_rate"));
        }
        match self.ask_publish(room, &payload).await {
            Ok(None) => {}
            Ok(Some(data)) => payload = plain_payload(&data),
            // The backend, not the broker, failed: 1011, reconnect later.
            Err(e) if e.code == ErrorCode::UNAVAILABLE => {
                return Err(End::Close(Disconnect::INTERNAL));
            }
            Err(_) => return Err(End::Close(Disconnect::POLICY)),
        }
        match self
            .hub
            .publish(room, payload, Some(self.info.clone()))
            .await
        {
            Ok(_) => Ok(()),
            // The namespace lets only the server publish: a policy, like a missing permission.
            Err(e) if e.code == ErrorCode::PERMISSION_DENIED => Err(End::Close(Disconnect::POLICY)),
            Err(_) => Err(End::Close(Disconnect::UNAVAILABLE)),
        }
    }
}
