//! `herald connect --hub URL subscribe|publish`: one command in the hub's protocol mode
//! (subprotocol `herald.v1`, see docs/protocol.md), through `herald-client` with reconnects
//! off: the first disconnect ends the run.

use super::Args;
use super::exit::Exit;
use super::output::Output;
use super::session;
use herald_client::{
    Client, ClientConfig, Disconnected, Error, Event, Publication, SubscribeOptions, Subscribed,
};
use herald_hub_protocol::{ErrorBody, Push, Reply, SubscribeResult};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// What to do on the hub.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Subscribe to CHANNEL and print each publication's data on a line, until the server
    /// closes or Ctrl-C.
    Subscribe {
        /// The channel.
        channel: String,
    },
    /// Publish DATA to CHANNEL (JSON as it is, anything else as a JSON string) and print
    /// where it landed (`{"offset":..,"epoch":..}`).
    Publish {
        /// The channel.
        channel: String,
        /// The data.
        data: String,
    },
}

/// The id `--json` shows on the command's reply: the one command of the run.
const ID: u64 = 1;

pub(crate) async fn run(args: &Args, url: &str, action: &Action) -> Exit {
    let out = Output::new(args.json, args.binary_format, false);
    let config = match config(args, url) {
        Ok(config) => config,
        Err((exit, message)) => return out.failed(exit, &message),
    };
    let (client, mut events) = match Client::connect(config) {
        Ok(started) => started,
        Err(e) => return out.failed(Exit::Usage, &e.to_string()),
    };
    match events.recv().await {
        Some(Event::Connected(connected)) => {
            if out.is_json() {
                out.print(Push::Connected(connected).to_json());
            }
        }
        Some(Event::Disconnected(ended)) => return not_connected(ended, &out),
        _ => return out.failed(Exit::Abnormal, "the connection ended"),
    }
    match action {
        Action::Publish { channel, data } => publish(client, events, channel, data, &out).await,
        Action::Subscribe { channel } => subscribe(client, events, channel, &out).await,
    }
}

/// The client settings the options ask for, reconnects off.
fn config(args: &Args, url: &str) -> Result<ClientConfig, (Exit, String)> {
    let mut config = ClientConfig::new(url)
        .reconnect(false)
        .websocket(session::config(args))
        .connect_timeout(args.timeout)
        .command_timeout(args.timeout);
    for (name, value) in session::checked_headers(args)? {
        config = config.header(name, value);
    }
    if let Some(origin) = &args.origin {
        config = config.origin(origin);
    }
    for protocol in &args.subprotocols {
        config = config.subprotocol(protocol);
    }
    if let Some(tls) = session::tls(args)? {
        config = config.tls(tls);
    }
    Ok(config)
}

/// The first connection failed, or ended before the hub said `connected`.
fn not_connected(ended: Disconnected, out: &Output) -> Exit {
    match &ended.error {
        Some(Error::WebSocket(e)) if !ended.opened => {
            out.failed(Exit::of_connect_error(e), &session::describe(e))
        }
        Some(e @ Error::NotHerald) => out.failed(Exit::Refused, &e.to_string()),
        _ => end(ended, out),
    }
}

async fn publish(
    client: Client,
    mut events: mpsc::Receiver<Event>,
    channel: &str,
    data: &str,
    out: &Output,
) -> Exit {
    match client.publish_raw(channel, json_or_string(data)).await {
        Ok(landed) => {
            if out.is_json() {
                out.print(json(&Reply::ok(ID, &landed)));
            } else {
                out.print(json(&landed));
            }
            close(&client, Exit::Clean, out).await
        }
        Err(Error::Server(error)) => {
            refused(error, out);
            close(&client, Exit::HubError, out).await
        }
        Err(Error::Timeout) => {
            out.error("no reply from the hub in time");
            close(&client, Exit::Abnormal, out).await
        }
        Err(_) => ended(&mut events, out).await,
    }
}

