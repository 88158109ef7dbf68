//! Which broker a hub runs on, read once from the `broker` string.

use super::ConfigError;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// The `broker` setting: where offsets and history live and how nodes hear each other's
/// publications. In a file, flag or variable it is one string: `memory`, or a Redis URL.
///
/// Every string reads as some variant, so that [`HubConfig::validate`](super::HubConfig::validate)
/// can name a bad one with its key (`broker`) rather than the parser naming only the value;
/// [`Unsupported`](Self::Unsupported) is what it refuses. [`Hub::new`](crate::Hub::new) builds
/// only [`Memory`](Self::Memory); for [`Redis`](Self::Redis), connect the broker from the
/// herald-redis crate and pass it to [`Hub::with_broker`](crate::Hub::with_broker).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerConfig {
    /// `memory`: [`MemoryBroker`](crate::broker::MemoryBroker), one node. The default.
    #[default]
    Memory,
    /// `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`, or `rediss://…` for TLS: one Redis shared
    /// by every node; `redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]`: a Redis
    /// Cluster, by its seed nodes; `redis+sentinel://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]`:
    /// the master the Sentinels name MASTER. With the timings of the `[redis]` section
    /// ([`RedisConfig`](super::RedisConfig)).
    Redis {
        /// The URL as written (with its password, if it has one).
        url: String,
    },
    /// Any other string, kept as written; [`HubConfig::validate`](super::HubConfig::validate)
    /// refuses it with [`ConfigError::Broker`].
    Unsupported(String),
}

impl BrokerConfig {
    /// Reads the string form: `memory`, a `redis://`, `rediss://`, `redis+cluster://` or
    /// `redis+sentinel://` URL, or else
    /// [`Unsupported`](Self::Unsupported). Case matters (`Memory` is unsupported).
    pub fn parse(s: &str) -> Self {
        if s == "memory" {
            Self::Memory
        } else if [
            "redis://",
            "rediss://",
            "redis+cluster://",
            "redis+sentinel://",
        ]
        .iter()
        .any(|scheme| s.starts_with(scheme))
        {
            Self::Redis { url: s.to_owned() }
        } else {
            Self::Unsupported(s.to_owned())
        }
    }

    /// `memory`, or a Redis URL of the documented shape.
    ///
    /// # Errors
    /// [`ConfigError::Broker`] for [`Unsupported`](Self::Unsupported) and for a Redis URL
    /// without a host, or with a port or database that is not a number.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Memory => Ok(()),
            Self::Redis { url } if redis_url(url) => Ok(()),
            other => Err(ConfigError::Broker(other.to_string())),
        }
    }
}

impl fmt::Display for BrokerConfig {
    /// The string form, as a file writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Redis { url } => f.write_str(url),
            Self::Unsupported(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for BrokerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self::parse(&s))
    }
}

/// `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`, `rediss://` for TLS, or the cluster and
/// Sentinel forms: comma-separated `HOST:PORT`s (a port each), then for Sentinel `/MASTER`
/// and an optional `/DB`.
fn redis_url(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
        return !hosts.contains('/') && host_list(hosts);
    }
    if let Some(rest) = url.strip_prefix("redis+sentinel://") {
        let Some((authority, path)) = rest.split_once('/') else {
            return false;
        };
        let hosts = authority
            .rsplit_once('@')
            .map_or(authority, |(_, hosts)| hosts);
        let (master, db) = path.split_once('/').unwrap_or((path, ""));
        let db_ok = db.is_empty() || db.parse::<u32>().is_ok();
        return host_list(hosts) && !master.is_empty() && !master.contains('/') && db_ok;
    }
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

/// `HOST:PORT[,HOST:PORT…]`, each with a host and a numeric port.
fn host_list(hosts: &str) -> bool {
    hosts.split(',').all(|host| {
        host.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains('@') && port.parse::<u16>().is_ok()
        })
    })
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
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
            "redis+cluster://u:p@cache-1:7000",
            "redis+sentinel://s1:26379,s2:26379,s3:26379/main",
            "redis+sentinel://:secret@s1:26379/main/2",
        ] {
            assert!(BrokerConfig::parse(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Memory",
            "redis://",
            "redis://host:port",
            "http://cache",
            "redis://h/x",
            "redis+cluster://",
            "redis+cluster://h",
            "redis+cluster://h:1,",
            "redis+cluster://h:1/0",
            "redis+sentinel://s:1",
            "redis+sentinel://s:1/",
            "redis+sentinel://s:1/m/x",
        ] {
            let e = BrokerConfig::parse(bad).validate().unwrap_err();
            assert_eq!(e.key(), "broker", "{bad}");
        }
    }

    #[test]
    fn the_string_form_reads_back_as_written() {
        for s in ["memory", "rediss://u:p@cache:6380/1", "mongodb://db"] {
            assert_eq!(BrokerConfig::parse(s).to_string(), s);
        }
        assert_eq!(
            BrokerConfig::parse("redis://cache"),
            BrokerConfig::Redis {
                url: "redis://cache".into()
            }
        );
    }
}
