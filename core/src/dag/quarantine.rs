//! Deltas whose application failed: held whole, reported, and retried on request.
//!
//! A quarantined delta is known (a re-delivery is a duplicate) but not applied: it is not in the
//! applied set, not a head, and the applier's state does not contain any part of it. Its
//! children stay pending until a retry succeeds.

use crate::applier::ApplyError;
use crate::delta::DeltaRef;
use crate::ids::DeltaId;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// One quarantined delta.
#[derive(Debug, Clone)]
pub struct QuarantinedDelta {
    /// The delta, kept whole for a retry.
    pub delta: DeltaRef,
    /// The last application error.
    pub error: ApplyError,
    /// How many times application was tried.
    pub attempts: u32,
    /// When it was first quarantined.
    pub since: Timestamp,
}

#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    entries: BTreeMap<DeltaId, QuarantinedDelta>,
    order: BTreeMap<u64, DeltaId>,
    sequence: BTreeMap<DeltaId, u64>,
    next_seq: u64,
}

impl Quarantine {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains(&self, id: &DeltaId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn get(&self, id: &DeltaId) -> Option<&QuarantinedDelta> {
        self.entries.get(id)
    }

    /// Adds or updates an entry. Returns the id evicted to stay within `max`, if any.
    pub(crate) fn put(&mut self, now: Timestamp, delta: DeltaRef, error: ApplyError, max: usize) -> Option<DeltaId> {
        let id = delta.id;
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.error = error;
            entry.attempts += 1;
            return None;
        }
        let evicted = if self.entries.len() >= max { self.pop_oldest() } else { None };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, id);
        self.sequence.insert(id, seq);
        self.entries.insert(id, QuarantinedDelta { delta, error, attempts: 1, since: now });
        evicted
    }

    pub(crate) fn remove(&mut self, id: &DeltaId) -> Option<QuarantinedDelta> {
        let entry = self.entries.remove(id)?;
        if let Some(seq) = self.sequence.remove(id) {
            self.order.remove(&seq);
        }
        Some(entry)
    }

    /// Ids in quarantine order (oldest first).
    /// The quarantined deltas, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &QuarantinedDelta> {
        self.entries.values()
    }

    pub(crate) fn ids(&self) -> Vec<DeltaId> {
        self.order.values().copied().collect()
    }

    pub(crate) fn drain(&mut self) -> Vec<DeltaRef> {
        let ids = self.ids();
        ids.iter().filter_map(|id| self.remove(id)).map(|entry| entry.delta).collect()
    }

    fn pop_oldest(&mut self) -> Option<DeltaId> {
        let (_, id) = self.order.pop_first()?;
        self.sequence.remove(&id);
        self.entries.remove(&id);
        Some(id)
    }
}
