//! Plain mode: any WebSocket client, no SDK. Every message a client sends is published to
//! its room; every publication in the room reaches the client as the bare payload.

use super::{End, Session};
use crate::broker::Payload;
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
        let payload = match message {
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
