//! Counters of everything the node did, refused, dropped or evicted.
//!
//! The core only counts; the node binary exports these (Prometheus) and the simulator reports
//! them. Per-reason maps use the stable labels of [`crate::RejectReason::label`] and
//! [`crate::wire::WireError::label`].

use std::collections::BTreeMap;

/// Peers [`NodeMetrics::refusals_by_peer`] tracks at most.
pub const MAX_REFUSING_PEERS_TRACKED: usize = 1_024;

/// Node-wide counters, totals since the node was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetrics {
    /// Gossip messages received.
    pub gossip_received: u64,
    /// Gossip messages published (deltas and heartbeats).
    pub gossip_sent: u64,
    /// Peer messages that did not decode, by reason.
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Deltas received from peers (gossip and sync).
    pub deltas_received: u64,
    /// Deltas authored here.
    pub local_deltas: u64,
    /// Deltas applied (directly or by cascade).
    pub deltas_applied: u64,
    /// Deltas that went pending.
    pub deltas_pended: u64,
    /// Deltas already known.
    pub duplicates: u64,
    /// Our own deltas coming back to us.
    pub echoes_skipped: u64,
    /// Deltas refused, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Deltas and messages refused, by the peer that sent them: at most
    /// [`MAX_REFUSING_PEERS_TRACKED`] peers; at the bound a new peer replaces the one with the
    /// fewest refusals (so a persistent offender stays visible however many identities churn).
    pub refusals_by_peer: BTreeMap<crate::ids::PeerId, u64>,
    /// Sync sessions not started because the peer is not a member (nor a bootstrap key while
    /// this node is not one): a relayed delta or heartbeat does not make its sender a source.
    pub syncs_refused_non_member: u64,
    /// Context keys learned (from membership deltas wrapped to this node, or an invitation).
    pub keys_learned: u64,
    /// Key wraps addressed to this node that did not open: their author handed it a key it
    /// cannot use.
    pub key_unwrap_failures: u64,
    /// Key requests sent: keys an applied delta lists this node as a recipient of, that it
    /// does not hold (the wrap it was sent did not open).
    pub key_requests_sent: u64,
    /// Key requests from members answered with the key wrapped to them.
    pub key_requests_served: u64,
    /// Key requests answered with no key: the key is not held here, or the requester is not a
    /// current member the key was handed to.
    pub key_requests_refused: u64,
    /// Answers to our key requests that held no key, or one that did not open or was another.
    pub key_answers_useless: u64,
    /// Key rotations this node authored so that a write could be sealed under a key every
    /// member holds (removals rotate too, and are not counted here).
    pub key_rotations: u64,
    /// Failed sync sessions by reason ([`crate::sync::SyncFailure::label`]).
    pub sync_failures: BTreeMap<&'static str, u64>,
    /// Deltas whose application failed.
    pub quarantined: u64,
    /// Pending deltas evicted at the cap.
    pub pending_evicted_capacity: u64,
    /// Pending deltas evicted by age.
    pub pending_evicted_stale: u64,
    /// Gossip deltas buffered during a snapshot.
    pub snapshot_buffered: u64,
    /// Gossip deltas dropped because the snapshot buffer was full.
    pub snapshot_buffer_dropped: u64,
    /// Missing-parent fetches sent.
    pub parent_fetches: u64,
    /// Missing-parent fetches that failed or came back without what was wanted.
    pub parent_fetch_failures: u64,
    /// Missing parents not fetched because too many fetches were in flight.
    pub parent_fetches_deferred: u64,
    /// Sync sessions started.
    pub syncs_started: u64,
    /// Sync sessions that completed.
    pub syncs_succeeded: u64,
    /// Sync sessions that failed.
    pub syncs_failed: u64,
    /// Syncs not started because the concurrency limit was reached.
    pub syncs_deferred: u64,
    /// Follow-up sessions chained after a session that brought deltas.
    pub sync_follow_ups: u64,
    /// Heads broadcast at once after a sync brought deltas.
    pub heads_announced: u64,
    /// Sessions started back toward a peer whose request named ids we lacked.
    pub syncs_reciprocal: u64,
    /// Snapshots adopted.
    pub snapshots_adopted: u64,
    /// Application deltas taken in as part of an adopted snapshot's state rather than applied
    /// here one by one: their events were never delivered to this node and its handlers never
    /// ran for them (docs/ABI.md, "Events and handlers").
    pub snapshot_deltas_without_events: u64,
    /// Snapshots refused (bad checkpoint, bad pages, root mismatch).
    pub snapshots_refused: u64,
    /// Heartbeats published.
    pub heartbeats_sent: u64,
    /// Heartbeats received.
    pub heartbeats_received: u64,
    /// Silent divergences detected (equal heads, different roots).
    pub divergences_detected: u64,
    /// Requests answered.
    pub requests_served: u64,
    /// Requests answered with an error code.
    pub request_errors_sent: u64,
    /// Requests that failed or timed out on our side.
    pub requests_failed: u64,
    /// Responses for requests we no longer wait for (late after a timeout).
    pub stale_responses: u64,
    /// Snapshots frozen for serving.
    pub snapshots_served: u64,
    /// Blobs evicted by the cache policy.
    pub blobs_evicted: u64,
    /// Heartbeats and requests from peers that are not members of the context, ignored.
    pub non_member_messages: u64,
    /// Local writes refused because the application ran at another HLC than its delta's.
    pub local_hlc_mismatches: u64,
    /// Local writes refused because the application read the state at other heads than the
    /// delta's parents.
    pub local_heads_mismatches: u64,
    /// Inputs whose wall clock jumped against the monotonic one by more than the HLC drift
    /// bound since the last input (a clock step; the HLC and drift checks feel it, timers not).
    pub wall_clock_steps: u64,
    /// Heartbeats no newer than the last one taken from their sender (replays), ignored.
    pub heartbeats_replayed: u64,
    /// Heartbeats naming a sender other than their gossip publisher, ignored.
    pub heartbeats_misattributed: u64,
    /// Quarantined deltas applied by a periodic retry.
    pub quarantine_recovered: u64,
    /// Sync sessions failed for running past `max_sync_session_ms`.
    pub sync_session_deadlines: u64,
    /// A peer's `SnapshotRequired` or `GapTooLarge` not acted on because our own view does not
    /// say we are far behind, by error code (`snapshot_required`, `gap_too_large`).
    pub snapshot_demands_refused: BTreeMap<&'static str, u64>,
    /// Verified attestations recorded (from signed heartbeats).
    pub attestations_taken: u64,
    /// Attestations refused, by reason ([`crate::attestation::AttestationError::label`]).
    pub attestations_refused: BTreeMap<&'static str, u64>,
    /// Snapshot checkpoints whose (heads, root) too few members vouched for (declined in
    /// favour of deltas, or the session failed).
    pub snapshots_unvouched: u64,
    /// Snapshots adopted on the serving member's word alone, then checked against later
    /// attestations.
    pub snapshots_single_voucher: u64,
    /// Such adoptions a second member's attestation later agreed with.
    pub snapshots_confirmed: u64,
    /// Snapshot syncs started to repair a state adopted on one voucher that another member's
    /// attestation contradicted.
    pub snapshot_repairs: u64,
    /// Contradictions of an adopted state by a member that already served it or a repair of
    /// it: reported, not acted on (two members disagree and no third has spoken).
    pub snapshot_disputes: u64,
}

