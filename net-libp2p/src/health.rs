//! Peer health, sans-IO: what we know about each peer (addresses, when we last saw it, how
//! often talking to it worked) and whether it is worth dialling. Time comes in as an explicit
//! `now_ms`, so the rules are tested without a clock.
//!
//! Rule: a peer is healthy if it has had fewer than `min_attempts_for_rate` attempts (too few
//! to judge), or if it was seen within `healthy_if_seen_within_ms` (a connected peer counts as
//! seen now) and its success rate is above `min_success_rate`.

use libp2p::{Multiaddr, PeerId};
use std::collections::BTreeMap;

/// Once a peer's attempts reach this, both counters are halved: the rate follows recent
/// behaviour, and a peer that failed while restarting recovers after a few good answers.
const ATTEMPTS_DECAY_AT: u32 = 64;

/// The thresholds of the health rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HealthPolicy {
    pub(crate) healthy_if_seen_within_ms: u64,
    pub(crate) min_success_rate: f64,
    pub(crate) min_attempts_for_rate: u32,
}

/// What we know about one peer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PeerRecord {
    /// Known addresses, oldest first, at most the table's `max_addrs_per_peer`.
    pub(crate) addrs: Vec<Multiaddr>,
    /// Open connections.
    pub(crate) connections: u32,
    /// When the peer last showed a sign of life.
    pub(crate) last_seen_ms: Option<u64>,
    /// Dials and requests tried (decayed, see [`ATTEMPTS_DECAY_AT`]).
    pub(crate) attempts: u32,
    /// Of those, the ones that worked.
    pub(crate) successes: u32,
}

impl PeerRecord {
    /// Successes over attempts; 1.0 before any attempt (nothing speaks against the peer).
    pub(crate) fn success_rate(&self) -> f64 {
        if self.attempts == 0 {
            1.0
        } else {
            f64::from(self.successes) / f64::from(self.attempts)
        }
    }

    /// Milliseconds since the peer was last seen; 0 while connected.
    pub(crate) fn seen_ms_ago(&self, now_ms: u64) -> Option<u64> {
        if self.connections > 0 {
            return Some(0);
        }
        self.last_seen_ms.map(|seen| now_ms.saturating_sub(seen))
    }

    /// The health rule (see the module doc).
    pub(crate) fn is_healthy(&self, now_ms: u64, policy: &HealthPolicy) -> bool {
        if self.attempts < policy.min_attempts_for_rate {
            return true;
        }
        let fresh = self.seen_ms_ago(now_ms).is_some_and(|ago| ago <= policy.healthy_if_seen_within_ms);
        fresh && self.success_rate() > policy.min_success_rate
    }

    fn record_attempt(&mut self, success: bool) {
        if self.attempts >= ATTEMPTS_DECAY_AT {
            self.attempts /= 2;
            self.successes /= 2;
        }
        self.attempts += 1;
        if success {
            self.successes += 1;
        }
    }
}

/// The bounded table of known peers.
#[derive(Debug)]
pub(crate) struct HealthTable {
    peers: BTreeMap<PeerId, PeerRecord>,
    policy: HealthPolicy,
    max_tracked_peers: usize,
    max_addrs_per_peer: usize,
    /// Peers evicted to stay within `max_tracked_peers`.
    pub(crate) evicted: u64,
}

impl HealthTable {
    pub(crate) fn new(policy: HealthPolicy, max_tracked_peers: usize, max_addrs_per_peer: usize) -> Self {
        Self {
            peers: BTreeMap::new(),
            policy,
            max_tracked_peers: max_tracked_peers.max(1),
            max_addrs_per_peer: max_addrs_per_peer.max(1),
            evicted: 0,
        }
    }

    /// The record of `peer`, made (evicting the stalest peer if full) if it is new.
    fn entry(&mut self, peer: PeerId) -> &mut PeerRecord {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.max_tracked_peers {
            self.evict_stalest();
        }
        self.peers.entry(peer).or_default()
    }

