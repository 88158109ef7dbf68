//! Structured logs on stderr: human-readable text or one JSON object per line, filtered with
//! `RUST_LOG`-style directives.

use anyhow::anyhow;
use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

/// Logging options shared by the long-running subcommands.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Logging")]
#[group(skip)]
pub(crate) struct Args {
    /// Log line format: `text` for people, `json` for collectors (one object per line).
    #[arg(long, value_enum, env = "HERALD_LOG_FORMAT", default_value_t = Format::Text)]
    pub(crate) log_format: Format,
    /// Log filter: a level (`debug`) or RUST_LOG-style directives (`info,herald_hub=debug`).
    #[arg(
        long,
        env = "HERALD_LOG",
        default_value = "info",
        value_name = "FILTER",
        value_parser = filter
    )]
    pub(crate) log_level: String,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `2026-01-01T00:00:00Z  INFO herald_hub: message key=value`.
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{…},"target":…}`.
    Json,
}

fn filter(directives: &str) -> Result<String, String> {
    EnvFilter::try_new(directives)
        .map(|_| directives.to_owned())
        .map_err(|e| e.to_string())
}

/// Installs the global subscriber, writing to stderr.
///
/// # Errors
/// When the filter does not parse or a subscriber is already installed.
pub(crate) fn init(args: &Args) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log_level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match args.log_format {
        Format::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        Format::Json => builder.json().with_ansi(false).try_init(),
    };
    installed.map_err(|e| anyhow!("installing the logger: {e}"))
}
