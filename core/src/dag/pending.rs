//! Deltas waiting for parents, with a reverse index from each missing parent to its waiters.
//!
//! When a parent is applied, [`PendingQueue::release`] hands back exactly the children whose
//! last missing parent it was. Nothing ever rescans the queue, so delivering N deltas in any
//! order costs O(N + edges) overall.

use crate::delta::DeltaRef;
use crate::ids::{DeltaId, IdMap};
use crate::time::Timestamp;
use std::collections::BTreeMap;

#[derive(Debug)]
struct PendingEntry {
    delta: DeltaRef,
    /// Parents not yet applied.
    unapplied_parents: u32,
    arrival_seq: u64,
    received_at: Timestamp,
}

/// Why pending deltas were evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionCause {
    /// The queue was at its cap when a new delta arrived.
    Capacity,
    /// The delta waited longer than the maximum age.
    Stale,
    /// Its author is no longer a member of the context.
    NotMember,
}

/// The pending queue of one context.
#[derive(Debug, Default)]
pub(crate) struct PendingQueue {
    entries: IdMap<DeltaId, PendingEntry>,
    /// parent id → pending children that named it and were waiting when they arrived.
    waiters: IdMap<DeltaId, Vec<DeltaId>>,
    /// Arrival order, for oldest-first eviction and age queries.
    arrivals: BTreeMap<u64, DeltaId>,
    next_arrival_seq: u64,
    /// The latest arrival time recorded. Arrival times never go backwards (an earlier `now`
    /// is recorded as this one), so arrival order is also time order and the stale cleanup
    /// may stop at the first entry that is young enough.
    latest_received_at: Timestamp,
}