    /// Removes the disconnected peer seen longest ago (never seen counts as oldest); only if
    /// every tracked peer is connected does a connected one go. Ties go to the smallest id, so
    /// the choice is reproducible.
    fn evict_stalest(&mut self) {
        let stalest = self
            .peers
            .iter()
            .min_by_key(|(peer, record)| (record.connections > 0, record.last_seen_ms, **peer))
            .map(|(peer, _)| *peer);
        if let Some(peer) = stalest {
            self.peers.remove(&peer);
            self.evicted += 1;
        }
    }

    /// Remembers an address of `peer` (newest kept when the per-peer bound is hit).
    pub(crate) fn add_addr(&mut self, peer: PeerId, addr: Multiaddr) {
        let max_addrs = self.max_addrs_per_peer;
        let record = self.entry(peer);
        if record.addrs.contains(&addr) {
            return;
        }
        if record.addrs.len() >= max_addrs {
            record.addrs.remove(0);
        }
        record.addrs.push(addr);
    }

    /// A sign of life from `peer` (a message, a request, identify).
    pub(crate) fn record_seen(&mut self, peer: PeerId, now_ms: u64) {
        self.entry(peer).last_seen_ms = Some(now_ms);
    }

    /// A dial or request to `peer` worked.
    pub(crate) fn record_success(&mut self, peer: PeerId, now_ms: u64) {
        let record = self.entry(peer);
        record.last_seen_ms = Some(now_ms);
        record.record_attempt(true);
    }

    /// A dial or request to `peer` failed.
    pub(crate) fn record_failure(&mut self, peer: PeerId) {
        self.entry(peer).record_attempt(false);
    }

    /// A connection to `peer` opened.
    pub(crate) fn connection_opened(&mut self, peer: PeerId, now_ms: u64) {
        let record = self.entry(peer);
        record.connections = record.connections.saturating_add(1);
        record.last_seen_ms = Some(now_ms);
    }

    /// A connection to `peer` closed.
    pub(crate) fn connection_closed(&mut self, peer: PeerId, now_ms: u64) {
        if let Some(record) = self.peers.get_mut(&peer) {
            record.connections = record.connections.saturating_sub(1);
            record.last_seen_ms = Some(now_ms);
        }
    }

