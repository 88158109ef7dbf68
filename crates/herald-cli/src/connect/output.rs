//! What `herald connect` prints: received messages and events, as text or one JSON object a
//! line, to standard output or above the line editor's prompt.

use super::exit::Exit;
use super::input::Editor;
use base64::Engine as _;
use herald::handshake::{Accepted, ExtensionOffer};
use herald::{Closed, Initiator, Message};
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// How binary payloads are written as text, both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BinaryFormat {
    /// Lower-case hexadecimal.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

impl BinaryFormat {
    pub(crate) fn encode(self, data: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(data),
            Self::Base64 => base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    /// # Errors
    /// When `text` is not valid in this format.
    pub(crate) fn decode(self, text: &str) -> Result<Vec<u8>, String> {
        let text = text.trim();
        match self {
            Self::Hex => hex::decode(text).map_err(|e| format!("invalid hex: {e}")),
            Self::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("invalid base64: {e}")),
        }
    }
}

/// Where and how events are printed. Shared by the receiver and the input loop.
pub(crate) struct Output {
    json: bool,
    format: BinaryFormat,
    /// On a terminal: prefix received messages and report the connection's state.
    interactive: bool,
    editor: Mutex<Option<Editor>>,
}

impl Output {
    pub(crate) fn new(json: bool, format: BinaryFormat, interactive: bool) -> Self {
        Self {
            json,
            format,
            interactive,
            editor: Mutex::new(None),
        }
    }

    /// From now on, print above the line editor's prompt.
    pub(crate) fn set_editor(&self, editor: Option<Editor>) {
        *self.editor.lock().unwrap_or_else(|e| e.into_inner()) = editor;
    }

    /// Reports a connection that could not be opened; returns `exit`.
    pub(crate) fn failed(&self, exit: Exit, message: &str) -> Exit {
        self.error(message);
        if self.json && exit == Exit::Refused {
            // The status line and body belong on standard error whatever the format.
            eprintln!("herald connect: {message}");
        }
        exit
    }

    pub(crate) fn opened(&self, url: &str, accepted: &Accepted) {
        let extensions: Vec<String> = accepted.extensions.iter().map(extension).collect();
        if self.json {
            let protocol = accepted.subprotocol.as_deref();
            self.stdout(&JsonEvent::Open {
                protocol,
                extensions,
            });
        } else if self.interactive {
            let mut note = format!("connected to {url}");
            if let Some(protocol) = &accepted.subprotocol {
                note.push_str(&format!(", subprotocol {protocol}"));
            }
            if !extensions.is_empty() {
                note.push_str(&format!(", extensions {}", extensions.join(", ")));
            }
            self.note(&format!("{note} (Ctrl-D closes)"));
        }
    }

    pub(crate) fn message(&self, message: &Message) {
        let (kind, data) = match message {
            Message::Text(text) => ("text", text.as_str().to_owned()),
            Message::Binary(data) => ("binary", self.format.encode(data)),
            Message::Ping(data) if self.json => ("ping", self.format.encode(data)),
            Message::Pong(data) if self.json => ("pong", self.format.encode(data)),
            _ => return,
        };
        if self.json {
            let data = &data;
            self.stdout(&match kind {
                "ping" => JsonEvent::Ping { data },
                "pong" => JsonEvent::Pong { data },
                kind => JsonEvent::Message { kind, data },
            });
        } else if self.interactive {
            self.line(format!("< {data}"));
        } else {
            self.line(data);
        }
    }

    /// A problem that does not end the connection by itself, or the reason it ended.
    pub(crate) fn error(&self, message: &str) {
        if self.json {
            self.stdout(&JsonEvent::Error { message });
        } else {
            self.note(message);
        }
    }

