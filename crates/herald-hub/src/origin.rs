//! The browser Origin policy (RFC 6455 §10.2): checked before the upgrade, refused with 403.
//!
//! The same-host rule lets the pages this server serves connect back to it. It compares the
//! Origin with the request's Host, which the browser takes from the page's URL, so it only
//! says "same server" when the Host itself names this server: a page on an attacker's domain
//! that resolves to us (DNS rebinding) carries the attacker's name in both headers. A Host is
//! trusted when it is one of `origins.public_hosts` or a loopback host.

use crate::config::OriginConfig;
use std::net::{Ipv4Addr, Ipv6Addr};
use wildmatch::WildMatch;

/// Which origins may connect.
#[derive(Debug)]
pub(crate) struct OriginPolicy {
    exact: Vec<String>,
    patterns: Vec<WildMatch>,
    host_patterns: Vec<WildMatch>,
    allow_same_host: bool,
    allow_missing: bool,
    public_hosts: Vec<PublicHost>,
}

/// One `origins.public_hosts` entry, lowercased.
#[derive(Debug)]
struct PublicHost {
    name: String,
    /// No port given: the host matches on any port.
    any_port: bool,
}

impl PublicHost {
    fn new(entry: &str) -> Self {
        let name = entry.trim().to_ascii_lowercase();
        let any_port = split_host(&name).is_some_and(|(_, port)| port.is_none());
        Self { name, any_port }
    }

    /// Whether a Host header (`host` its name without the port) is this entry.
    fn matches(&self, authority: &str, host: &str) -> bool {
        let wanted = if self.any_port { host } else { authority };
        self.name.eq_ignore_ascii_case(wanted)
    }
}

impl OriginPolicy {
    /// The policy `config` describes.
    pub(crate) fn new(config: &OriginConfig) -> Self {
        let mut exact = Vec::new();
        let mut patterns = Vec::new();
        let mut host_patterns = Vec::new();
        for entry in &config.allowed {
            let entry = entry.trim_end_matches('/').to_ascii_lowercase();
            match (entry.contains('*'), entry.contains("://")) {
                (false, _) => exact.push(entry),
                (true, true) => patterns.push(WildMatch::new(&entry)),
                (true, false) => host_patterns.push(WildMatch::new(&entry)),
            }
        }
        Self {
            exact,
            patterns,
            host_patterns,
            allow_same_host: config.allow_same_host,
            allow_missing: config.allow_missing,
            public_hosts: config
                .public_hosts
                .iter()
                .map(|h| PublicHost::new(h))
                .collect(),
        }
    }

    /// Whether a request with this Origin (and Host) may connect.
    pub(crate) fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return self.allow_missing;
        };
        let origin = origin.trim().to_ascii_lowercase();
        // `null` (sandboxed frames, file:// pages) only passes when listed explicitly.
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        if self.allow_same_host
            && let (Some(authority), Some(host)) = (authority, host)
            && authority.eq_ignore_ascii_case(host)
            && self.trusts_host(host)
        {
            return true;
        }
        if self.exact.contains(&origin) || self.patterns.iter().any(|p| p.matches(&origin)) {
            return true;
        }
        // Scheme-less patterns match the host, with or without a port.
        authority.is_some_and(|authority| {
            let host_only = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            self.host_patterns
                .iter()
                .any(|p| p.matches(authority) || p.matches(host_only))
        })
    }

    /// Whether a Host header names this server: a public host or a loopback one. Only then
    /// does an Origin equal to it prove the page came from here.
    fn trusts_host(&self, authority: &str) -> bool {
        let Some((host, _)) = split_host(authority) else {
            return false;
        };
        is_loopback(host) || self.public_hosts.iter().any(|p| p.matches(authority, host))
    }
}

