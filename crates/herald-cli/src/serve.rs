//! `herald serve`: runs the hub until SIGINT or SIGTERM, then shuts down gracefully (every
//! WebSocket closed with 1001, bounded by `shutdown_timeout`) and exits 0. SIGHUP rereads
//! the configuration file (`reload.rs`).

use crate::logging;
use crate::settings::{self, ConfigFile, HubFlags};
use anyhow::Context as _;
use herald_hub::{BrokerConfig, Hub, HubConfig};
use herald_redis::RedisOptions;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// Options of `herald serve`. Every hub setting has a flag and a `HERALD_*` variable; flags
/// win over variables, variables over the file, the file over defaults.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// TOML configuration file (`herald config default` prints one with every key).
    #[arg(short, long, env = "HERALD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (defaults, file, variables and flags merged, with
    /// each value's source) as TOML and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    log: logging::Args,
    #[command(flatten)]
    hub: HubFlags,
}

/// Runs `herald serve`.
pub(crate) fn main(args: Args) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = args.config.as_deref().map(ConfigFile::read).transpose()?;
    let effective = settings::resolve(file.as_ref(), &args.hub, &settings::process_env)?;
    if args.print_config {
        return Ok(settings::print(&settings::effective_file(&effective)));
    }
    logging::init(&args.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("herald")
        .build()
        .context("starting the tokio runtime")?;
    let reload = Reload {
        file: args.config,
        flags: args.hub,
    };
    let served = runtime.block_on(serve(effective.config, reload));
    // `run` has closed every connection by now; do not wait for stragglers (a blocked
    // resolver thread, say) beyond a moment.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served.map(|()| ExitCode::SUCCESS)
}

/// What a SIGHUP rereads: the file given at start, with the flags given at start.
struct Reload {
    file: Option<PathBuf>,
    flags: HubFlags,
}

async fn serve(config: HubConfig, reload: Reload) -> anyhow::Result<()> {
    let tls = config.tls.cert.is_some() && config.tls.key.is_some();
    let listen = config.listen;
    let broker = redact(&config.broker.to_string());
    tracing::info!(%listen, %broker, tls, "starting the hub");
    warn_if_exposed(&config);
    let hub = hub(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // Handlers are installed before the address is announced, so a signal sent by whoever
    // reads that line is always a graceful shutdown.
    let shutdown = shutdown_signal().context("installing signal handlers")?;
    crate::reload::on_sighup(hub.clone(), reload.file, reload.flags)
        .context("installing the SIGHUP handler")?;
    let scheme = if tls { "https" } else { "http" };
    tracing::info!(address = %local, "listening");
    eprintln!("herald: listening on {scheme}://{local}");
    herald_hub::run(listener, hub, shutdown)
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// One warning per setting that leaves a server reachable from other machines open or
/// unusable. Loopback addresses get none: only this machine can connect there.
fn warn_if_exposed(config: &HubConfig) {
    let listen = config.listen;
    if listen.ip().is_loopback() {
        return;
    }
    if config.auth.anonymous_may_publish() {
        let patterns = config.auth.anonymous_publish_patterns().join(",");
        tracing::warn!(
            %listen,
            patterns,
            "anyone who reaches this address may publish without a token; configure a key \
             (auth.hs256_secret, auth.rs256_public_key, auth.es256_public_key) or narrow \
             auth.anonymous_publish"
        );
    }
    if config.api.key.is_none() {
        tracing::warn!(
            %listen,
            "no api.key: the HTTP API refuses every backend request with 403"
        );
    }
    let origins = &config.origins;
    if origins.allow_same_host && origins.public_hosts.is_empty() && origins.allowed.is_empty() {
        tracing::warn!(
            %listen,
            "no origins.public_hosts: browsers opening this server's pages by a name or a \
             non-loopback address get 403 (the same-host rule trusts loopback Hosts only)"
        );
    }
}

/// The hub on the configured broker: in memory, or Redis for `redis://`, `rediss://`,
/// `redis+cluster://` and `redis+sentinel://` URLs (several nodes on one Redis, one Redis
/// Cluster or one Sentinel-watched master share channels, history and presence).
async fn hub(config: HubConfig) -> anyhow::Result<Arc<Hub>> {
    let BrokerConfig::Redis { url } = &config.broker else {
        return Hub::new(config).context("starting the hub");
    };
    let options = RedisOptions::from(&config.redis);
    // An unreachable Redis is waited for (degraded meanwhile); a malformed URL is an error.
    let broker = herald_redis::connect_or_wait(url, config.history, options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    Hub::with_broker(config, broker).context("starting the hub")
}

/// Completes on the first SIGTERM or SIGINT. A second one exits at once, without waiting for
/// connections to close.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            "shutting down: closing connections with 1001"
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: exiting without waiting for connections");
            std::process::exit(130);
        });
    })
}

/// The broker URL without its password, for logs.
fn redact(broker: &str) -> String {
    let Some((scheme, rest)) = broker.split_once("://") else {
        return broker.to_owned();
    };
    let authority = rest.find('/').unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => broker.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn broker_credentials_stay_out_of_logs() {
        assert_eq!(redact("memory"), "memory");
        assert_eq!(redact("redis://cache:6379/1"), "redis://cache:6379/1");
        assert_eq!(
            redact("rediss://u:secret@cache:6380/2"),
            "rediss://***@cache:6380/2"
        );
        assert_eq!(redact("redis://:secret@cache"), "redis://***@cache");
        assert_eq!(
            redact("redis+sentinel://:secret@s1:26379,s2:26379/main"),
            "redis+sentinel://***@s1:26379,s2:26379/main"
        );
    }
}
