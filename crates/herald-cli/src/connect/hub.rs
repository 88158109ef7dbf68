//! `herald connect --hub URL subscribe|publish`: one command in the hub's protocol mode
//! (subprotocol `herald.v1`, JSON commands, replies and pushes; see docs/protocol.md).

use super::Args;
use super::exit::Exit;
use super::output::Output;
use super::session::{self, Socket};
use herald::{CloseCode, Message};
use herald_hub_protocol::{
    Call, Command, PublishParams, Push, Reply, SUBPROTOCOL, SubscribeParams,
};
use serde_json::value::RawValue;

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

/// The id of the one command sent.
const ID: u64 = 1;

/// What a server message means for the command.
enum Step {
    Continue,
    Finish(Exit),
}

pub(crate) async fn run(args: &Args, url: &str, action: &Action) -> Exit {
    let out = Output::new(args.json, args.binary_format, false);
    let (mut socket, accepted) = match session::open(args, url, &[SUBPROTOCOL]).await {
        Ok(open) => open,
        Err((exit, message)) => return out.failed(exit, &message),
    };
    if accepted.subprotocol.as_deref() != Some(SUBPROTOCOL) {
        let _ = socket.close(CloseCode::NORMAL, "").await;
        let message = format!("the server did not accept the {SUBPROTOCOL} subprotocol");
        return out.failed(Exit::Refused, &message);
    }
    let command = Command {
        id: ID,
        call: call(action),
    };
    if let Err(e) = socket.send(Message::text(command.to_json())).await {
        out.error(&format!("sending: {e}"));
        return Exit::Abnormal;
    }
    converse(socket, action, &out).await
}

fn call(action: &Action) -> Call {
    match action {
        Action::Subscribe { channel } => Call::Subscribe(SubscribeParams {
            channel: channel.clone(),
            ..SubscribeParams::default()
        }),
        Action::Publish { channel, data } => Call::Publish(PublishParams {
            channel: channel.clone(),
            data: json_or_string(data),
        }),
    }
}

/// `data` when it is JSON, else `data` as a JSON string.
fn json_or_string(data: &str) -> Box<RawValue> {
    serde_json::from_str(data).unwrap_or_else(|_| {
        // A string always serialises; the fallback is never used.
        serde_json::value::to_raw_value(data).unwrap_or_default()
    })
}

async fn converse(mut socket: Socket, action: &Action, out: &Output) -> Exit {
    let subscribing = matches!(action, Action::Subscribe { .. });
    let mut error = None;
    loop {
        let item = tokio::select! {
            item = socket.recv() => item,
            _ = tokio::signal::ctrl_c(), if subscribing => return close(socket, Exit::Clean, out).await,
        };
        match item {
            Some(Ok(Message::Text(text))) => {
                if let Step::Finish(exit) = on_text(text.as_str(), action, out) {
                    return close(socket, exit, out).await;
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => error = Some(e),
            None => break,
        }
    }
    if let Some(error) = &error {
        out.error(&error.to_string());
    }
    let exit = Exit::of_end(error.as_ref(), socket.closed());
    out.closed(socket.closed(), exit);
    exit
}

/// Closes with 1000; returns `exit`, or how the close went wrong if `exit` is clean.
async fn close(mut socket: Socket, exit: Exit, out: &Output) -> Exit {
    let closed = socket.close(CloseCode::NORMAL, "").await.ok();
    let end = Exit::of_end(None, closed.as_ref());
    out.closed(closed.as_ref(), end);
    if exit == Exit::Clean { end } else { exit }
}

fn on_text(text: &str, action: &Action, out: &Output) -> Step {
    if out.is_json() {
        out.print(text.to_owned());
    }
    if let Ok(push) = Push::parse(text) {
        if let (Push::Pub(publication), false) = (push, out.is_json()) {
            out.print(publication.data.get().to_owned());
        }
        return Step::Continue;
    }
    let reply = match serde_json::from_str::<Reply<Box<RawValue>>>(text) {
        Ok(reply) if reply.id == ID => reply,
        Ok(_) => return Step::Continue,
        Err(e) => {
            out.error(&format!("unexpected message from the hub ({e}): {text}"));
            return Step::Continue;
        }
    };
    if let Some(error) = reply.error {
        let code = error.code.0;
        out.error(&format!("the hub refused: {} (code {code})", error.message));
        return Step::Finish(Exit::HubError);
    }
    let result = reply.result.as_deref().map_or("null", RawValue::get);
    match action {
        Action::Publish { .. } => {
            if !out.is_json() {
                out.print(result.to_owned());
            }
            Step::Finish(Exit::Clean)
        }
        Action::Subscribe { channel } => {
            eprintln!("herald connect: subscribed to {channel}: {result}");
            Step::Continue
        }
    }
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
    fn publish_command_matches_the_wire_shape() {
        let command = Command {
            id: ID,
            call: call(&Action::Publish {
                channel: "chat:1".into(),
                data: "hi".into(),
            }),
        };
        assert_eq!(
            command.to_json(),
            r#"{"id":1,"method":"publish","params":{"channel":"chat:1","data":"hi"}}"#
        );
    }
}
