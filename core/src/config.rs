//! Node configuration: timer intervals, sync policy and [`Limits`].

use crate::limits::Limits;

/// Everything a [`crate::Node`] is configured with. Defaults follow the reference node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Size and count bounds.
    pub limits: Limits,
    /// How often each context's root hash and heads are broadcast.
    pub heartbeat_interval_ms: u64,
    /// How often the sync tracker looks for contexts due a sync.
    pub sync_tick_interval_ms: u64,
    /// Least time between two syncs of one context.
    pub min_sync_interval_ms: u64,
    /// Least time between two syncs of one context when a peer has shown heads we lack.
    pub min_sync_evidence_interval_ms: u64,
    /// After a sync brings deltas, the node announces its new heads at once (a heartbeat
    /// outside the schedule), at most this often per context. Nodes still behind learn whom
    /// to pull from instead of waiting for the next heartbeat.
    pub min_sync_announce_interval_ms: u64,
    /// A sync session's request unanswered for this long fails the session. The deadline goes
    /// out with the request ([`crate::Output::Request`]); the transport keeps no timeout of its
    /// own.
    pub sync_request_timeout_ms: u64,
    /// A parent fetch unanswered for this long fails, and the fetch moves to another peer.
    pub parent_fetch_timeout_ms: u64,
    /// A sync session still running after this long fails, however it is progressing.
    pub max_sync_session_ms: u64,
    /// First backoff after a failed sync; doubles per consecutive failure.
    pub sync_backoff_base_ms: u64,
    /// Cap on the failure backoff.
    pub max_sync_backoff_ms: u64,
    /// Sessions chained at once after a session that brought deltas, before the context waits
    /// for the next tick or fresh evidence. Spreads a heal to every node in a few round trips.
    pub max_sync_follow_ups: u32,
    /// A session must bring at least this many deltas to start a follow-up chain. Fewer is
    /// routine repair of gossip lost on the way; starting chains for it multiplied sessions
    /// (and reciprocal syncs) several times over while writes flowed.
    pub min_sync_follow_up_deltas: u64,
    /// A sync whose gap is larger than this many deltas falls back to a snapshot.
    pub snapshot_gap_threshold_deltas: u64,
    /// Distinct members that must vouch for a snapshot's exact (heads, root) before it is
    /// adopted: the serving member and the signed attestations (heartbeats) of others. Capped
    /// at the number of members other than this node, and at least 1 (the server), so a
    /// context with one other member adopts on that member's word (and keeps checking; see
    /// docs/SECURITY.md, "Snapshots: who vouches").
    pub snapshot_vouchers: usize,
    /// How often stale pending deltas are cleaned up.
    pub pending_cleanup_interval_ms: u64,
    /// How often the blob cache eviction policy runs.
    pub blob_eviction_interval_ms: u64,
    /// A served snapshot not read for this long is dropped.
    pub served_snapshot_ttl_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            heartbeat_interval_ms: 30_000,
            sync_tick_interval_ms: 10_000,
            min_sync_interval_ms: 5_000,
            min_sync_evidence_interval_ms: 250,
            min_sync_announce_interval_ms: 500,
            sync_request_timeout_ms: 10_000,
            parent_fetch_timeout_ms: 10_000,
            max_sync_session_ms: 600_000,
            sync_backoff_base_ms: 5_000,
            max_sync_backoff_ms: 300_000,
            max_sync_follow_ups: 6,
            min_sync_follow_up_deltas: 16,
            snapshot_gap_threshold_deltas: 2_000,
            snapshot_vouchers: 2,
            pending_cleanup_interval_ms: 60_000,
            blob_eviction_interval_ms: 300_000,
            served_snapshot_ttl_ms: 60_000,
        }
    }
}
