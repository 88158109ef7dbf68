//! The rules a configuration must follow that its types cannot express. They are herald-hub's
//! ([`HubConfig::validate`], which `Hub::new` applies too); here each broken rule becomes the
//! key it is about, so the caller can point at the line (or flag, or variable) that set it.

use herald_hub::HubConfig;

/// One broken rule.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The dotted key to point at.
    pub(crate) key: String,
    /// What is wrong, naming the key.
    pub(crate) message: String,
}

/// The first broken rule, in file order.
pub(crate) fn check(c: &HubConfig) -> Result<(), Problem> {
    c.validate().map_err(|e| Problem {
        key: e.location(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_hub::BrokerConfig;
    use std::time::Duration;

    fn broker(broker: &str) -> Result<(), Problem> {
        let c = HubConfig {
            broker: BrokerConfig::parse(broker),
            ..HubConfig::default()
        };
        check(&c)
    }

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