impl PendingQueue {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains(&self, id: &DeltaId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn get(&self, id: &DeltaId) -> Option<&DeltaRef> {
        self.entries.get(id).map(|entry| &entry.delta)
    }

    /// Queues `delta`, which waits on `unapplied` (its parents not yet applied, non-empty).
    pub(crate) fn insert(&mut self, now: Timestamp, delta: DeltaRef, unapplied: &[DeltaId]) {
        debug_assert!(!unapplied.is_empty());
        let id = delta.id;
        for parent in unapplied {
            // One waiter per parent is the common case; don't pay for Vec's default of four.
            self.waiters.entry(*parent).or_insert_with(|| Vec::with_capacity(1)).push(id);
        }
        let arrival_seq = self.next_arrival_seq;
        self.next_arrival_seq += 1;
        self.arrivals.insert(arrival_seq, id);
        let unapplied_parents = u32::try_from(unapplied.len()).unwrap_or(u32::MAX);
        self.latest_received_at = self.latest_received_at.max(now);
        let received_at = self.latest_received_at;
        self.entries.insert(id, PendingEntry { delta, unapplied_parents, arrival_seq, received_at });
    }

    /// `parent` was applied: appends to `ready` the children that now have every parent.
    pub(crate) fn release(&mut self, parent: &DeltaId, ready: &mut Vec<DeltaRef>) {
        let Some(children) = self.waiters.remove(parent) else {
            return;
        };
        for child in children {
            let Some(entry) = self.entries.get_mut(&child) else {
                continue;
            };
            entry.unapplied_parents -= 1;
            if entry.unapplied_parents == 0 {
                let entry = self.entries.remove(&child).expect("entry looked up above");
                self.arrivals.remove(&entry.arrival_seq);
                ready.push(entry.delta);
            }
        }
    }

    /// Gives memory back after a burst: hash maps never shrink on removal, so a cascade that
    /// drained a large queue would otherwise keep its peak capacity for the context's life.
    pub(crate) fn compact(&mut self) {
        const KEEP_SLOTS: usize = 64;
        if self.entries.capacity() > KEEP_SLOTS && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        if self.waiters.capacity() > KEEP_SLOTS && self.waiters.len() < self.waiters.capacity() / 4 {
            self.waiters.shrink_to(self.waiters.len() * 2);
        }
    }

    /// Evicts the oldest entry. Returns its id.
    pub(crate) fn evict_oldest(&mut self) -> Option<DeltaId> {
        let (_, id) = self.arrivals.pop_first()?;
        self.forget(&id);
        Some(id)
    }

    /// Evicts every entry received at or before `cutoff`, oldest first. Returns their ids.
    /// Stopping at the first younger entry is exact because arrival times are monotone (see
    /// `latest_received_at`).
    pub(crate) fn evict_received_before(&mut self, cutoff: Timestamp) -> Vec<DeltaId> {
        let mut evicted = Vec::new();
        while let Some((_, id)) = self.arrivals.first_key_value() {
            let id = *id;
            if self.entries[&id].received_at > cutoff {
                break;
            }
            self.arrivals.pop_first();
            self.forget(&id);
            evicted.push(id);
        }
        evicted
    }

    /// Evicts every entry whose delta `pick` picks, and every entry waiting on one of them
    /// (it can never apply either), oldest first. Returns their ids.
    pub(crate) fn evict_where(&mut self, pick: impl Fn(&DeltaRef) -> bool) -> Vec<DeltaId> {
        let mut doomed: std::collections::BTreeSet<DeltaId> =
            self.arrivals.values().filter(|id| pick(&self.entries[*id].delta)).copied().collect();
        let mut frontier: Vec<DeltaId> = doomed.iter().copied().collect();
        while let Some(id) = frontier.pop() {
            for child in self.waiters.get(&id).into_iter().flatten() {
                if self.entries.contains_key(child) && doomed.insert(*child) {
                    frontier.push(*child);
                }
            }
        }
        let picked: Vec<(u64, DeltaId)> =
            self.arrivals.iter().filter(|(_, id)| doomed.contains(*id)).map(|(seq, id)| (*seq, *id)).collect();
        for (seq, id) in &picked {
            self.arrivals.remove(seq);
            self.forget(id);
        }
        picked.into_iter().map(|(_, id)| id).collect()
    }

    /// When the oldest entry arrived.
    pub(crate) fn oldest_received_at(&self) -> Option<Timestamp> {
        let (_, id) = self.arrivals.first_key_value()?;
        Some(self.entries[id].received_at)
    }

    /// Parents that some pending delta waits on and that are not pending themselves:
    /// the ones to fetch. Sorted.
    pub(crate) fn missing_parents(&self) -> Vec<DeltaId> {
        let mut missing: Vec<DeltaId> =
            self.waiters.keys().filter(|parent| !self.entries.contains_key(*parent)).copied().collect();
        missing.sort_unstable();
        missing
    }

    /// Removes and returns every entry in arrival order.
    pub(crate) fn drain(&mut self) -> Vec<DeltaRef> {
        let arrivals = std::mem::take(&mut self.arrivals);
        let mut entries = std::mem::take(&mut self.entries);
        self.waiters.clear();
        arrivals.into_values().filter_map(|id| entries.remove(&id).map(|entry| entry.delta)).collect()
    }

    /// Removes an entry whose arrival record is already gone, and its reverse-index edges.
    fn forget(&mut self, id: &DeltaId) {
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        for parent in &entry.delta.parents {
            if let Some(children) = self.waiters.get_mut(parent) {
                children.retain(|child| child != id);
                if children.is_empty() {
                    self.waiters.remove(parent);
                }
            }
        }
    }

    /// Checks the reverse index against the entries (tests and debug builds).
    pub(crate) fn check_invariants(&self) {
        assert_eq!(self.entries.len(), self.arrivals.len(), "arrival index out of step");
        let mut previous = Timestamp::ZERO;
        for (seq, id) in &self.arrivals {
            assert_eq!(self.entries[id].arrival_seq, *seq);
            assert!(self.entries[id].received_at >= previous, "arrival times went backwards");
            previous = self.entries[id].received_at;
        }
        for (parent, children) in &self.waiters {
            for child in children {
                if let Some(entry) = self.entries.get(child) {
                    assert!(entry.delta.parents.contains(parent), "waiter edge to a non-parent");
                }
            }
        }
    }
}
