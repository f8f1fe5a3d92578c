//! Per-client-IP token buckets, in two classes: clients inside the configured internal networks
//! get the internal rate and burst, everyone else the external ones. The limiter takes the time
//! as an argument, so its tests run on a clock they move by hand.
//!
//! The bucket table is bounded (`max_tracked_clients`). When it is full, buckets that have
//! refilled to their burst are dropped first (forgetting them changes nothing: a new client
//! starts full), then the stalest eighth of the rest, so eviction is amortised rather than a
//! scan per request. A client evicted while not full gets a fresh burst back; that is the price
//! of bounded memory under a flood of addresses.

use super::RateLimitConfig;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Mutex;
use tokio::time::Instant;

/// An IP network: an address and a prefix length. A bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// True if `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = prefix_mask_v4(self.prefix_len);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = prefix_mask_v6(self.prefix_len);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn prefix_mask_v4(prefix_len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0)
}

fn prefix_mask_v6(prefix_len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix_len)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| format!("{text:?}: not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            Some(prefix) => prefix.trim().parse::<u8>().ok().filter(|len| *len <= max),
            None => Some(max),
        }
        .ok_or_else(|| format!("{text:?}: prefix length must be 0..={max}"))?;
        let network = match network {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) & prefix_mask_v4(prefix_len))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(u128::from(ip) & prefix_mask_v6(prefix_len))),
        };
        Ok(Self { network, prefix_len })
    }
}

