//! Which deliveries reach a connection, and as what: the one rule for the session's own
//! writes and for fan-out writing straight to an idle connection's socket.

use super::End;
use super::subscriptions::Subscriptions;
use crate::broadcast::{Broadcast, Delivery, PresenceEvent};
use crate::recovery::Live;
use herald_hub_protocol::Disconnect;

/// What a connection's delivery rule depends on besides its subscriptions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// The connection's client id: its own join/leave, and in plain mode its own
    /// publications, are not sent back to it.
    pub(crate) client: &'a str,
    /// Plain mode: bare payloads, no join/leave pushes.
    pub(crate) plain: bool,
    /// `plain.echo`: a plain-mode client gets its own messages too.
    pub(crate) echo: bool,
}

/// What to send for a delivery.
#[derive(Debug)]
pub(crate) enum Chosen<'a> {
    /// Nothing: not subscribed (any more), a duplicate, or the client's own.
    Skip,
    /// A publication, as a bare payload in plain mode and a `pub` push otherwise.
    Publication(&'a Broadcast),
    /// A join or leave push.
    Presence(&'a PresenceEvent),
}

/// Applies the live-delivery rules to `delivery`: publications in order (a gap ends the
/// connection with 4002 so the client recovers; the filter advances on what is sent),
/// without the client's own messages in plain mode unless `echo`, presence only for
/// subscribed channels and others' joins and leaves.
///
/// # Errors
/// [`End::Close`] with [`Disconnect::INSUFFICIENT_STATE`] on a gap; the filter is unchanged.
pub(crate) fn choose<'a>(
    delivery: &'a Delivery,
    subscriptions: &mut Subscriptions,
    rules: &Rules<'_>,
) -> Result<Chosen<'a>, End> {
    match delivery {
        Delivery::Publication(b) => {
            let Some(filter) = subscriptions.get_mut(&b.channel) else {
                return Ok(Chosen::Skip);
            };
            match filter.accept(&b.epoch, b.publication.offset) {
                Live::Deliver => {}
                Live::Duplicate => return Ok(Chosen::Skip),
                Live::Gap => return Err(End::Close(Disconnect::INSUFFICIENT_STATE)),
            }
            let own = b
                .publication
                .publisher
                .as_ref()
                .is_some_and(|p| p.client == rules.client);
            if rules.plain && own && !rules.echo {
                return Ok(Chosen::Skip);
            }
            Ok(Chosen::Publication(b))
        }
        Delivery::Presence(event) => {
            if event.client != rules.client && subscriptions.contains_key(&event.channel) {
                Ok(Chosen::Presence(event))
            } else {
                Ok(Chosen::Skip)
            }
        }
    }
}
