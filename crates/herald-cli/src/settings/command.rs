//! `herald config`: check a configuration file, or print the default one.

use super::ConfigFile;
use super::render::default_file;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `herald config` does.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a file exactly as `herald serve --config` reads it: syntax, types, unknown keys,
    /// and the rules between keys. Prints `FILE: ok`, or `FILE:LINE:COL: message` and exits 1.
    Check {
        /// The TOML file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a configuration file with every key at its default, each with a comment.
    Default,
}

/// Runs a `herald config` subcommand.
pub(crate) fn main(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Check { file } => match ConfigFile::read(&file).and_then(|f| f.check()) {
            Ok(()) => print(&format!("{}: ok\n", file.display())),
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        ConfigCommand::Default => print(&default_file()),
    }
}

/// Writes `text` to stdout; a closed pipe is a failure, not a panic.
pub(crate) fn print(text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