    pub(crate) fn closed(&self, closed: Option<&Closed>, exit: Exit) {
        // The last words go straight out: the editor may never draw what it is handed now.
        let editor = self.editor.lock().unwrap_or_else(|e| e.into_inner()).take();
        if editor.is_some_and(|e| e.editing.load(Ordering::Relaxed)) {
            eprintln!(); // Leave the abandoned prompt's line.
        }
        let code = closed.map_or(1006, |c| c.code().as_u16());
        let reason = closed.map_or("", Closed::reason);
        if self.json {
            let initiator = closed.map(|c| match c.initiator {
                Initiator::Local => "client",
                Initiator::Remote => "server",
            });
            let clean = closed.is_some_and(Closed::is_clean);
            let exit = exit as u8;
            self.stdout(&JsonEvent::Close {
                code,
                reason,
                clean,
                initiator,
                exit,
            });
        } else if self.interactive || exit != Exit::Clean {
            let how = match exit {
                Exit::Abnormal => "connection lost",
                Exit::Protocol => "failed",
                Exit::ServerError => "closed by the server",
                _ => "closed",
            };
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(" {reason:?}")
            };
            self.note(&format!("{how}: code {code}{reason}"));
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a line as it is.
    pub(crate) fn print(&self, line: String) {
        self.line(line);
    }

    fn stdout(&self, event: &JsonEvent<'_>) {
        // Serialising these events cannot fail: every key is a string.
        self.line(serde_json::to_string(event).unwrap_or_default());
    }

    /// Writes one line: above the prompt on a terminal, else to standard output, flushed at
    /// once so that a reader of a pipe sees each message as it arrives.
    fn line(&self, mut line: String) {
        let mut editor = self.editor.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(editor) = editor.as_mut() {
            line.push('\n');
            let _ = editor.printer.print(line);
            return;
        }
        let mut stdout = std::io::stdout().lock();
        // A closed standard output (`| head`) is not worth failing the connection for.
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }

    /// A notice for people: above the prompt while the line editor runs, else on standard
    /// error.
    fn note(&self, note: &str) {
        let mut editor = self.editor.lock().unwrap_or_else(|e| e.into_inner());
        match editor.as_mut() {
            Some(editor) => {
                let _ = editor.printer.print(format!("herald connect: {note}\n"));
            }
            None => eprintln!("herald connect: {note}"),
        }
    }
}

/// One `--json` line; `event` comes first.
#[derive(serde::Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum JsonEvent<'a> {
    Open {
        protocol: Option<&'a str>,
        extensions: Vec<String>,
    },
    Message {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a str,
    },
    Ping {
        data: &'a str,
    },
    Pong {
        data: &'a str,
    },
    Error {
        message: &'a str,
    },
    Close {
        code: u16,
        reason: &'a str,
        clean: bool,
        initiator: Option<&'a str>,
        exit: u8,
    },
}

/// An accepted extension as its `Sec-WebSocket-Extensions` element.
fn extension(offer: &ExtensionOffer) -> String {
    let mut out = offer.name.clone();
    for (name, value) in &offer.params {
        match value {
            Some(value) => out.push_str(&format!("; {name}={value}")),
            None => out.push_str(&format!("; {name}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_formats_round_trip() {
        let data = [0u8, 1, 0xfe, 0xff, b'x'];
        for format in [BinaryFormat::Hex, BinaryFormat::Base64] {
            assert_eq!(format.decode(&format.encode(&data)), Ok(data.to_vec()));
        }
        assert_eq!(BinaryFormat::Hex.encode(&data), "0001feff78");
        assert_eq!(BinaryFormat::Base64.encode(&data), "AAH+/3g=");
        assert!(BinaryFormat::Hex.decode("0g").is_err());
    }

    #[test]
    fn extension_is_written_back_as_offered() {
        let offer = ExtensionOffer::parse("permessage-deflate; client_max_window_bits=10; x")
            .expect("valid element");
        assert_eq!(
            extension(&offer),
            "permessage-deflate; client_max_window_bits=10; x"
        );
    }
}
