//! The Redis broker's timings.

use herald_hub::config::RedisConfig;
use std::time::Duration;

/// How long the Redis broker waits, and how often it checks and refreshes. Every field has a
/// default ([`RedisOptions::default`], the defaults of the hub's `[redis]` section,
/// [`RedisConfig`]); change fields on a default value, or convert a configuration's section
/// with `RedisOptions::from(&config.redis)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// How long one operation (publish, history, presence, SUBSCRIBE, a health check) may
    /// take. Past it a read fails as unavailable (reply 109), a publish as outcome unknown
    /// (reply 111: it may have been stored), and health turns degraded until Redis answers
    /// again. Bounds how long a stalled Redis holds a client's command. Default 3 s.
    pub op_timeout: Duration,
    /// How long opening a connection may take. Default 2 s.
    pub connect_timeout: Duration,
    /// The longest wait between attempts to reconnect the command connection. Default 2 s.
    pub max_reconnect_delay: Duration,
    /// How often the node PINGs Redis to know its health. Default 1 s.
    pub check_every: Duration,
    /// How long a member stays listed without a refresh from its node: a crashed node's
    /// members disappear after it. Default 30 s.
    pub member_lifetime: Duration,
    /// How often a node refreshes (and re-adds, if Redis lost them) the members it holds;
    /// keep it well under `member_lifetime`. Default 10 s.
    pub refresh_every: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self::from(&RedisConfig::default())
    }
}

impl From<&RedisConfig> for RedisOptions {
    /// The `[redis]` section of a hub configuration, field by field.
    fn from(config: &RedisConfig) -> Self {
        Self {
            op_timeout: config.op_timeout,
            connect_timeout: config.connect_timeout,
            max_reconnect_delay: config.max_reconnect_delay,
            check_every: config.check_every,
            member_lifetime: config.member_lifetime,
            refresh_every: config.refresh_every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_hub_sections_defaults() {
        let options = RedisOptions::default();
        assert_eq!(options.op_timeout, Duration::from_secs(3));
        assert_eq!(options.member_lifetime, Duration::from_secs(30));
        assert_eq!(options.refresh_every, Duration::from_secs(10));
    }
}
