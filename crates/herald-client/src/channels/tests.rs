//! The delivery rules: once each, in order, across reconnects and server-side subscriptions.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::value::RawValue;
use std::time::Duration;

fn data(n: u64) -> Box<RawValue> {
    RawValue::from_string(n.to_string()).unwrap()
}

fn publication(channel: &str, offset: u64, epoch: &str) -> Publication {
    Publication {
        channel: channel.into(),
        offset,
        epoch: epoch.into(),
        data: data(offset),
        encoding: None,
        user: None,
    }
}

fn body(offset: u64) -> PublicationBody {
    PublicationBody {
        offset,
        data: data(offset),
        encoding: None,
        user: None,
    }
}

fn at(offset: u64, epoch: &str) -> StreamPosition {
    StreamPosition {
        offset,
        epoch: epoch.into(),
    }
}

fn offsets(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Publication(p) => Some(p.offset),
            _ => None,
        })
        .collect()
}

fn subscribed(events: &[Event]) -> Vec<&crate::Subscribed> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Subscribed(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// A client channel, subscribed once at offset 3 of epoch "e".
fn live_client_channel() -> (Channels, oneshot::Receiver<Result<crate::Subscribed>>) {
    let mut channels = Channels::new(8, 4);
    let (waiter, outcome) = oneshot::channel();
    channels.admit("c").unwrap();
    channels.insert("c", SubscribeOptions::default(), waiter);
    assert_eq!(channels.due(Instant::now()).len(), 1);
    let result = SubscribeResult {
        offset: 3,
        epoch: "e".into(),
        recovered: None,
        publications: Vec::new(),
        data: None,
    };
    channels.on_subscribe_reply("c", result, &mut Vec::new());
    (channels, outcome)
}

fn server_push(channel: &str, offset: u64, epoch: &str) -> proto::Subscribed {
    proto::Subscribed {
        channel: channel.into(),
        offset,
        epoch: epoch.into(),
    }
}

#[test]
fn first_subscribe_reply_reaches_the_caller_and_sets_the_position() {
    let (channels, mut outcome) = live_client_channel();
    let first = outcome.try_recv().unwrap().unwrap();
    assert_eq!((first.offset, first.recovered), (3, None));
    assert_eq!(channels.position("c"), Some(&at(3, "e")));
}

#[test]
fn live_publication_at_or_before_the_position_is_dropped() {
    let (mut channels, _) = live_client_channel();
    let mut out = Vec::new();
    for offset in [2, 3, 4, 4, 5] {
        channels.on_publication(publication("c", offset, "e"), &mut out);
    }
    assert_eq!(offsets(&out), [4, 5]);
}

#[test]
fn publication_in_a_new_epoch_is_applied() {
    let (mut channels, _) = live_client_channel();
    let mut out = Vec::new();
    channels.on_publication(publication("c", 1, "f"), &mut out);
    assert_eq!(offsets(&out), [1]);
    assert_eq!(channels.position("c"), Some(&at(1, "f")));
}

#[test]
fn resubscribe_recovers_from_the_position_and_recovered_meet_live_without_duplicate() {
    let (mut channels, _) = live_client_channel();
    channels.reset();
    let params = channels.due(Instant::now());
    assert_eq!(params[0].recover, Some(at(3, "e")));
    assert_eq!(params[0].latest, None);
    let result = SubscribeResult {
        offset: 6,
        epoch: "e".into(),
        recovered: Some(true),
        publications: vec![body(3), body(4), body(5), body(6)],
        data: None,
    };
    let mut out = Vec::new();
    channels.on_subscribe_reply("c", result, &mut out);
    channels.on_publication(publication("c", 6, "e"), &mut out);
    channels.on_publication(publication("c", 7, "e"), &mut out);
    assert_eq!(offsets(&out), [4, 5, 6, 7]);
    let s = subscribed(&out);
    assert_eq!(s[0].recovered, Some(true));
    assert_eq!(s[0].previous, Some(at(3, "e")));
}

#[test]
fn recovered_false_reports_the_previous_position_and_replays_nothing() {
    let (mut channels, _) = live_client_channel();
    channels.reset();
    channels.due(Instant::now());
    let result = SubscribeResult {
        offset: 1,
        epoch: "f".into(),
        recovered: Some(false),
        publications: vec![body(1)],
        data: None,
    };
    let mut out = Vec::new();
    channels.on_subscribe_reply("c", result, &mut out);
    assert!(offsets(&out).is_empty());
    let s = subscribed(&out);
    assert_eq!(
        (s[0].recovered, s[0].previous.clone()),
        (Some(false), Some(at(3, "e")))
    );
    assert_eq!(channels.position("c"), Some(&at(1, "f")));
}

#[test]
fn publications_before_the_subscribe_reply_are_dropped() {
    let mut channels = Channels::new(8, 4);
    let (waiter, _outcome) = oneshot::channel();
    channels.insert("c", SubscribeOptions::default().latest(5), waiter);
    let params = channels.due(Instant::now());
    assert_eq!(params[0].latest, Some(5));
    let mut out = Vec::new();
    channels.on_publication(publication("c", 1, "e"), &mut out);
    assert!(out.is_empty());
}

#[test]
fn temporary_refusal_is_retried_later_and_a_permanent_one_ends_the_subscription() {
    let (mut channels, _) = live_client_channel();
    channels.reset();
    channels.due(Instant::now());
    let later = Instant::now() + Duration::from_secs(1);
    let mut out = Vec::new();
    let busy = ErrorBody::new(proto::ErrorCode::RATE_LIMITED);
    channels.on_subscribe_error("c", busy, |_| later, &mut out);
    assert_eq!(channels.next_retry(), Some(later));
    assert!(channels.due(Instant::now()).is_empty());
    assert_eq!(channels.due(later).len(), 1);
    let denied = ErrorBody::new(proto::ErrorCode::PERMISSION_DENIED);
    channels.on_subscribe_error("c", denied, |_| later, &mut out);
    assert!(matches!(&out[..], [Event::Unsubscribed(u)] if u.refused.is_some()));
    assert!(channels.remove("c").is_none());
}

#[test]
fn admit_refuses_a_held_channel_and_past_the_limit() {
    let (channels, _) = live_client_channel();
    assert!(matches!(
        channels.admit("c"),
        Err(Error::AlreadySubscribed(_))
    ));
    let full = Channels::new(0, 4);
    assert!(matches!(full.admit("d"), Err(Error::TooManySubscriptions)));
}

#[test]
fn server_subscribed_without_a_position_goes_live_at_once() {
    let mut channels = Channels::new(8, 4);
    let mut out = Vec::new();
    assert_eq!(
        channels.on_server_subscribed(server_push("#u", 5, "e"), &mut out),
        None
    );
    channels.on_publication(publication("#u", 6, "e"), &mut out);
    assert_eq!(offsets(&out), [6]);
    assert!(subscribed(&out)[0].server_side);
}

#[test]
fn server_subscribed_after_a_reconnect_reads_the_gap_then_the_buffered_live_ones() {
    let mut channels = Channels::new(8, 4);
    let mut out = Vec::new();
    channels.on_server_subscribed(server_push("#u", 2, "e"), &mut out);
    channels.reset();
    out.clear();
    let since = channels.on_server_subscribed(server_push("#u", 5, "e"), &mut out);
    assert_eq!(since, Some(at(2, "e")));
    channels.on_publication(publication("#u", 6, "e"), &mut out);
    assert!(out.is_empty(), "live publications wait for the gap");
    let history = HistoryResult {
        offset: 6,
        epoch: "e".into(),
        publications: vec![body(3), body(4)],
    };
    let more = channels.on_catch_up("#u", Ok(history), &mut out);
    assert_eq!(more, Some(at(4, "e")), "the reply stopped short: read on");
    let history = HistoryResult {
        offset: 6,
        epoch: "e".into(),
        publications: vec![body(5), body(6)],
    };
    assert_eq!(channels.on_catch_up("#u", Ok(history), &mut out), None);
    assert_eq!(offsets(&out), [3, 4, 5, 6]);
    assert_eq!(subscribed(&out)[0].recovered, Some(true));
}

#[test]
fn catch_up_refused_reports_not_recovered_and_delivers_live_from_the_push() {
    let mut channels = Channels::new(8, 4);
    let mut out = Vec::new();
    channels.on_server_subscribed(server_push("#u", 2, "e"), &mut out);
    channels.reset();
    out.clear();
    channels.on_server_subscribed(server_push("#u", 9, "e"), &mut out);
    channels.on_publication(publication("#u", 10, "e"), &mut out);
    let trimmed = ErrorBody::new(proto::ErrorCode::POSITION_UNAVAILABLE);
    channels.on_catch_up("#u", Err(trimmed), &mut out);
    assert_eq!(subscribed(&out)[0].recovered, Some(false));
    assert_eq!(offsets(&out), [10]);
}

#[test]
fn server_subscribed_in_another_epoch_reports_not_recovered() {
    let mut channels = Channels::new(8, 4);
    let mut out = Vec::new();
    channels.on_server_subscribed(server_push("#u", 2, "e"), &mut out);
    channels.reset();
    out.clear();
    assert_eq!(
        channels.on_server_subscribed(server_push("#u", 9, "f"), &mut out),
        None
    );
    let s = subscribed(&out);
    assert_eq!(
        (s[0].recovered, s[0].previous.clone()),
        (Some(false), Some(at(2, "e")))
    );
}

#[test]
fn catch_up_buffer_past_its_bound_gives_up_instead_of_growing() {
    let mut channels = Channels::new(8, 2);
    let mut out = Vec::new();
    channels.on_server_subscribed(server_push("#u", 1, "e"), &mut out);
    channels.reset();
    out.clear();
    channels.on_server_subscribed(server_push("#u", 5, "e"), &mut out);
    for offset in 6..=8 {
        channels.on_publication(publication("#u", offset, "e"), &mut out);
    }
    assert_eq!(subscribed(&out)[0].recovered, Some(false));
    assert_eq!(offsets(&out), [6, 7, 8]);
    let late = HistoryResult {
        offset: 8,
        epoch: "e".into(),
        publications: vec![body(2)],
    };
    assert_eq!(channels.on_catch_up("#u", Ok(late), &mut out), None);
    assert_eq!(offsets(&out), [6, 7, 8], "a late reply changes nothing");
}

#[test]
fn subscribed_pushes_past_the_limit_are_ignored() {
    let mut channels = Channels::new(2, 4);
    let mut out = Vec::new();
    for name in ["a", "b", "c"] {
        channels.on_server_subscribed(server_push(name, 0, "e"), &mut out);
    }
    assert_eq!(subscribed(&out).len(), 2);
    assert!(channels.position("c").is_none());
}

#[test]
fn unsubscribed_push_forgets_the_channel() {
    let (mut channels, _) = live_client_channel();
    let mut out = Vec::new();
    let push = proto::Unsubscribed {
        channel: "c".into(),
        reason: "server".into(),
    };
    channels.on_server_unsubscribed(push, &mut out);
    assert!(matches!(&out[..], [Event::Unsubscribed(u)] if u.reason == "server"));
    channels.reset();
    assert!(channels.due(Instant::now()).is_empty(), "not resubscribed");
}
