//! SIGHUP: reread the configuration file and hand the hub what may change while it runs
//! ([`herald_hub::reload`]). The file, the `HERALD_*` variables and the flags given at start
//! are merged and checked in full as at start; a file that does not parse or breaks a rule is
//! refused with its first error and nothing changes. Otherwise the log names every key that
//! changed: those the hub applied, and those that need a restart (the listener, the broker,
//! TLS, hooks, …), which keep their running values.

use crate::settings::{self, ConfigFile, HubFlags, SETTINGS};
use herald_hub::reload::reloadable;
use herald_hub::{Hub, HubConfig};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

/// Reloads on every SIGHUP until the process ends. Installed before the hub announces its
/// address, so a SIGHUP sent by whoever reads that line is a reload, not the default exit.
pub(crate) fn on_sighup(
    hub: Arc<Hub>,
    file: Option<PathBuf>,
    flags: HubFlags,
) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload(&hub, file.as_ref(), &flags);
        }
    });
    Ok(())
}

fn reload(hub: &Hub, file: Option<&PathBuf>, flags: &HubFlags) {
    let Some(path) = file else {
        hub.reload_refused(&"SIGHUP without a configuration file (start with --config)");
        return;
    };
    let new = match ConfigFile::read(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            settings::resolve(Some(&f), flags, &settings::process_env).map_err(|e| e.to_string())
        }) {
        Ok(effective) => effective.config,
        Err(e) => return hub.reload_refused(&e),
    };
    let changed = changed_keys(&hub.running_config(), &new);
    let (applied, ignored): (Vec<&str>, Vec<&str>) =
        changed.iter().copied().partition(|k| reloadable(k));
    if !ignored.is_empty() {
        tracing::warn!(
            ignored = ignored.join(","),
            "configuration reload: these settings need a restart and keep their running values"
        );
    }
    if applied.is_empty() {
        hub.reload_unchanged();
        tracing::info!(file = %path.display(), "configuration reloaded: nothing to apply");
        return;
    }
    if hub.reload(&new).is_ok() {
        tracing::info!(
            file = %path.display(),
            applied = applied.join(","),
            "configuration reloaded"
        );
    }
    // A refusal is counted and logged by the hub.
}

/// The keys whose values differ between `old` and `new`: every row of the settings table,
/// and the tables it does not hold (`namespaces`, `pusher.apps`) as wholes.
fn changed_keys(old: &HubConfig, new: &HubConfig) -> Vec<&'static str> {
    let mut changed: Vec<&'static str> = SETTINGS
        .iter()
        .filter(|s| (s.get)(old) != (s.get)(new))
        .map(|s| s.key)
        .collect();
    if format!("{:?}", old.namespaces) != format!("{:?}", new.namespaces) {
        changed.push("namespaces");
    }
    if format!("{:?}", old.pusher.apps) != format!("{:?}", new.pusher.apps) {
        changed.push("pusher.apps");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_by_their_keys() {
        let old = HubConfig::default();
        let mut new = HubConfig::default();
        assert!(changed_keys(&old, &new).is_empty());
        new.origins.allowed = vec!["https://a.example".into()];
        new.limits.max_connections = 9;
        new.namespaces.insert("chat".into(), Default::default());
        let keys = changed_keys(&old, &new);
        assert_eq!(
            keys,
            ["origins.allowed", "limits.max_connections", "namespaces"]
        );
        assert!(reloadable(keys[0]) && reloadable(keys[2]));
        assert!(!reloadable(keys[1]));
    }
}