impl NodeMetrics {
    pub(crate) fn count_decode_error(&mut self, label: &'static str) {
        *self.decode_errors.entry(label).or_default() += 1;
    }

    pub(crate) fn count_attestation_refused(&mut self, label: &'static str) {
        *self.attestations_refused.entry(label).or_default() += 1;
    }

    pub(crate) fn count_rejection(&mut self, label: &'static str) {
        *self.rejected.entry(label).or_default() += 1;
    }

    /// Counts one refusal of something `peer` sent.
    pub(crate) fn count_refusal_from(&mut self, peer: crate::ids::PeerId) {
        if !self.refusals_by_peer.contains_key(&peer) && self.refusals_by_peer.len() >= MAX_REFUSING_PEERS_TRACKED {
            let fewest = self.refusals_by_peer.iter().min_by_key(|(id, count)| (**count, **id)).map(|(id, _)| *id);
            if let Some(fewest) = fewest {
                self.refusals_by_peer.remove(&fewest);
            }
        }
        *self.refusals_by_peer.entry(peer).or_default() += 1;
    }

    /// All decode errors.
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.values().sum()
    }

    /// All rejections.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn refusals_by_peer_keep_the_worst_offenders_at_the_bound() {
        let mut metrics = NodeMetrics::default();
        let peer = |n: u32| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            crate::ids::PeerId::from_bytes(bytes)
        };
        for _ in 0..3 {
            metrics.count_refusal_from(peer(u32::MAX));
        }
        for n in 0..(MAX_REFUSING_PEERS_TRACKED as u32 + 10) {
            metrics.count_refusal_from(peer(n));
        }
        assert_eq!(metrics.refusals_by_peer.len(), MAX_REFUSING_PEERS_TRACKED);
        assert_eq!(metrics.refusals_by_peer.get(&peer(u32::MAX)), Some(&3), "the persistent offender stays");
    }
}