    pub(crate) fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerRecord)> {
        self.peers.iter()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_healthy(&self, record: &PeerRecord, now_ms: u64) -> bool {
        record.is_healthy(now_ms, &self.policy)
    }

    /// Tracked peers that fail the health rule.
    pub(crate) fn unhealthy_count(&self, now_ms: u64) -> usize {
        self.peers.values().filter(|record| !record.is_healthy(now_ms, &self.policy)).count()
    }

    /// Up to `limit` disconnected peers with addresses to dial: healthy ones first, then the
    /// most recently seen, then by id.
    pub(crate) fn redial_candidates(&self, now_ms: u64, limit: usize) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut candidates: Vec<(bool, u64, PeerId, &PeerRecord)> = self
            .peers
            .iter()
            .filter(|(_, record)| record.connections == 0 && !record.addrs.is_empty())
            .map(|(peer, record)| {
                let ago = record.seen_ms_ago(now_ms).unwrap_or(u64::MAX);
                (!record.is_healthy(now_ms, &self.policy), ago, *peer, record)
            })
            .collect();
        candidates.sort_by_key(|(unhealthy, ago, peer, _)| (*unhealthy, *ago, *peer));
        candidates.into_iter().take(limit).map(|(_, _, peer, record)| (peer, record.addrs.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: HealthPolicy =
        HealthPolicy { healthy_if_seen_within_ms: 1_000, min_success_rate: 0.5, min_attempts_for_rate: 3 };

    fn peer(n: u8) -> PeerId {
        crate::identity::libp2p_keypair([n; 32]).unwrap().public().to_peer_id()
    }

    fn table(max_peers: usize) -> HealthTable {
        HealthTable::new(POLICY, max_peers, 2)
    }

    #[test]
    fn peer_with_few_attempts_is_healthy_even_if_never_seen() {
        let mut table = table(8);
        table.record_failure(peer(1));
        table.record_failure(peer(1));
        let record = table.get(&peer(1)).unwrap();
        assert_eq!(record.attempts, 2);
        assert!(table.is_healthy(record, 1_000_000));
    }

    #[test]
    fn peer_seen_within_the_window_with_good_rate_is_healthy_and_turns_stale_after() {
        let mut table = table(8);
        for _ in 0..3 {
            table.record_success(peer(1), 100);
        }
        let record = table.get(&peer(1)).unwrap().clone();
        assert!(table.is_healthy(&record, 1_100));
        assert!(!table.is_healthy(&record, 1_101));
        assert_eq!(table.unhealthy_count(1_101), 1);
    }

    #[test]
    fn connected_peer_counts_as_seen_now() {
        let mut table = table(8);
        table.connection_opened(peer(1), 0);
        for _ in 0..3 {
            table.record_success(peer(1), 0);
        }
        assert!(table.is_healthy(table.get(&peer(1)).unwrap(), 1_000_000));
        table.connection_closed(peer(1), 10);
        assert!(!table.is_healthy(table.get(&peer(1)).unwrap(), 1_000_000));
    }

    #[test]
    fn success_rate_at_or_below_the_minimum_is_unhealthy() {
        let mut table = table(8);
        table.record_success(peer(1), 0);
        table.record_success(peer(1), 0);
        table.record_failure(peer(1));
        table.record_failure(peer(1));
        let record = table.get(&peer(1)).unwrap();
        assert_eq!(record.success_rate(), 0.5);
        assert!(!table.is_healthy(record, 10));
        table.record_success(peer(1), 10);
        assert!(table.is_healthy(table.get(&peer(1)).unwrap(), 10));
    }

    #[test]
    fn counters_decay_so_recent_behaviour_dominates() {
        let mut table = table(8);
        for _ in 0..ATTEMPTS_DECAY_AT {
            table.record_failure(peer(1));
        }
        for _ in 0..ATTEMPTS_DECAY_AT {
            table.record_success(peer(1), 0);
        }
        let record = table.get(&peer(1)).unwrap();
        assert!(record.attempts <= ATTEMPTS_DECAY_AT);
        assert!(record.success_rate() > 0.5);
    }

    #[test]
    fn table_evicts_the_stalest_disconnected_peer_at_its_bound() {
        let mut table = table(3);
        table.connection_opened(peer(1), 0); // oldest but connected: kept
        table.record_seen(peer(2), 50);
        table.record_seen(peer(3), 100);
        table.record_seen(peer(4), 200);
        assert_eq!(table.len(), 3);
        assert_eq!(table.evicted, 1);
        assert!(table.get(&peer(1)).is_some());
        assert!(table.get(&peer(2)).is_none());
        assert!(table.get(&peer(4)).is_some());
    }

    #[test]
    fn addresses_per_peer_are_bounded_and_deduplicated() {
        let mut table = table(8);
        for port in [1, 1, 2, 3] {
            table.add_addr(peer(1), format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap());
        }
        let addrs: Vec<String> = table.get(&peer(1)).unwrap().addrs.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, ["/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/3"]);
    }

    #[test]
    fn redial_prefers_healthy_then_recent_and_skips_connected_or_addressless() {
        let mut table = table(8);
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        for n in 1..=4 {
            table.add_addr(peer(n), addr.clone());
        }
        table.record_seen(peer(1), 10);
        table.record_seen(peer(2), 90);
        for _ in 0..3 {
            table.record_failure(peer(3)); // unhealthy
        }
        table.connection_opened(peer(4), 100); // connected: not a candidate
        table.record_seen(peer(5), 100); // no address: not a candidate
        let order: Vec<PeerId> = table.redial_candidates(100, 10).into_iter().map(|(peer, _)| peer).collect();
        assert_eq!(order, [peer(2), peer(1), peer(3)]);
        assert_eq!(table.redial_candidates(100, 1).len(), 1);
    }
}
