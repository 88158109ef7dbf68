//! Where the broker's Redis is: one server, a Redis Cluster, or a master behind Sentinel, read
//! from the broker URL.
//!
//! - `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]` (or `rediss://`): one server.
//! - `redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]`: the seed nodes of a Redis
//!   Cluster (any reachable one will do; the client learns the rest from it).
//! - `redis+sentinel://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]`: the Sentinels
//!   watching the master named MASTER; USER, PASSWORD and DB are the master's.

use crate::error::Failure;
use crate::error::FailureKind;

/// A parsed broker URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server's URL, as written.
    Single(String),
    /// `redis://` URLs of the cluster's seed nodes.
    Cluster(Vec<String>),
    /// `redis://` URLs of the Sentinels, the master's name, and `redis://` settings
    /// (credentials and database) for the master, on a placeholder host.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        settings: String,
    },
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, Failure> {
        let bad = |why: &str| Failure::new(FailureKind::Unusable, format!("broker URL: {why}"));
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let (auth, hosts) = split_auth(rest);
            if hosts.contains('/') {
                return Err(bad("a cluster has no database or master name"));
            }
            return Ok(Self::Cluster(
                seeds(auth, hosts).ok_or_else(|| bad("no seed"))?,
            ));
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (auth, rest) = split_auth(rest);
            let (hosts, path) = rest.split_once('/').ok_or_else(|| bad("no master name"))?;
            let (master, db) = path.split_once('/').unwrap_or((path, ""));
            if master.is_empty() || (!db.is_empty() && db.parse::<u32>().is_err()) {
                return Err(bad("no master name, or a database that is not a number"));
            }
            let sentinels = seeds("", hosts).ok_or_else(|| bad("no sentinel"))?;
            let settings = match auth {
                "" => format!("redis://master/{db}"),
                auth => format!("redis://{auth}@master/{db}"),
            };
            return Ok(Self::Sentinel {
                sentinels,
                master: master.to_owned(),
                settings,
            });
        }
        Ok(Self::Single(url.to_owned()))
    }
}

/// `USER:PASSWORD@` (without the `@`) and the rest; the first part is empty when there is
/// none. The credentials end at the last `@` before any `/`.
fn split_auth(rest: &str) -> (&str, &str) {
    let authority = rest.find('/').unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => ("", rest),
    }
}

/// `HOST:PORT,HOST:PORT…` as `redis://` URLs carrying `auth`; `None` for an empty list or an
/// empty entry.
fn seeds(auth: &str, hosts: &str) -> Option<Vec<String>> {
    let urls: Vec<String> = hosts
        .split(',')
        .map(|host| match auth {
            "" => format!("redis://{host}"),
            auth => format!("redis://{auth}@{host}"),
        })
        .collect();
    (!hosts.split(',').any(str::is_empty)).then_some(urls)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_parse() {
        assert_eq!(
            Target::parse("redis://cache:6379/2").unwrap(),
            Target::Single("redis://cache:6379/2".into())
        );
        assert_eq!(
            Target::parse("redis+cluster://u:p@a:7000,b:7001").unwrap(),
            Target::Cluster(vec![
                "redis://u:p@a:7000".into(),
                "redis://u:p@b:7001".into()
            ])
        );
        assert_eq!(
            Target::parse("redis+sentinel://s1:26379,s2:26380/main/3").unwrap(),
            Target::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26380".into()],
                master: "main".into(),
                settings: "redis://master/3".into(),
            }
        );
        for bad in [
            "redis+cluster://",
            "redis+cluster://a:1,",
            "redis+cluster://a:1/0",
            "redis+sentinel://s:1",
            "redis+sentinel://s:1/",
            "redis+sentinel://s:1/m/x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
