//! Connection counts per client address, and the token buckets that meter a connection's
//! publishes and commands and a channel's join/leave pushes.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The address a per-IP limit counts a connection under.
///
/// An IPv4 address counts as itself. An IPv6 address counts as its /64: one subscriber line
/// or host usually owns a whole /64, so counting single addresses would let one client open
/// 2^64 "different" ones. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from a dual-stack
/// listener) counts as its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IpKey(IpAddr);

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = v6.to_bits() & (u128::MAX << 64);
                Self(IpAddr::V6(Ipv6Addr::from_bits(prefix)))
            }
        }
    }
}

impl fmt::Display for IpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Open connections (HTTP and WebSocket) per client address ([`IpKey`]).
///
/// Counts live only while connections do: the map holds at most one entry per open
/// connection, so it is bounded by `limits.max_connections`.
#[derive(Debug, Default)]
pub(crate) struct PerIp {
    limit: usize,
    counts: Mutex<HashMap<IpKey, usize>>,
}

/// A slot held by one connection; released on drop.
#[derive(Debug)]
pub(crate) struct IpSlot {
    owner: Arc<PerIp>,
    key: IpKey,
}

impl PerIp {
    /// At most `limit` connections per address (0: no limit).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `ip`'s [`IpKey`], or `None` when that key is at its limit.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = IpKey::from(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        if self.limit > 0 && *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            owner: self.clone(),
            key,
        })
    }

    /// Open connections counted under `ip`'s key.
    #[cfg(test)]
    pub(crate) fn count(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&IpKey::from(ip)).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What the rate limiter says about one publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rate {
    /// Within the rate.
    Allowed,
    /// Over it: refuse this publish.
    Refused,
    /// Refused again and again (another whole burst): close the connection with 1008.
    Abusive,
}

/// A token bucket: `rate` per second sustained, `burst` at once. (Every connection holds two:
/// the rate and burst are kept as the integers they are configured as, 40 bytes a bucket.)
#[derive(Debug)]
pub(crate) struct RateLimiter {
    tokens: f64,
    last: Instant,
    rate: u32,
    burst: u32,
    refused: u32,
}

impl RateLimiter {
    /// A full bucket. `rate == 0` allows everything.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let burst = burst.max(1);
        Self {
            tokens: f64::from(burst),
            last: Instant::now(),
            rate,
            burst,
            refused: 0,
        }
    }

    /// Whether the refusals since the last allowed publish exceed a whole burst.
    pub(crate) fn refused_too_often(&self) -> bool {
        self.refused > self.burst
    }

    /// Accounts one publish at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Rate {
        self.spend(now, 1.0)
    }

    /// Accounts an operation costing `cost` units at `now`: allowed while the bucket holds
    /// at least one unit, even if `cost` takes it below zero (a debt the rate pays back before
    /// the next operation is allowed).
    pub(crate) fn spend(&mut self, now: Instant, cost: f64) -> Rate {
        if self.rate == 0 {
            return Rate::Allowed;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.rate)).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.charge(cost);
            self.refused = 0;
            return Rate::Allowed;
        }
        self.refused = self.refused.saturating_add(1);
        if self.refused > self.burst {
            Rate::Abusive
        } else {
            Rate::Refused
        }
    }

    /// Adds `cost` units to what the last allowed operation cost (e.g. the size of its reply,
    /// known only afterwards). The debt is capped at one burst.
    pub(crate) fn charge(&mut self, cost: f64) {
        if self.rate != 0 {
            self.tokens = (self.tokens - cost).max(-f64::from(self.burst));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_counts_per_address() {
        assert_eq!(IpKey::from(ip("192.0.2.1")), IpKey::from(ip("192.0.2.1")));
        assert_ne!(IpKey::from(ip("192.0.2.1")), IpKey::from(ip("192.0.2.2")));
        assert_eq!(IpKey::from(ip("192.0.2.1")).to_string(), "192.0.2.1");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a = IpKey::from(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
        assert_eq!(a, IpKey::from(ip("2001:db8:1:2::1")));
        assert_eq!(a, IpKey::from(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(a, IpKey::from(ip("2001:db8:1:3::1")));
        assert_ne!(a, IpKey::from(ip("2001:db9:1:2::1")));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_its_ipv4() {
        let mapped = IpKey::from(ip("::ffff:192.0.2.1"));
        assert_eq!(mapped, IpKey::from(ip("192.0.2.1")));
        assert_ne!(mapped, IpKey::from(ip("::ffff:192.0.2.2")));
        assert_eq!(mapped.to_string(), "192.0.2.1");
        // Not a mapped address: an ordinary IPv6 /64 (`::/64`).
        assert_ne!(IpKey::from(ip("::192.0.2.1")), IpKey::from(ip("192.0.2.1")));
    }

    #[test]
    fn one_64_shares_one_limit_and_mapped_shares_with_ipv4() {
        let per_ip = PerIp::new(1);
        let _a = per_ip.acquire(ip("2001:db8::1")).unwrap();
        assert!(per_ip.acquire(ip("2001:db8::2")).is_none());
        assert!(per_ip.acquire(ip("2001:db8:0:1::1")).is_some());
        let _v4 = per_ip.acquire(ip("192.0.2.7")).unwrap();
        assert!(per_ip.acquire(ip("::ffff:192.0.2.7")).is_none());
        assert_eq!(per_ip.count(ip("2001:db8::ffff")), 1);
    }

    #[test]
    fn no_limit_still_releases_its_counts() {
        let per_ip = PerIp::new(0);
        let slots: Vec<_> = (0..100)
            .map(|_| per_ip.acquire(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(per_ip.count(ip("192.0.2.1")), 100);
        drop(slots);
        assert_eq!(per_ip.count(ip("192.0.2.1")), 0);
        assert!(per_ip.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn per_ip_slots_are_counted_and_released() {
        let per_ip = PerIp::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = per_ip.acquire(ip).unwrap();
        let _b = per_ip.acquire(ip).unwrap();
        assert!(per_ip.acquire(ip).is_none());
        assert!(per_ip.acquire([127, 0, 0, 2].into()).is_some());
        drop(a);
        assert!(per_ip.acquire(ip).is_some());
    }

    #[test]
    fn burst_then_refusals_then_abuse_then_refill() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check(start), Rate::Allowed);
        }
        for _ in 0..3 {
            assert_eq!(limiter.check(start), Rate::Refused);
        }
        assert_eq!(limiter.check(start), Rate::Abusive);
        assert_eq!(
            limiter.check(start + Duration::from_millis(150)),
            Rate::Allowed
        );
    }

    #[test]
    fn a_costly_operation_is_allowed_then_paid_back_before_the_next() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 5);
        assert_eq!(limiter.spend(start, 1.0), Rate::Allowed);
        limiter.charge(13.0);
        // 4 - 13 = -9 is capped at one burst of debt (-5): 0.6 s of refill to reach 1 again.
        assert_eq!(limiter.spend(start, 1.0), Rate::Refused);
        let later = start + Duration::from_millis(550);
        assert_eq!(limiter.spend(later, 1.0), Rate::Refused);
        assert_eq!(
            limiter.spend(later + Duration::from_millis(100), 1.0),
            Rate::Allowed
        );
    }

    #[test]
    fn rate_zero_allows_everything_and_charges_nothing() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(0, 1);
        limiter.charge(1e9);
        for _ in 0..1000 {
            assert_eq!(limiter.spend(start, 100.0), Rate::Allowed);
        }
    }
}
