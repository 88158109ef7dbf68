//! The `herald` binary: `serve` runs the hub, `connect` is a command-line WebSocket client,
//! `bench` a load generator, `token` issues test tokens and `config check` validates a file.

mod bench;
mod connect;
mod logging;
mod reload;
mod serve;
mod settings;
mod token;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Herald: a WebSocket server, client and load generator.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub: WebSocket pub/sub, plain mode, the HTTP API; stops gracefully on SIGTERM.
    Serve(serve::Args),
    /// Check a configuration file, or print the default one.
    #[command(subcommand)]
    Config(settings::ConfigCommand),
    /// Sign an HS256 token for the hub (tests and development).
    Token(token::Args),
    /// Connect to a WebSocket server: stdin lines out, received messages to stdout.
    Connect(connect::Args),
    /// Generate load against a WebSocket server (echo, fanout, connections).
    Bench(bench::Args),
}

/// jemalloc: tokio's task cells and I/O registrations ask for 128-byte alignment, which the
/// system allocator pays for with padding on every connection and jemalloc's size classes
/// give for free (docs/performance.md, "Idle memory per connection").
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::main(args),
        Command::Config(command) => settings::config_main(command),
        Command::Token(args) => token::main(args),
        Command::Connect(args) => connect::main(args),
        Command::Bench(args) => bench::main(args),
    }
}
