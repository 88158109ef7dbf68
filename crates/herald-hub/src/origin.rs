//! The browser Origin policy (RFC 6455 §10.2): checked before the upgrade, refused with 403.

use crate::config::OriginConfig;
use wildmatch::WildMatch;

/// Which origins may connect.
#[derive(Debug)]
pub struct OriginPolicy {
    exact: Vec<String>,
    patterns: Vec<WildMatch>,
    host_patterns: Vec<WildMatch>,
    allow_same_host: bool,
    allow_missing: bool,
}

impl OriginPolicy {
    /// The policy `config` describes.
    pub fn new(config: &OriginConfig) -> Self {
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
        }
    }

    /// Whether a request with this Origin (and Host) may connect.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return self.allow_missing;
        };
        let origin = origin.trim().to_ascii_lowercase();
        // `null` (sandboxed frames, file:// pages) only passes when listed explicitly.
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        if self.allow_same_host
            && let (Some(authority), Some(host)) = (authority, host)
            && authority.eq_ignore_ascii_case(host)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], same_host: bool, missing: bool) -> OriginPolicy {
        OriginPolicy::new(&OriginConfig {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            allow_same_host: same_host,
            allow_missing: missing,
            public_hosts: Vec::new(),
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
}
