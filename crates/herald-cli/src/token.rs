//! `herald token`: signs an HS256 token for tests and development, with the claims the hub
//! reads (`sub`, `exp`, `channels`, `subscribe`, `publish`, `subs`).

use anyhow::{Context as _, bail};
use herald_hub::auth::{Claims, issue_hs256};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Options of `herald token`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// HS256 secret, the hub's `--jwt-secret`.
    #[arg(
        long,
        env = "HERALD_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    secret: String,
    /// User id (the `sub` claim).
    #[arg(long, value_name = "ID")]
    user: String,
    /// Channel patterns the user may subscribe and publish to (`*` any run of characters, `?`
    /// one); repeatable or comma-separated.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    channels: Vec<String>,
    /// Channel patterns for subscribe only; repeatable or comma-separated.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    subscribe: Vec<String>,
    /// Channel patterns for publish only; repeatable or comma-separated.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    publish: Vec<String>,
    /// Channels the server subscribes the connection to at connect (the `subs` claim):
    /// names, not patterns; repeatable or comma-separated.
    #[arg(long, value_name = "CHANNEL", value_delimiter = ',')]
    subs: Vec<String>,
    /// Lifetime: `exp` is now plus this (30s, 15m, 1h, 7d).
    #[arg(
        long,
        default_value = "1h",
        value_name = "DURATION",
        value_parser = humantime::parse_duration
    )]
    ttl: Duration,
}

/// Prints the token on stdout.
pub(crate) fn main(args: Args) -> ExitCode {
    match sign(args, SystemTime::now()) {
        Ok(token) => crate::settings::print(&format!("{token}\n")),
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn sign(args: Args, now: SystemTime) -> anyhow::Result<String> {
    if args.secret.is_empty() {
        bail!("--secret (or HERALD_JWT_SECRET) is empty");
    }
    if args.ttl.is_zero() {
        bail!("--ttl must be longer than 0s");
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let exp = now
        .checked_add(args.ttl)
        .context("--ttl is too long")?
        .as_secs();
    let claims = Claims {
        sub: args.user,
        exp,
        channels: patterns(args.channels),
        subscribe: patterns(args.subscribe),
        publish: patterns(args.publish),
        subs: patterns(args.subs),
    };
    issue_hs256(&args.secret, &claims).context("signing the token")
}

fn patterns(list: Vec<String>) -> Vec<String> {
    list.into_iter().filter(|p| !p.is_empty()).collect()
}
