//! Plain mode: any WebSocket client, no SDK. Every message a client sends is published to
//! its room; every publication in the room reaches the client as the bare payload.

use super::{End, Session};
use crate::broker::Payload;
use crate::limits::Rate;
use herald::Message;
use herald_hub_protocol::Disconnect;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn start_plain(&mut self, room: &str) -> Result<(), End> {
        if !self.identity.can_subscribe(room) {
            return Err(End::Close(Disconnect::POLICY));
        }
        match self.join(room, None, false).await {
            Ok((name, position, _)) => {
                self.subscriptions
                    .insert(name, crate::recovery::LiveFilter::new(position));
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
        if !self.identity.can_publish(room) {
            return Err(End::Close(Disconnect::POLICY));
        }
        if self.rate.check(Instant::now()) != Rate::Allowed {
            // Plain mode has no error replies: over the rate is a policy violation.
            return Err(End::Close(Disconnect::POLICY));
        }
        match self
            .hub
            .publish(room, payload, Some(self.info.clone()))
            .await
        {
            Ok(_) => Ok(()),
            Err(_) => Err(End::Close(Disconnect::UNAVAILABLE)),
        }
    }
}
