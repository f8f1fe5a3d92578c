//! Every bound the core enforces, in one place, each with its unit in its name.
//!
//! When a bound is hit the core counts it (see [`crate::metrics::NodeMetrics`]) and drops,
//! evicts or refuses; it never grows past the bound and never fails silently.

/// All size and count bounds of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded gossip message, request or response accepted or produced.
    pub max_message_bytes: usize,
    /// Largest delta payload (the application's actions).
    pub max_payload_bytes: usize,
    /// Most parents one delta may name. A local delta merges at most this many heads.
    pub max_parents_per_delta: usize,
    /// Most heads carried in a heartbeat or a heads response.
    pub max_heads_per_message: usize,
    /// Pending deltas (waiting for parents) per context; the oldest is evicted beyond this.
    pub max_pending_deltas: usize,
    /// A pending delta older than this is dropped by the periodic cleanup.
    pub max_pending_age_ms: u64,
    /// Deltas whose application failed, kept per context for a retry; oldest evicted beyond.
    pub max_quarantined_deltas: usize,
    /// Gossip deltas held per context while a snapshot sync runs; newest dropped beyond.
    pub max_snapshot_buffer_deltas: usize,
    /// Most deltas in one `deltas_since` page.
    pub max_deltas_per_page: usize,
    /// Most deltas one `deltas_since` walk may visit before it answers "take a snapshot".
    pub max_since_scan_deltas: usize,
    /// Most ids in one missing-parents page.
    pub max_missing_parents_per_page: usize,
    /// Most state bytes in one snapshot page.
    pub max_snapshot_page_bytes: usize,
    /// Most applied ids in one snapshot page.
    pub max_snapshot_ids_per_page: usize,
    /// Largest whole snapshot state accepted or served.
    pub max_snapshot_bytes: usize,
    /// Most applied ids in a whole snapshot.
    pub max_snapshot_ids: usize,
    /// Snapshots being served at once (each holds a frozen copy of state).
    pub max_served_snapshots: usize,
    /// How far ahead of local time a remote HLC may be.
    pub max_hlc_drift_ms: u64,
    /// Sync sessions running at once, over all contexts.
    pub max_concurrent_syncs: usize,
    /// Missing-parent fetches in flight at once, over all contexts.
    pub max_inflight_parent_fetches: usize,
    /// Peers asked for one set of missing parents before the fetch gives up to periodic sync.
    pub max_parent_fetch_attempts: usize,
    /// Members of one context that this node accepts in a genesis, a membership delta or a
    /// join. The fold itself never grows a context past the protocol's
    /// [`MAX_MEMBERS`](crate::membership::MAX_MEMBERS), whatever this says.
    pub max_members_per_context: usize,
    /// Key wraps one membership delta carries, its rotation and grants together: a rotation
    /// wraps its key to every member, a grant to each member who lacks an older key.
    pub max_key_wraps_per_change: usize,
    /// Context keys one replica holds (every epoch, concurrent rotations' keys included). At
    /// the bound a new key is not kept and counted (`keys_refused_at_bound`): deltas sealed
    /// under it wait in quarantine.
    pub max_keys_per_context: usize,
    /// Peers remembered per context.
    pub max_peers_per_context: usize,
    /// Contexts one node joins.
    pub max_contexts: usize,
    /// Blobs tracked by the cache index; reaching it triggers an eviction pass at once.
    pub max_tracked_blobs: usize,
    /// A cached blob not accessed for this long is evicted (phase 1).
    pub max_blob_idle_ms: u64,
    /// Most cached blobs after eviction (phase 2).
    pub max_cached_blobs: usize,
    /// Most cached bytes after eviction (phase 3).
    pub max_blob_cache_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            max_payload_bytes: 1024 * 1024,
            max_parents_per_delta: 256,
            max_heads_per_message: 1024,
            max_pending_deltas: 10_000,
            max_pending_age_ms: 300_000,
            max_quarantined_deltas: 1_000,
            max_snapshot_buffer_deltas: 10_000,
            max_deltas_per_page: 500,
            max_since_scan_deltas: 200_000,
            max_missing_parents_per_page: 256,
            max_snapshot_page_bytes: 1024 * 1024,
            max_snapshot_ids_per_page: 16_384,
            max_snapshot_bytes: 256 * 1024 * 1024,
            max_snapshot_ids: 10_000_000,
            max_served_snapshots: 4,
            max_hlc_drift_ms: 5_000,
            max_concurrent_syncs: 30,
            max_inflight_parent_fetches: 64,
            max_parent_fetch_attempts: 3,
            max_members_per_context: crate::membership::MAX_MEMBERS,
            max_key_wraps_per_change: 8_192,
            max_keys_per_context: 16_384,
            max_peers_per_context: 1_024,
            max_contexts: 10_000,
            max_tracked_blobs: 10_000,
            max_blob_idle_ms: 300_000,
            max_cached_blobs: 100,
            max_blob_cache_bytes: 500 * 1024 * 1024,
        }
    }
}
