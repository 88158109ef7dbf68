//! Standard input as lines: a line editor with history on a terminal, plain line reading
//! otherwise. Reading runs on its own thread, so received messages print while input waits;
//! a bounded channel keeps it from reading far ahead of the connection.

use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};
use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// The longest line read from a pipe (a message of 16 MiB, or twice that in hex).
const MAX_LINE: u64 = 32 << 20;

/// What the input thread hands over.
#[derive(Debug)]
pub(crate) enum Input {
    /// One line, without its line ending.
    Line(String),
    /// A line that was skipped, and why.
    Skipped(String),
    /// Reading failed; no more input.
    Failed(String),
    /// End of input (Ctrl-D or Ctrl-C on a terminal).
    End,
}

/// Prints above the prompt while the line editor runs.
pub(crate) type Printer = Box<dyn ExternalPrinter + Send>;

/// The line editor, as the output sees it.
pub(crate) struct Editor {
    pub(crate) printer: Printer,
    /// Whether it still waits for a line (its prompt is on screen).
    pub(crate) editing: Arc<AtomicBool>,
}

/// Standard input being read.
pub(crate) struct Stdin {
    /// The lines, then `End` or `Failed`.
    pub(crate) lines: mpsc::Receiver<Input>,
    /// How to print without breaking the prompt, on a terminal.
    pub(crate) editor: Option<Editor>,
    /// Puts the terminal back as it was, even if the editor is still waiting for a line.
    _terminal: Option<TerminalGuard>,
}

/// Starts reading: with the line editor when `interactive`, else line by line.
///
/// # Errors
/// When the line editor or the thread cannot start.
pub(crate) fn spawn(interactive: bool) -> anyhow::Result<Stdin> {
    let (tx, lines) = mpsc::channel(16);
    let thread = std::thread::Builder::new().name("stdin".into());
    if !interactive {
        thread.spawn(move || read_lines(&tx))?;
        return Ok(Stdin {
            lines,
            editor: None,
            _terminal: None,
        });
    }
    let saved = rustix::termios::tcgetattr(std::io::stdin()).ok();
    let mut editor = DefaultEditor::new()?;
    let printer = editor
        .create_external_printer()
        .ok()
        .map(|p| Box::new(p) as Printer);
    let editing = Arc::new(AtomicBool::new(true));
    let active = editing.clone();
    thread.spawn(move || {
        edit_lines(editor, &tx);
        active.store(false, Ordering::Relaxed);
    })?;
    Ok(Stdin {
        lines,
        editor: printer.map(|printer| Editor { printer, editing }),
        _terminal: saved.map(TerminalGuard),
    })
}

fn edit_lines(mut editor: DefaultEditor, tx: &mpsc::Sender<Input>) {
    let end = loop {
        match editor.readline("> ") {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                if tx.blocking_send(Input::Line(line)).is_err() {
                    return;
                }
            }
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => break Input::End,
            Err(e) => break Input::Failed(e.to_string()),
        }
    };
    let _ = tx.blocking_send(end);
}

fn read_lines(tx: &mpsc::Sender<Input>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = Vec::new();
    let mut number = 0u64;
    let end = loop {
        buf.clear();
        match (&mut stdin).take(MAX_LINE).read_until(b'\n', &mut buf) {
            Ok(0) => break Input::End,
            Ok(_) if buf.last() != Some(&b'\n') && buf.len() as u64 == MAX_LINE => {
                break Input::Failed(format!("line {} is over {MAX_LINE} bytes", number + 1));
            }
            Ok(_) => {
                number += 1;
                if tx.blocking_send(line(&mut buf, number)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Input::Failed(format!("reading standard input: {e}")),
        }
    };
    let _ = tx.blocking_send(end);
}

/// The line in `buf` without `\n` or `\r\n`.
fn line(buf: &mut Vec<u8>, number: u64) -> Input {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    match String::from_utf8(std::mem::take(buf)) {
        Ok(text) => Input::Line(text),
        Err(_) => Input::Skipped(format!("line {number} is not UTF-8; skipped")),
    }
}

/// The terminal settings from before the line editor started, restored on drop: the process
/// may end while the editor holds the terminal in raw mode (the server closed meanwhile).
struct TerminalGuard(rustix::termios::Termios);

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let now = rustix::termios::OptionalActions::Now;
        let _ = rustix::termios::tcsetattr(std::io::stdin(), now, &self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_removed() {
        for (raw, expected) in [("a\n", "a"), ("a\r\n", "a"), ("a", "a"), ("\n", "")] {
            let mut buf = raw.as_bytes().to_vec();
            assert!(matches!(line(&mut buf, 1), Input::Line(l) if l == expected));
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_skipped() {
        let mut buf = b"\xff\xfe\n".to_vec();
        assert!(matches!(line(&mut buf, 3), Input::Skipped(why) if why.contains("line 3")));
    }
}
