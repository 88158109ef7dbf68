//! A progress bar on standard error while a run lasts; hidden when standard error is not a
//! terminal, so that logs and pipes get only the report.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::time::Duration;

/// How often a running mode refreshes the bar.
pub(crate) const REFRESH: Duration = Duration::from_millis(200);

/// A bar from 0 to a known length with a message after it.
#[derive(Clone, Debug)]
pub(crate) struct Progress(ProgressBar);

impl Progress {
    /// A bar of `len` steps, `unit` naming them (e.g. "connections", "s").
    pub(crate) fn new(len: u64, unit: &str) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = Self(ProgressBar::with_draw_target(Some(len), target));
        bar.style(unit);
        bar
    }

    fn style(&self, unit: &str) {
        let template = format!("{{elapsed:>4}} [{{bar:40}}] {{pos}}/{{len}} {unit} {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.0.set_style(style.progress_chars("=> "));
        }
    }

    /// Moves to `position` and shows `message`.
    pub(crate) fn set(&self, position: u64, message: String) {
        self.0.set_position(position);
        self.0.set_message(message);
    }

    /// Changes what the bar counts, from zero (e.g. from connecting to measuring).
    pub(crate) fn restart(&self, len: u64, unit: &str) {
        self.style(unit);
        self.0.set_length(len);
        self.0.set_position(0);
        self.0.set_message("");
        self.0.reset_elapsed();
    }

    /// Removes the bar before the report is printed.
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}
