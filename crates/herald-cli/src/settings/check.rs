//! Rules a configuration must follow that its types cannot express. Each names the key the
//! message is about, so the caller can point at the line (or flag, or variable) that set it.

use herald_hub::HubConfig;
use std::time::Duration;

/// One broken rule.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The dotted key to point at.
    pub(crate) key: &'static str,
    /// What is wrong, naming the key.
    pub(crate) message: String,
}

fn problem(key: &'static str, message: impl Into<String>) -> Result<(), Problem> {
    Err(Problem {
        key,
        message: message.into(),
    })
}

/// The first broken rule, in file order.
pub(crate) fn check(c: &HubConfig) -> Result<(), Problem> {
    broker(&c.broker)?;
    tls(c)?;
    non_zero("limits.max_connections", c.limits.max_connections)?;
    non_zero("limits.max_message_size", c.limits.max_message_size)?;
    non_zero("limits.queue_size", c.limits.queue_size)?;
    // A zero period would fire continuously (tokio's interval refuses it outright).
    non_zero_time("limits.handshake_timeout", c.limits.handshake_timeout)?;
    non_zero_time("heartbeat.interval", c.heartbeat.interval)?;
    non_zero_time("heartbeat.timeout", c.heartbeat.timeout)?;
    routes(c)
}

fn broker(broker: &str) -> Result<(), Problem> {
    if broker == "memory" || redis_url(broker) {
        return Ok(());
    }
    problem(
        "broker",
        format!(
            "broker `{broker}` is neither `memory` nor a redis://HOST[:PORT][/DB] or rediss:// URL"
        ),
    )
}

/// `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`, or `rediss://` for TLS.
fn redis_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
    else {
        return false;
    };
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        // [IPv6]:PORT
        Some(v6) => match v6.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => return false,
        },
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    let db_ok = db.is_empty() || db.parse::<u32>().is_ok();
    !host.is_empty() && port_ok && db_ok
}

fn tls(c: &HubConfig) -> Result<(), Problem> {
    match (&c.tls.cert, &c.tls.key) {
        (Some(_), None) => problem(
            "tls.cert",
            "tls.cert is set without tls.key: set both for https, or neither",
        ),
        (None, Some(_)) => problem(
            "tls.key",
            "tls.key is set without tls.cert: set both for https, or neither",
        ),
        _ => Ok(()),
    }
}

fn non_zero(key: &'static str, value: usize) -> Result<(), Problem> {
    if value == 0 {
        return problem(key, format!("{key} must be at least 1"));
    }
    Ok(())
}

fn non_zero_time(key: &'static str, value: Duration) -> Result<(), Problem> {
    if value.is_zero() {
        return problem(key, format!("{key} must be longer than 0s"));
    }
    Ok(())
}

fn routes(c: &HubConfig) -> Result<(), Problem> {
    let mut seen = std::collections::HashSet::new();
    for route in &c.plain.routes {
        let path = &route.path;
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return problem(
                "plain.routes",
                format!("plain.routes: path `{path}` must start with / and have no query"),
            );
        }
        if !seen.insert(path.as_str()) {
            return problem(
                "plain.routes",
                format!("plain.routes: path `{path}` is listed twice"),
            );
        }
        if route.params.iter().any(String::is_empty) {
            return problem(
                "plain.routes",
                format!("plain.routes: path `{path}` has an empty parameter name"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_is_memory_or_a_redis_url() {
        for ok in [
            "memory",
            "redis://127.0.0.1",
            "redis://cache:6379/2",
            "rediss://user:p%40ss@cache.internal:6380",
            "redis://[::1]:6379",
        ] {
            assert!(broker(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Memory",
            "redis://",
            "redis://host:port",
            "http://cache",
            "redis://h/x",
        ] {
            assert_eq!(broker(bad).unwrap_err().key, "broker", "{bad}");
        }
    }

    #[test]
    fn half_a_tls_pair_points_at_the_half_that_is_set() {
        let mut c = HubConfig::default();
        c.tls.key = Some("key.pem".into());
        assert_eq!(check(&c).unwrap_err().key, "tls.key");
        c.tls.cert = Some("cert.pem".into());
        assert!(check(&c).is_ok());
    }

    #[test]
    fn zero_limits_and_periods_that_would_stop_the_server_are_refused() {
        let mut c = HubConfig::default();
        c.heartbeat.interval = Duration::ZERO;
        assert_eq!(check(&c).unwrap_err().key, "heartbeat.interval");
        let mut c = HubConfig::default();
        c.limits.queue_size = 0;
        assert_eq!(check(&c).unwrap_err().key, "limits.queue_size");
    }

    #[test]
    fn default_config_passes() {
        assert_eq!(check(&HubConfig::default()), Ok(()));
    }
}