async fn subscribe(
    client: Client,
    mut events: mpsc::Receiver<Event>,
    channel: &str,
    out: &Output,
) -> Exit {
    let subscribing = tokio::select! {
        outcome = client.subscribe(channel, SubscribeOptions::default()) => outcome,
        _ = tokio::signal::ctrl_c() => return close(&client, Exit::Clean, out).await,
    };
    match subscribing {
        // The outcome is printed from its event, in order with the publications.
        Ok(_) => {}
        Err(Error::Server(error)) => {
            refused(error, out);
            return close(&client, Exit::HubError, out).await;
        }
        Err(Error::Timeout) => {
            out.error("no reply from the hub in time");
            return close(&client, Exit::Abnormal, out).await;
        }
        Err(_) => return ended(&mut events, out).await,
    }
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tokio::signal::ctrl_c() => return close(&client, Exit::Clean, out).await,
        };
        match event {
            Some(Event::Subscribed(subscribed)) => on_subscribed(&subscribed, out),
            Some(Event::Publication(publication)) => on_publication(publication, out),
            Some(Event::Join(member)) if out.is_json() => out.print(Push::Join(member).to_json()),
            Some(Event::Leave(member)) if out.is_json() => out.print(Push::Leave(member).to_json()),
            Some(Event::Disconnected(disconnected)) => return end(disconnected, out),
            Some(_) => {}
            None => return end_without_word(out),
        }
    }
}

fn on_subscribed(subscribed: &Subscribed, out: &Output) {
    let result = SubscribeResult {
        offset: subscribed.offset,
        epoch: subscribed.epoch.clone(),
        recovered: subscribed.recovered,
        publications: Vec::new(),
        data: None,
    };
    if out.is_json() {
        out.print(json(&Reply::ok(ID, &result)));
    } else {
        let channel = &subscribed.channel;
        eprintln!("herald connect: subscribed to {channel}: {}", json(&result));
    }
}

fn on_publication(publication: Publication, out: &Output) {
    if out.is_json() {
        out.print(Push::Pub(publication).to_json());
    } else {
        out.print(publication.data.get().to_owned());
    }
}

fn refused(error: ErrorBody, out: &Output) {
    if out.is_json() {
        out.print(json(&Reply::<()>::error(ID, error.clone())));
    }
    let code = error.code.0;
    out.error(&format!("the hub refused: {} (code {code})", error.message));
}

/// Waits for the disconnect that failed the command, and exits as it says.
async fn ended(events: &mut mpsc::Receiver<Event>, out: &Output) -> Exit {
    while let Some(event) = events.recv().await {
        if let Event::Disconnected(disconnected) = event {
            return end(disconnected, out);
        }
    }
    end_without_word(out)
}

/// The connection ended: report how, and exit as the close says.
fn end(disconnected: Disconnected, out: &Output) -> Exit {
    let closed = disconnected.closed.as_ref();
    let exit = match &disconnected.error {
        Some(Error::WebSocket(e)) => Exit::of_end(Some(e), closed),
        Some(_) => Exit::Abnormal,
        None => Exit::of_end(None, closed),
    };
    if let Some(error) = &disconnected.error {
        out.error(&error.to_string());
    }
    out.closed(closed, exit);
    exit
}

fn end_without_word(out: &Output) -> Exit {
    out.closed(None, Exit::Abnormal);
    Exit::Abnormal
}

/// Closes with 1000; returns `exit`, or how the close went wrong if `exit` is clean.
async fn close(client: &Client, exit: Exit, out: &Output) -> Exit {
    let closed = client.close().await;
    let end = Exit::of_end(None, closed.as_ref());
    out.closed(closed.as_ref(), end);
    if exit == Exit::Clean { end } else { exit }
}

/// `data` when it is JSON, else `data` as a JSON string.
fn json_or_string(data: &str) -> Box<RawValue> {
    serde_json::from_str(data).unwrap_or_else(|_| {
        // A string always serialises; the fallback is never used.
        serde_json::value::to_raw_value(data).unwrap_or_default()
    })
}

fn json(value: &impl Serialize) -> String {
    // The protocol's types serialise to a String without fail: every map key is a string.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_data_is_json_or_a_string() {
        assert_eq!(json_or_string(r#"{"a": 1}"#).get(), r#"{"a": 1}"#);
        assert_eq!(json_or_string("42").get(), "42");
        assert_eq!(json_or_string("hello \"you\"").get(), r#""hello \"you\"""#);
    }

    #[test]
    fn replies_shown_with_json_match_the_wire_shape() {
        let landed = herald_hub_protocol::PublishResult {
            offset: 1,
            epoch: "e".into(),
        };
        assert_eq!(
            json(&Reply::ok(ID, &landed)),
            r#"{"id":1,"result":{"offset":1,"epoch":"e"}}"#
        );
        let refusal = ErrorBody::new(herald_hub_protocol::ErrorCode::PERMISSION_DENIED);
        assert_eq!(
            json(&Reply::<()>::error(ID, refusal)),
            r#"{"id":1,"error":{"code":103,"message":"permission denied","temporary":false}}"#
        );
    }
}