/// `host[:port]` or `[v6]:port` split into the host (IPv6 with its brackets) and the port;
/// `None` when it is neither.
fn split_host(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(end);
        let port = if rest.is_empty() {
            None
        } else {
            Some(rest.strip_prefix(':')?)
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (!host.is_empty() && port_ok).then_some((host, port))
}

/// `localhost`, `127.0.0.0/8` or `[::1]`: names no one else can point at this server.
fn is_loopback(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], same_host: bool, missing: bool) -> OriginPolicy {
        with_public_hosts(allowed, same_host, missing, &[])
    }

    fn with_public_hosts(
        allowed: &[&str],
        same_host: bool,
        missing: bool,
        public_hosts: &[&str],
    ) -> OriginPolicy {
        OriginPolicy::new(&OriginConfig {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            allow_same_host: same_host,
            allow_missing: missing,
            public_hosts: public_hosts.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let p = policy(&["https://app.example.com"], false, false);
        assert!(p.allows(Some("https://app.example.com"), None));
        assert!(p.allows(Some("HTTPS://APP.example.com"), None));
        assert!(!p.allows(Some("http://app.example.com"), None));
        assert!(!p.allows(Some("https://app.example.com:8443"), None));
        assert!(!p.allows(Some("https://evil.com"), None));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let p = policy(&["*.example.com"], false, false);
        assert!(p.allows(Some("https://chat.example.com"), None));
        assert!(p.allows(Some("http://a.b.example.com:3000"), None));
        assert!(!p.allows(Some("https://example.com"), None));
        assert!(!p.allows(Some("https://example.com.evil.io"), None));
        assert!(!p.allows(Some("https://evilexample.com"), None));
        let p = policy(&["https://*.example.com"], false, false);
        assert!(p.allows(Some("https://chat.example.com"), None));
        assert!(!p.allows(Some("http://chat.example.com"), None));
    }

    #[test]
    fn same_host_and_missing_origin_follow_their_switches() {
        let p = policy(&[], true, false);
        assert!(p.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
        assert!(!p.allows(None, Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("null"), Some("127.0.0.1:8080")));
        let p = policy(&[], false, true);
        assert!(p.allows(None, None));
        assert!(!p.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
    }

    mod same_host_and_dns_rebinding {
        //! RFC 6455 §10.2: the Origin is only worth checking against a Host that names us.
        use super::*;

        #[test]
        fn a_name_that_is_not_a_public_host_is_not_same_host_even_when_origin_matches() {
            let p = policy(&[], true, false);
            assert!(!p.allows(Some("http://evil.example"), Some("evil.example")));
            assert!(!p.allows(Some("http://evil.example:8080"), Some("evil.example:8080")));
            assert!(!p.allows(Some("http://192.168.1.5:8080"), Some("192.168.1.5:8080")));
            assert!(!p.allows(
                Some("http://localhost.evil.example"),
                Some("localhost.evil.example")
            ));
        }

        #[test]
        fn loopback_hosts_are_trusted_on_any_port() {
            let p = policy(&[], true, false);
            for host in [
                "localhost",
                "LOCALHOST:3000",
                "127.0.0.1",
                "127.0.0.1:8080",
                "127.8.9.10:1",
                "[::1]",
                "[::1]:8080",
            ] {
                let origin = format!("http://{host}");
                assert!(p.allows(Some(&origin), Some(host)), "{host}");
            }
            assert!(!p.allows(Some("http://[::2]:80"), Some("[::2]:80")));
            assert!(!p.allows(Some("http://128.0.0.1"), Some("128.0.0.1")));
        }

        #[test]
        fn public_hosts_match_case_insensitively_with_or_without_a_port() {
            let p = with_public_hosts(
                &[],
                true,
                false,
                &["Chat.Example.com", "api.example.com:8443"],
            );
            assert!(p.allows(Some("https://chat.example.com"), Some("chat.example.com")));
            assert!(p.allows(
                Some("https://CHAT.example.com:444"),
                Some("chat.EXAMPLE.com:444")
            ));
            assert!(p.allows(
                Some("https://api.example.com:8443"),
                Some("api.example.com:8443")
            ));
            assert!(!p.allows(Some("https://api.example.com"), Some("api.example.com")));
            assert!(!p.allows(
                Some("https://api.example.com:9000"),
                Some("api.example.com:9000")
            ));
            assert!(!p.allows(Some("https://evil.example"), Some("evil.example")));
            assert!(!p.allows(
                Some("https://chat.example.com.evil.example"),
                Some("chat.example.com.evil.example")
            ));
        }

        #[test]
        fn a_trusted_host_still_needs_an_origin_equal_to_it() {
            let p = with_public_hosts(&[], true, false, &["chat.example.com"]);
            assert!(!p.allows(Some("https://evil.example"), Some("chat.example.com")));
            assert!(!p.allows(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
            let off = with_public_hosts(&[], false, false, &["chat.example.com"]);
            assert!(!off.allows(Some("https://chat.example.com"), Some("chat.example.com")));
        }

        #[test]
        fn malformed_hosts_are_not_trusted() {
            for host in [
                "",
                ":80",
                "127.0.0.1:",
                "127.0.0.1:x",
                "[::1",
                "[::1]x",
                "::1",
                "a:1:2",
            ] {
                let origin = format!("http://{host}");
                assert!(
                    !policy(&[], true, false).allows(Some(&origin), Some(host)),
                    "{host}"
                );
            }
        }
    }
}
