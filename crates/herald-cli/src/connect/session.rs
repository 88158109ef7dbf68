//! One connection: standard input lines out, received messages to the output, until either
//! side closes.

use super::Args;
use super::exit::Exit;
use super::input::Input;
use super::output::Output;
use herald::handshake::Accepted;
use herald::{
    Bytes, ClientBuilder, CloseCode, Config, Error, MaybeTlsStream, Message, Reader, Writer,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) type Socket = herald::WebSocket<MaybeTlsStream>;

/// How long past `--timeout` we wait for herald's own close timer before giving up.
const BACKSTOP: Duration = Duration::from_secs(1);

/// Opens the connection the options describe.
///
/// # Errors
/// The status and message to exit with.
pub(crate) async fn open(args: &Args, url: &str) -> Result<(Socket, Accepted), (Exit, String)> {
    let usage = |e: &dyn std::fmt::Display| (Exit::Usage, e.to_string());
    let mut builder = ClientBuilder::new(url).map_err(|e| usage(&e))?;
    for (name, value) in checked_headers(args)? {
        builder = builder
            .header(name, value)
            .map_err(|_| usage(&format!("invalid header {name:?}")))?;
    }
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin);
    }
    for protocol in &args.subprotocols {
        builder = builder.subprotocol(protocol);
    }
    builder = builder.config(config(args)).connect_timeout(args.timeout);
    if let Some(tls) = tls(args)? {
        builder = builder.tls_config(tls);
    }
    builder
        .connect()
        .await
        .map_err(|e| (Exit::of_connect_error(&e), describe(&e)))
}

/// The connection settings the options ask for.
pub(crate) fn config(args: &Args) -> Config {
    Config::default()
        .handshake_timeout(args.timeout)
        .close_timeout(args.timeout)
        .deflate(args.compress.then(herald::DeflateConfig::default))
}

/// The `--header`s, each checked to be valid in HTTP.
///
/// # Errors
/// A usage error naming the first invalid one.
pub(crate) fn checked_headers(args: &Args) -> Result<&[(String, String)], (Exit, String)> {
    for (name, value) in &args.headers {
        let valid = herald::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && herald::http::HeaderValue::from_str(value).is_ok();
        if !valid {
            return Err((Exit::Usage, format!("invalid header {name:?}")));
        }
    }
    Ok(&args.headers)
}

/// The TLS settings of `--ca` and `--insecure`; `None` keeps the platform's roots.
///
/// # Errors
/// A local error when the `--ca` file cannot be used.
pub(crate) fn tls(args: &Args) -> Result<Option<Arc<herald::tls::ClientConfig>>, (Exit, String)> {
    super::tls::client_config(args.ca.as_deref(), args.insecure)
        .map_err(|e| (Exit::Local, format!("{e:#}")))
}

/// The error as a person reads it: a refusal with its status line and body.
pub(crate) fn describe(error: &Error) -> String {
    match error {
        Error::Handshake(herald::proto::HandshakeError::Rejected(response)) => {
            let reason = response.status.canonical_reason().unwrap_or("");
            let body = String::from_utf8_lossy(&response.body);
            let status = response.status.as_u16();
            format!("handshake refused:\nHTTP/1.1 {status} {reason}\n{body}")
        }
        Error::Io(e) => format!("connection failed: {e}"),
        e => e.to_string(),
    }
}

/// What the session loop was told to do at the end of input.
pub(crate) struct Plan {
    pub(crate) close: (CloseCode, String),
    pub(crate) timeout: Duration,
    pub(crate) ping_interval: Option<Duration>,
    /// Lines are binary payloads in this format, not text.
    pub(crate) binary: Option<super::output::BinaryFormat>,
}

/// Runs an open connection until it ends; returns the exit status.
pub(crate) async fn run(
    socket: Socket,
    plan: &Plan,
    mut lines: mpsc::Receiver<Input>,
    out: Arc<Output>,
) -> Exit {
    let (reader, mut writer) = socket.split();
    let mut receiving = tokio::spawn(receive(reader, out.clone()));
    let mut pings = plan
        .ping_interval
        .map(|every| tokio::time::interval_at(Instant::now() + every, every));
    // Set once our Close is sent (or sending failed): the wait for the server ends then.
    let mut deadline: Option<Instant> = None;
    let mut local_failure = false;
    let ended = loop {
        tokio::select! {
            ended = &mut receiving => break ended.ok(),
            input = lines.recv(), if deadline.is_none() => {
                local_failure |= matches!(input, Some(Input::Failed(_)));
                if send_input(input, &mut writer, plan, &out).await {
                    deadline = Some(Instant::now() + plan.timeout + BACKSTOP);
                }
            }
            _ = tick(&mut pings), if deadline.is_none() => {
                let _ = writer.send(Message::Ping(Bytes::new())).await;
            }
            () = sleep_until(deadline) => break None,
        }
    };
    let Some((reader, error)) = ended else {
        out.closed(None, Exit::Abnormal);
        return Exit::Abnormal;
    };
    let socket = reader.reunite(writer).ok();
    let closed = socket.as_ref().and_then(Socket::closed);
    let exit = Exit::of_end(error.as_ref(), closed);
    if let Some(error) = &error {
        out.error(&error.to_string());
    }
    out.closed(closed, exit);
    if local_failure && exit == Exit::Clean {
        Exit::Local
    } else {
        exit
    }
}

/// Sends what `input` asks for: a message, or our Close at the end of input. Returns whether
/// sending is over (the Close went out, or sending failed).
async fn send_input(
    input: Option<Input>,
    writer: &mut Writer<MaybeTlsStream>,
    plan: &Plan,
    out: &Output,
) -> bool {
    let message = match input {
        Some(Input::Line(line)) => match to_message(line, plan) {
            Ok(message) => message,
            Err(why) => {
                out.error(&why);
                return false;
            }
        },
        Some(Input::Skipped(why)) => {
            out.error(&why);
            return false;
        }
        Some(Input::Failed(why)) => {
            out.error(&why);
            close_message(plan)
        }
        Some(Input::End) | None => close_message(plan),
    };
    let closing = matches!(message, Message::Close(_));
    let sent = if closing {
        // A server that stops reading must not hold the close forever.
        let timed_out = || Err(Error::Io(std::io::ErrorKind::TimedOut.into()));
        tokio::time::timeout(plan.timeout, writer.send(message))
            .await
            .unwrap_or_else(|_| timed_out())
    } else {
        writer.send(message).await
    };
    if let Err(e) = &sent {
        out.error(&format!("sending: {e}"));
    }
    closing || sent.is_err()
}

/// Prints every received message; returns the reader and the error that ended it, if any.
async fn receive(
    mut reader: Reader<MaybeTlsStream>,
    out: Arc<Output>,
) -> (Reader<MaybeTlsStream>, Option<Error>) {
    let mut error = None;
    while let Some(item) = reader.recv().await {
        match item {
            Ok(message) => out.message(&message),
            Err(e) => error = Some(e),
        }
    }
    (reader, error)
}

fn to_message(line: String, plan: &Plan) -> Result<Message, String> {
    match plan.binary {
        None => Ok(Message::text(line)),
        Some(format) => format.decode(&line).map(Message::binary),
    }
}

fn close_message(plan: &Plan) -> Message {
    let (code, reason) = &plan.close;
    Message::Close(Some(herald::CloseFrame::new(*code, reason.as_str())))
}

async fn tick(pings: &mut Option<tokio::time::Interval>) {
    match pings {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