/// The client a request is from: the TCP peer, unless the peer is a trusted proxy, in which
/// case the nearest address in `X-Forwarded-For` that is not itself a trusted proxy (walking
/// from the right, the end the proxies append to), else `X-Real-IP`. A header that does not
/// parse is ignored, never trusted half-way.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted_proxies.iter().any(|trusted| trusted.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Option<Vec<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().ok())
        .collect::<Option<Vec<&str>>>()
        .and_then(|values| {
            values
                .iter()
                .flat_map(|value| value.split(','))
                .map(|hop| hop.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
                .collect()
        });
    if let Some(hops) = forwarded.filter(|hops| !hops.is_empty()) {
        return hops.iter().rev().find(|hop| !is_trusted(hop)).copied().unwrap_or(hops[0]);
    }
    headers
        .get("x-real-ip")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// Refused; a token will be back in this many whole seconds.
    Limited {
        /// `Retry-After`.
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Class {
    per_s: f64,
    burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    internal: bool,
}

impl Bucket {
    fn refill(&mut self, class: Class, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * class.per_s).min(class.burst);
        self.updated = now;
    }
}

/// Token buckets per client IP.
#[derive(Debug)]
pub struct RateLimiter {
    internal: Class,
    external: Class,
    internal_networks: Vec<Cidr>,
    max_tracked_clients: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter for `config` (its networks already checked by [`super::HttpConfig::validate`];
    /// one that does not parse is skipped here).
    pub fn new(config: &RateLimitConfig) -> Self {
        let internal_networks = config.internal_networks.iter().filter_map(|text| text.parse().ok()).collect();
        let class = |per_s: f64, burst: f64| Class { per_s: per_s.max(f64::MIN_POSITIVE), burst: burst.max(1.0) };
        Self {
            internal: class(config.internal_per_s, config.internal_burst),
            external: class(config.external_per_s, config.external_burst),
            internal_networks,
            max_tracked_clients: config.max_tracked_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// True if `ip` gets the internal class.
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal_networks.iter().any(|network| network.contains(ip))
    }

    /// Takes a token from `ip`'s bucket at `now`, or says how long until there is one.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Decision {
        let ip = ip.to_canonical();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !buckets.contains_key(&ip) && buckets.len() >= self.max_tracked_clients {
            self.evict(&mut buckets, now);
        }
        let internal = self.is_internal(ip);
        let class = if internal { self.internal } else { self.external };
        let bucket = buckets.entry(ip).or_insert(Bucket { tokens: class.burst, updated: now, internal });
        bucket.refill(class, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed
        } else {
            let wait_s = (1.0 - bucket.tokens) / class.per_s;
            Decision::Limited { retry_after_secs: (wait_s.ceil() as u64).max(1) }
        }
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    fn evict(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| {
            let class = if bucket.internal { self.internal } else { self.external };
            let mut refilled = *bucket;
            refilled.refill(class, now);
            refilled.tokens < class.burst
        });
        if buckets.len() < self.max_tracked_clients {
            return;
        }
        let mut by_age: Vec<(Instant, IpAddr)> = buckets.iter().map(|(ip, bucket)| (bucket.updated, *ip)).collect();
        let evict = (by_age.len() / 8).max(1);
        by_age.select_nth_unstable_by_key(evict - 1, |(updated, _)| *updated);
        for (_, ip) in &by_age[..evict] {
            buckets.remove(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::time::Duration;

    fn config(per_s: f64, burst: f64) -> RateLimitConfig {
        RateLimitConfig {
            internal_per_s: per_s * 10.0,
            internal_burst: burst * 10.0,
            external_per_s: per_s,
            external_burst: burst,
            ..RateLimitConfig::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_match_by_prefix_and_refuse_nonsense() {
        let net: Cidr = "10.1.2.3/8".parse().unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")), "an IPv4-mapped address is IPv4");
        let ula: Cidr = "fc00::/7".parse().unwrap();
        assert!(ula.contains(ip("fd12::1")) && !ula.contains(ip("fe80::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!("127.0.0.1".parse::<Cidr>().unwrap().contains(ip("127.0.0.1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(&config(2.0, 3.0));
        let start = Instant::now();
        let client = ip("203.0.113.9");
        for _ in 0..3 {
            assert_eq!(limiter.check(client, start), Decision::Allowed);
        }
        assert_eq!(limiter.check(client, start), Decision::Limited { retry_after_secs: 1 });
        // Half a second at 2/s is one token.
        assert_eq!(limiter.check(client, start + Duration::from_millis(500)), Decision::Allowed);
        assert!(matches!(limiter.check(client, start + Duration::from_millis(500)), Decision::Limited { .. }));
        // Another client has its own bucket.
        assert_eq!(limiter.check(ip("203.0.113.10"), start), Decision::Allowed);
    }

    #[test]
    fn retry_after_rounds_the_wait_up_to_whole_seconds() {
        let limiter = RateLimiter::new(&config(0.25, 1.0));
        let now = Instant::now();
        let client = ip("198.51.100.1");
        assert_eq!(limiter.check(client, now), Decision::Allowed);
        assert_eq!(limiter.check(client, now), Decision::Limited { retry_after_secs: 4 });
        assert_eq!(
            limiter.check(client, now + Duration::from_millis(1_100)),
            Decision::Limited { retry_after_secs: 3 }
        );
    }

    #[test]
    fn internal_clients_get_the_internal_class() {
        let limiter = RateLimiter::new(&config(1.0, 1.0));
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check(ip("192.168.1.5"), now), Decision::Allowed, "internal burst is 10");
        }
        assert!(matches!(limiter.check(ip("192.168.1.5"), now), Decision::Limited { .. }));
        assert!(limiter.is_internal(ip("::1")) && limiter.is_internal(ip("172.20.0.1")));
        assert!(!limiter.is_internal(ip("172.32.0.1")) && !limiter.is_internal(ip("8.8.8.8")));
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_addresses() {
        let limiter = RateLimiter::new(&RateLimitConfig { max_tracked_clients: 64, ..config(1.0, 5.0) });
        let now = Instant::now();
        for n in 0..10_000u32 {
            let client = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
            limiter.check(client, now + Duration::from_micros(u64::from(n)));
            assert!(limiter.tracked() <= 64);
        }
        // A client that used up its bucket recently is still remembered.
        let hot = ip("11.0.39.15");
        while limiter.check(hot, now + Duration::from_millis(20)) == Decision::Allowed {}
        assert!(matches!(limiter.check(hot, now + Duration::from_millis(20)), Decision::Limited { .. }));
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7, 10.0.0.3"));
        headers.insert("x-real-ip", HeaderValue::from_static("198.51.100.1"));
        let trusted = [proxy, ip("10.0.0.3")];
        assert_eq!(client_ip(ip("192.0.2.1"), &headers, &trusted), ip("192.0.2.1"), "untrusted peer: headers ignored");
        assert_eq!(client_ip(proxy, &headers, &trusted), ip("203.0.113.7"), "the first hop that is not a proxy");
        headers.remove("x-forwarded-for");
        assert_eq!(client_ip(proxy, &headers, &trusted), ip("198.51.100.1"), "X-Real-IP without X-Forwarded-For");
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        headers.remove("x-real-ip");
        assert_eq!(client_ip(proxy, &headers, &trusted), proxy, "an unparsable header is not trusted");
    }
}
