//! `herald connect`: a command-line WebSocket client. Lines of standard input go out as
//! messages, received messages come out on standard output, and the exit status says how the
//! connection ended (see [`exit::TABLE`]).

mod exit;
mod hub;
mod input;
mod output;
mod session;
mod tls;

use exit::Exit;
use herald::CloseCode;
use output::{BinaryFormat, Output};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Options of `herald connect`.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = exit::TABLE,
    long_about = "Connects to a WebSocket server. Each line of standard input is sent as a \
        message; received messages are printed on standard output as they arrive. At the end \
        of input (Ctrl-D on a terminal) the client closes with --close and waits for the \
        server's answer. On a terminal, input has a `> ` prompt with line editing and history. \
        To only listen, keep standard input open: `tail -f /dev/null | herald connect URL`."
)]
pub(crate) struct Args {
    /// The `ws://` or `wss://` URL.
    #[arg(required_unless_present = "hub", conflicts_with = "hub")]
    url: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The `Origin` header.
    #[arg(long)]
    origin: Option<String>,
    /// A subprotocol to offer, in order of preference (repeatable).
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// Offer permessage-deflate (RFC 7692).
    #[arg(long)]
    compress: bool,
    /// A PEM file of extra root certificates for `wss://`.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Accept any server certificate (self-signed test servers only).
    #[arg(long)]
    insecure: bool,
    /// Send a Ping every SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    ping_interval: Option<Duration>,
    /// The Close sent at the end of input, `CODE` or `CODE:REASON`.
    #[arg(long, value_name = "CODE[:REASON]", default_value = "1000", value_parser = parse_close)]
    close: (CloseCode, String),
    /// Limit for connecting and the handshake, for the server's answer to our Close, and
    /// with --hub for the hub's reply to the command.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    timeout: Duration,
    /// Send lines as binary messages, decoded per --binary-format.
    #[arg(long)]
    binary: bool,
    /// How binary payloads are written, in input and output.
    #[arg(long, value_enum, default_value_t = BinaryFormat::Hex)]
    binary_format: BinaryFormat,
    /// Print one JSON object per event (open, message, ping, pong, error, close).
    #[arg(long)]
    json: bool,
    /// Speak the hub's protocol (`herald.v1`) to the server at URL.
    #[arg(long, value_name = "URL")]
    hub: Option<String>,
    #[command(subcommand)]
    hub_command: Option<hub::Action>,
}

fn parse_header(value: &str) -> Result<(String, String), String> {
    let (name, value) = value
        .split_once(':')
        .ok_or_else(|| format!("expected `Name: value`, got {value:?}"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err("empty header name".into());
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn parse_secs(value: &str) -> Result<Duration, String> {
    let secs: f64 = value.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

fn parse_close(value: &str) -> Result<(CloseCode, String), String> {
    let (code, reason) = value.split_once(':').unwrap_or((value, ""));
    let code = CloseCode::from(code.parse::<u16>().map_err(|e| format!("{e}"))?);
    if !code.is_sendable() {
        return Err(format!(
            "{code} may not be sent (1000-1003, 1007-1014, 3000-4999)"
        ));
    }
    if reason.len() > herald::proto::close::MAX_REASON_LEN {
        return Err("the reason is over 123 bytes".into());
    }
    Ok((code, reason.to_owned()))
}

pub(crate) fn main(args: Args) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let exit = match runtime {
        Ok(runtime) => match (&args.hub, &args.hub_command, &args.url) {
            (Some(url), Some(action), None) => runtime.block_on(hub::run(&args, url, action)),
            (None, None, Some(url)) => runtime.block_on(run(&args, url)),
            (Some(_), None, _) => fail(Exit::Usage, "--hub needs a command: subscribe or publish"),
            _ => fail(Exit::Usage, "subscribe and publish need --hub URL"),
        },
        Err(e) => fail(Exit::Local, &format!("starting the runtime: {e}")),
    };
    exit.into()
}

fn fail(exit: Exit, message: &str) -> Exit {
    eprintln!("herald connect: {message}");
    exit
}

async fn run(args: &Args, url: &str) -> Exit {
    let interactive = std::io::stdin().is_terminal();
    let out = Arc::new(Output::new(args.json, args.binary_format, interactive));
    let (socket, accepted) = match session::open(args, url).await {
        Ok(open) => open,
        Err((exit, message)) => return out.failed(exit, &message),
    };
    out.opened(url, &accepted);
    // Input starts once connected, so that a refused connection shows no prompt.
    let stdin = match input::spawn(interactive) {
        Ok(stdin) => stdin,
        Err(e) => return fail(Exit::Local, &format!("reading standard input: {e:#}")),
    };
    out.set_editor(stdin.editor);
    let plan = session::Plan {
        close: args.close.clone(),
        timeout: args.timeout,
        ping_interval: args.ping_interval,
        binary: args.binary.then_some(args.binary_format),
    };
    session::run(socket, &plan, stdin.lines, out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_splits_at_the_first_colon() {
        assert_eq!(
            parse_header("Authorization: Bearer a:b"),
            Ok(("Authorization".into(), "Bearer a:b".into()))
        );
        assert!(parse_header("no colon").is_err());
    }

    #[test]
    fn close_takes_a_sendable_code_and_an_optional_reason() {
        assert_eq!(
            parse_close("4000:bye"),
            Ok((CloseCode::from(4000), "bye".into()))
        );
        assert_eq!(
            parse_close("1001"),
            Ok((CloseCode::GOING_AWAY, String::new()))
        );
        assert!(parse_close("1006").is_err());
        assert!(parse_close("x").is_err());
    }
}
