//! The blob-cache eviction policy: a pure function of (now, entries, limits), in three phases.
//!
//! 1. Age: entries idle (not accessed) for at least `max_idle_ms` go first, cheaply.
//! 2. Count: if more than `max_count` remain, least recently used go until `max_count` remain.
//! 3. Bytes: if more than `max_bytes` remain, least recently used go until under the budget.
//!
//! Ties in access time break by blob id, so the plan is the same on every run.

use crate::ids::BlobId;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// One cached blob, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    /// The blob.
    pub id: BlobId,
    /// Its size.
    pub size_bytes: u64,
    /// When it was last read or written.
    pub last_accessed_at: Timestamp,
}

/// The policy's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionLimits {
    /// Phase 1: idle time after which a blob is evicted.
    pub max_idle_ms: u64,
    /// Phase 2: most blobs kept.
    pub max_count: usize,
    /// Phase 3: most bytes kept.
    pub max_bytes: u64,
}

impl EvictionLimits {
    /// The eviction limits out of the node-wide limits.
    pub fn from_limits(limits: &crate::Limits) -> Self {
        Self {
            max_idle_ms: limits.max_blob_idle_ms,
            max_count: limits.max_cached_blobs,
            max_bytes: limits.max_blob_cache_bytes,
        }
    }
}

/// Which phase evicted a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EvictionPhase {
    /// Idle too long.
    Age,
    /// Too many blobs.
    Count,
    /// Too many bytes.
    Bytes,
}

/// The blobs to evict, in order, with the phase that chose each.
pub fn plan_eviction(now: Timestamp, entries: &[BlobEntry], limits: &EvictionLimits) -> Vec<(BlobId, EvictionPhase)> {
    let mut evicted = Vec::new();
    let mut survivors: Vec<&BlobEntry> = Vec::with_capacity(entries.len());
    for entry in entries {
        let idle_ms = now.saturating_since(entry.last_accessed_at).as_millis();
        if idle_ms >= u128::from(limits.max_idle_ms) {
            evicted.push((entry.id, EvictionPhase::Age));
        } else {
            survivors.push(entry);
        }
    }
    survivors.sort_unstable_by_key(|entry| (entry.last_accessed_at, entry.id));
    let over_count = survivors.len().saturating_sub(limits.max_count);
    evicted.extend(survivors[..over_count].iter().map(|entry| (entry.id, EvictionPhase::Count)));
    let survivors = &survivors[over_count..];
    let mut bytes: u64 = survivors.iter().map(|entry| entry.size_bytes).sum();
    for entry in survivors {
        if bytes <= limits.max_bytes {
            break;
        }
        bytes -= entry.size_bytes;
        evicted.push((entry.id, EvictionPhase::Bytes));
    }
    evicted
}

/// The node's index of cached blobs, fed by the blob store's inputs.
#[derive(Debug, Default)]
pub struct BlobIndex {
    entries: BTreeMap<BlobId, BlobEntry>,
}

impl BlobIndex {
    /// Records a blob put into the cache.
    pub fn insert(&mut self, id: BlobId, size_bytes: u64, now: Timestamp) {
        self.entries.insert(id, BlobEntry { id, size_bytes, last_accessed_at: now });
    }

    /// Records a read. Unknown ids are ignored (the blob was evicted meanwhile).
    pub fn touch(&mut self, id: &BlobId, now: Timestamp) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.last_accessed_at = now;
        }
    }

    /// Forgets a blob.
    pub fn remove(&mut self, id: &BlobId) {
        self.entries.remove(id);
    }

    /// Blobs tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no blob is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Runs the policy and forgets what it evicts. Returns the evicted ids in order.
    pub fn evict(&mut self, now: Timestamp, limits: &EvictionLimits) -> Vec<(BlobId, EvictionPhase)> {
        let entries: Vec<BlobEntry> = self.entries.values().copied().collect();
        let plan = plan_eviction(now, &entries, limits);
        for (id, _) in &plan {
            self.entries.remove(id);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn blob(n: u8, size_bytes: u64, accessed_secs: u64) -> BlobEntry {
        BlobEntry { id: BlobId::from_bytes([n; 32]), size_bytes, last_accessed_at: Timestamp::from_secs(accessed_secs) }
    }

    fn defaults() -> EvictionLimits {
        EvictionLimits::from_limits(&crate::Limits::default())
    }

    #[test]
    fn phase_one_evicts_blobs_idle_five_minutes_or_more() {
        let now = Timestamp::from_secs(1_000);
        let entries = [blob(1, 10, 700), blob(2, 10, 701), blob(3, 10, 999)];
        assert_eq!(plan_eviction(now, &entries, &defaults()), vec![(BlobId::from_bytes([1; 32]), EvictionPhase::Age)]);
    }

    #[test]
    fn phase_two_trims_to_the_count_least_recently_used_first() {
        let now = Timestamp::from_secs(1_000);
        let entries: Vec<BlobEntry> = (0..105u8).map(|n| blob(n, 1, 900 + u64::from(n))).collect();
        let plan = plan_eviction(now, &entries, &defaults());
        assert_eq!(plan.len(), 5);
        assert!(plan.iter().all(|(_, phase)| *phase == EvictionPhase::Count));
        assert_eq!(plan.iter().map(|(id, _)| id.0[0]).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn phase_three_trims_bytes_least_recently_used_first() {
        let now = Timestamp::from_secs(1_000);
        let entries = [blob(1, 300 * MIB, 990), blob(2, 150 * MIB, 995), blob(3, 100 * MIB, 980)];
        // 550 MiB > 500 MiB: the least recently used (blob 3, 100 MiB) is enough.
        assert_eq!(
            plan_eviction(now, &entries, &defaults()),
            vec![(BlobId::from_bytes([3; 32]), EvictionPhase::Bytes)]
        );
    }

    #[test]
    fn phases_run_in_order_and_each_sees_what_the_last_left() {
        let now = Timestamp::from_secs(10_000);
        let limits = EvictionLimits { max_idle_ms: 60_000, max_count: 2, max_bytes: 100 };
        let entries = [blob(1, 10, 9_000), blob(2, 80, 9_990), blob(3, 80, 9_995), blob(4, 10, 9_950)];
        let plan = plan_eviction(now, &entries, &limits);
        assert_eq!(
            plan,
            vec![
                (BlobId::from_bytes([1; 32]), EvictionPhase::Age),
                (BlobId::from_bytes([4; 32]), EvictionPhase::Count),
                (BlobId::from_bytes([2; 32]), EvictionPhase::Bytes),
            ]
        );
    }

    #[test]
    fn access_time_ties_break_by_id_and_the_index_forgets_evicted_blobs() {
        let mut index = BlobIndex::default();
        let limits = EvictionLimits { max_idle_ms: u64::MAX, max_count: 1, max_bytes: u64::MAX };
        for n in [3u8, 1, 2] {
            index.insert(BlobId::from_bytes([n; 32]), 1, Timestamp::ZERO);
        }
        index.touch(&BlobId::from_bytes([1; 32]), Timestamp::from_secs(1));
        let plan = index.evict(Timestamp::from_secs(2), &limits);
        assert_eq!(plan.iter().map(|(id, _)| id.0[0]).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(index.len(), 1);
    }
}
