//! The per-context DAG store: applied deltas, heads, the pending queue and the quarantine.
//!
//! A delta is applied only after all of its parents, so a newly applied delta is always a head.
//! Deltas that arrive early wait in the [`pending`] queue; applying a parent releases them in
//! an iterative cascade. Nothing here recurses or rescans, whatever the arrival order.

mod pending;
mod quarantine;
mod restore;
mod since;

pub use pending::EvictionCause;
pub use quarantine::QuarantinedDelta;

pub use restore::{RestoreDagError, RestoredEntry};
pub use since::{SinceCursor, SinceError, SincePage};

use crate::applier::{Applier, ApplyError};
use crate::delta::DeltaRef;
use crate::ids::{AuthorKey, ContextId, DeltaId, IdMap};
use crate::reject::RejectReason;
use crate::time::Timestamp;
use pending::PendingQueue;
use quarantine::Quarantine;
use std::collections::{BTreeMap, BTreeSet};

/// What [`DagStore::add`] did with a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// Applied, along with the pending deltas it released.
    Applied {
        /// Pending deltas applied because of this one, in the order they were applied.
        cascade: Vec<DeltaId>,
        /// Released deltas whose application failed; they are now quarantined.
        quarantined: Vec<DeltaId>,
    },
    /// Waiting for parents.
    Pending {
        /// Parents that are neither applied, pending nor quarantined here: the ones to fetch.
        missing: Vec<DeltaId>,
    },
    /// Already applied, pending or quarantined.
    Duplicate,
    /// All parents were there but the applier failed; the delta is quarantined.
    Quarantined(ApplyError),
    /// Refused; nothing was stored.
    Rejected(RejectReason),
}

/// What [`DagStore::retry_quarantined`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retried {
    /// Deltas applied: retried ones and the pending deltas they released, in order.
    pub applied: Vec<DeltaId>,
    /// Released pending deltas whose application failed; they are quarantined now.
    pub quarantined: Vec<DeltaId>,
}

/// Pending-queue figures for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingStats {
    /// Deltas waiting.
    pub count: usize,
    /// Age of the oldest, in milliseconds; `None` when the queue is empty.
    pub oldest_age_ms: Option<u64>,
    /// Distinct parents that are waited on and not held anywhere here.
    pub missing_parents: usize,
}

/// One page of missing parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingParentsPage {
    /// Missing parent ids, sorted.
    pub ids: Vec<DeltaId>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<DeltaId>,
}

/// Counters of one DAG store; totals since creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DagCounters {
    /// Deltas applied (directly or by cascade).
    pub applied: u64,
    /// Deltas that were already known.
    pub duplicates: u64,
    /// Pending deltas evicted because the queue was full.
    pub pending_evicted_capacity: u64,
    /// Pending deltas evicted because they were too old.
    pub pending_evicted_stale: u64,
    /// Deltas put into quarantine.
    pub quarantined: u64,
    /// Quarantined deltas evicted because the quarantine was full.
    pub quarantine_evicted: u64,
}

/// Bounds a DAG store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DagLimits {
    /// Cap on pending deltas (oldest evicted beyond).
    pub max_pending_deltas: usize,
    /// Cap on quarantined deltas (oldest evicted beyond).
    pub max_quarantined_deltas: usize,
    /// Most parents per delta.
    pub max_parents_per_delta: usize,
}

impl DagLimits {
    /// The DAG bounds out of the node-wide limits.
    pub fn from_limits(limits: &crate::Limits) -> Self {
        Self {
            max_pending_deltas: limits.max_pending_deltas,
            max_quarantined_deltas: limits.max_quarantined_deltas,
            max_parents_per_delta: limits.max_parents_per_delta,
        }
    }
}

/// What the store keeps per applied delta.
#[derive(Debug, Clone)]
pub(crate) struct AppliedEntry {
    /// 1 + the greatest parent height; 1 for a delta with no parents.
    pub(crate) height: u64,
    /// The delta itself, or only its place in the DAG when it came with an adopted snapshot.
    pub(crate) known: Known,
}

/// How much of an applied delta the store holds.
#[derive(Debug, Clone)]
pub(crate) enum Known {
    /// The whole delta, so it can be served to peers.
    Body(DeltaRef),
    /// Only its parents: it is part of adopted snapshot state.
    Structure(Box<[DeltaId]>),
}

impl AppliedEntry {
    pub(crate) fn parents(&self) -> &[DeltaId] {
        match &self.known {
            Known::Body(delta) => &delta.parents,
            Known::Structure(parents) => parents,
        }
    }

    pub(crate) fn body(&self) -> Option<&DeltaRef> {
        match &self.known {
            Known::Body(delta) => Some(delta),
            Known::Structure(_) => None,
        }
    }
}

/// One applied id in a snapshot checkpoint: the id and its parents, so the receiver keeps the
/// DAG's shape (and can serve gaps above it) without the delta bodies.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct CheckpointEntry {
    /// The applied delta.
    pub id: DeltaId,
    /// Its parents, sorted.
    pub parents: Vec<DeltaId>,
}

/// The DAG of one context.
#[derive(Debug)]
pub struct DagStore {
    context: ContextId,
    limits: DagLimits,
    applied: IdMap<DeltaId, AppliedEntry>,
    heads: BTreeSet<DeltaId>,
    pending: PendingQueue,
    quarantine: Quarantine,
    counters: DagCounters,
    /// Pending deltas evicted since the owner last asked ([`Self::take_evicted`]): the node
    /// reports them, with their ids, so persistence can follow the queue without mirroring it.
    evicted: Vec<(DeltaId, EvictionCause)>,
    /// Applied entries held only as snapshot structure (no body).
    structure_only: usize,
    /// The least applied id at each height: the ancestors [`Self::known_sample`] names,
    /// found in O(log n) instead of walking parent links.
    height_markers: BTreeMap<u64, DeltaId>,
}

impl DagStore {
    /// An empty store for `context`.
    pub fn new(context: ContextId, limits: DagLimits) -> Self {
        Self {
            context,
            limits,
            applied: IdMap::default(),
            heads: BTreeSet::new(),
            pending: PendingQueue::default(),
            quarantine: Quarantine::default(),
            counters: DagCounters::default(),
            evicted: Vec::new(),
            structure_only: 0,
            height_markers: BTreeMap::new(),
        }
    }

    /// Records `id`, applied at `height`, as that height's marker if it is the least id there.
    fn mark_height(&mut self, height: u64, id: DeltaId) {
        let marker = self.height_markers.entry(height).or_insert(id);
        if id < *marker {
            *marker = id;
        }
    }

    /// How many applied deltas are held only as adopted snapshot structure, without bodies.
    /// Such history cannot be re-applied, so a later snapshot must cover it.
    pub fn structure_only_len(&self) -> usize {
        self.structure_only
    }

    /// What to tell a peer we have: our heads, then one applied delta at each of the heights
    /// 1, 2, 4, ... 4096 below our highest head, up to `max` ids in all. Every applied delta is
    /// an ancestor of some head, so a server that lacks our newest heads (unpublished local
    /// writes, a branch it has not seen) still finds a nearby delta it knows below them, and
    /// the gap it computes overshoots by about twice the depth of what it lacks instead of
    /// becoming the whole history.
    ///
    /// The deltas come from a per-height index: walking parent links for this cost thousands
    /// of lookups per request once the history was deep, nine tenths of a 10-minute
    /// 100-node simulation.
    pub fn known_sample(&self, max: usize) -> Vec<DeltaId> {
        const MAX_DISTANCE: u64 = 4096;
        let mut sample: Vec<DeltaId> = self.heads.iter().take(max).copied().collect();
        let top = self.heads.iter().filter_map(|head| self.height(head)).max().unwrap_or(0);
        let mut distance = 1u64;
        while sample.len() < max && distance <= MAX_DISTANCE && distance < top {
            if let Some((_, id)) = self.height_markers.range(..=top - distance).next_back() {
                if !sample.contains(id) {
                    sample.push(*id);
                }
            }
            distance *= 2;
        }
        sample
    }

    /// The context this store holds.
    pub fn context(&self) -> &ContextId {
        &self.context
    }

    /// Current heads, sorted.
    pub fn heads(&self) -> &BTreeSet<DeltaId> {
        &self.heads
    }

    /// Current heads as a sorted vector.
    pub fn heads_vec(&self) -> Vec<DeltaId> {
        self.heads.iter().copied().collect()
    }

    /// How many deltas are applied.
    pub fn applied_len(&self) -> usize {
        self.applied.len()
    }

    /// True when nothing has been applied or adopted yet.
    pub fn is_fresh(&self) -> bool {
        self.applied.is_empty()
    }

    /// True when the store holds no delta at all: none applied, pending or quarantined.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.pending.is_empty() && self.quarantine.is_empty()
    }

    /// True if `id` is applied.
    pub fn is_applied(&self, id: &DeltaId) -> bool {
        self.applied.contains_key(id)
    }

    /// True if `id` is applied, pending or quarantined.
    pub fn is_known(&self, id: &DeltaId) -> bool {
        self.applied.contains_key(id) || self.pending.contains(id) || self.quarantine.contains(id)
    }

    /// An applied delta's body, if this store holds it.
    pub fn get(&self, id: &DeltaId) -> Option<&DeltaRef> {
        self.applied.get(id).and_then(AppliedEntry::body)
    }

    /// A pending delta's body.
    pub fn pending_delta(&self, id: &DeltaId) -> Option<&DeltaRef> {
        self.pending.get(id)
    }

    /// True if `id` waits in the pending queue.
    pub fn is_pending(&self, id: &DeltaId) -> bool {
        self.pending.contains(id)
    }

    /// An applied delta's height (generation).
    pub fn height(&self, id: &DeltaId) -> Option<u64> {
        self.applied.get(id).map(|entry| entry.height)
    }

    /// Number of pending deltas.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A quarantined delta, if any.
    pub fn quarantined(&self, id: &DeltaId) -> Option<&QuarantinedDelta> {
        self.quarantine.get(id)
    }

    /// Number of quarantined deltas.
    pub fn quarantined_len(&self) -> usize {
        self.quarantine.len()
    }

    /// Counters since creation.
    pub fn counters(&self) -> DagCounters {
        self.counters
    }

    /// Adds a delta whose id and signature the caller has verified.
    pub fn add(&mut self, now: Timestamp, delta: DeltaRef, applier: &mut (impl Applier + ?Sized)) -> AddOutcome {
        if delta.context != self.context {
            return AddOutcome::Rejected(RejectReason::WrongContext);
        }
        if delta.parents.len() > self.limits.max_parents_per_delta {
            let count = delta.parents.len();
            return AddOutcome::Rejected(RejectReason::TooManyParents {
                count,
                max: self.limits.max_parents_per_delta,
            });
        }
        if self.is_known(&delta.id) {
            self.counters.duplicates += 1;
            return AddOutcome::Duplicate;
        }
        let unapplied: Vec<DeltaId> =
            delta.parents.iter().filter(|parent| !self.applied.contains_key(*parent)).copied().collect();
        if unapplied.is_empty() {
            return self.apply_with_cascade(now, delta, applier);
        }
        while self.pending.len() >= self.limits.max_pending_deltas.max(1) {
            if let Some(evicted) = self.pending.evict_oldest() {
                self.evicted.push((evicted, EvictionCause::Capacity));
            }
            self.counters.pending_evicted_capacity += 1;
        }
        let missing = unapplied
            .iter()
            .filter(|parent| !self.pending.contains(parent) && !self.quarantine.contains(parent))
            .copied()
            .collect();
        self.pending.insert(now, delta, &unapplied);
        AddOutcome::Pending { missing }
    }

    /// Tries every quarantined delta again, oldest first. Returns the ids applied (including
    /// the cascades they released) and the released pending deltas that failed in turn and
    /// are quarantined now.
    pub fn retry_quarantined(&mut self, now: Timestamp, applier: &mut (impl Applier + ?Sized)) -> Retried {
        let mut applied = Vec::new();
        let mut failed = Vec::new();
        for id in self.quarantine.ids() {
            let Some(delta) = self.quarantine.get(&id).map(|entry| entry.delta.clone()) else {
                continue;
            };
            match self.apply_one(&delta, applier) {
                Ok(()) => {
                    self.quarantine.remove(&id);
                    applied.push(id);
                    self.cascade_from(now, id, applier, &mut applied, &mut failed);
                }
                Err(error) => {
                    // Already present, so this records the attempt and never evicts.
                    self.quarantine.put(now, delta, error, usize::MAX);
                }
            }
        }
        Retried { applied, quarantined: failed }
    }

    /// Drops pending deltas that have waited at least `max_age_ms`. Returns how many.
    pub fn cleanup_stale(&mut self, now: Timestamp, max_age_ms: u64) -> usize {
        let Some(cutoff) = now.as_nanos().checked_sub(max_age_ms.saturating_mul(1_000_000)) else {
            return 0;
        };
        let evicted = self.pending.evict_received_before(Timestamp::from_nanos(cutoff));
        self.pending.compact();
        self.counters.pending_evicted_stale += evicted.len() as u64;
        let count = evicted.len();
        self.evicted.extend(evicted.into_iter().map(|id| (id, EvictionCause::Stale)));
        count
    }

    /// Drops the pending and quarantined deltas whose author `is_member` refuses (the member
    /// list changed), and the pending deltas waiting on one of them: none of them may apply any
    /// more. Pending ones are evicted with [`EvictionCause::NotMember`] (see
    /// [`Self::take_evicted`]). Returns how many were dropped.
    /// Applied deltas stay: a per-node member list has no causal position to undo them from.
    pub fn drop_non_members(&mut self, is_member: impl Fn(&AuthorKey) -> bool) -> usize {
        let refused = |delta: &DeltaRef| !is_member(&delta.author);
        let pending = self.pending.evict_where(refused);
        self.pending.compact();
        let quarantined = self.quarantine.remove_where(refused);
        let dropped = pending.len() + quarantined.len();
        self.evicted.extend(pending.into_iter().map(|id| (id, EvictionCause::NotMember)));
        dropped
    }

    /// The pending deltas evicted (by capacity, age or membership) since the last call, oldest
    /// first.
    pub fn take_evicted(&mut self) -> Vec<(DeltaId, EvictionCause)> {
        std::mem::take(&mut self.evicted)
    }

    /// Pending-queue figures at `now`.
    pub fn pending_stats(&self, now: Timestamp) -> PendingStats {
        PendingStats {
            count: self.pending.len(),
            oldest_age_ms: self
                .pending
                .oldest_received_at()
                .map(|at| u64::try_from(now.saturating_since(at).as_millis()).unwrap_or(u64::MAX)),
            missing_parents: self.missing_parent_ids().len(),
        }
    }

    /// Missing parents after `after`, at most `limit` of them, sorted.
    pub fn missing_parents(&self, after: Option<&DeltaId>, limit: usize) -> MissingParentsPage {
        let all = self.missing_parent_ids();
        let start = after.map_or(0, |after| all.partition_point(|id| id <= after));
        let end = (start + limit.max(1)).min(all.len());
        let ids = all[start..end].to_vec();
        let next = (end < all.len()).then(|| all[end - 1]);
        MissingParentsPage { ids, next }
    }

    /// A page of the deltas reachable from `wanted` (our heads when `None`) that a peer which
    /// has applied `known` lacks, in causal order, resuming after `after`.
    pub fn deltas_since(
        &self,
        known: &[DeltaId],
        wanted: Option<&[DeltaId]>,
        after: Option<SinceCursor>,
        max_deltas: usize,
        max_bytes: usize,
        max_scan: usize,
    ) -> Result<SincePage, SinceError> {
        let heads;
        let targets = match wanted {
            Some(wanted) => wanted,
            None => {
                heads = self.heads_vec();
                &heads
            }
        };
        let gap = since::gap(&self.applied, targets, known, max_scan)?;
        Ok(since::page(&self.applied, &gap, after, max_deltas, max_bytes))
    }

    /// Every applied id with its parents, parents first (sorted by height, then id): the DAG
    /// half of a snapshot.
    pub fn checkpoint(&self) -> Vec<CheckpointEntry> {
        let mut ids: Vec<(u64, DeltaId)> = self.applied.iter().map(|(id, entry)| (entry.height, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| CheckpointEntry { id, parents: self.applied[&id].parents().to_vec() }).collect()
    }

    /// Checks a snapshot's checkpoint against itself and prepares the new applied set,
    /// keeping the bodies this store already holds. Changes nothing.
    ///
    /// `entries` must list parents before children, each id once, and `heads` must be exactly
    /// the entries without children.
    pub fn prepare_checkpoint(
        &self,
        entries: &[CheckpointEntry],
        heads: &[DeltaId],
    ) -> Result<PreparedCheckpoint, AdoptError> {
        let mut adopted: IdMap<DeltaId, AppliedEntry> =
            IdMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut has_child: crate::ids::IdSet<DeltaId> = Default::default();
        for entry in entries {
            let mut height = 0;
            for parent in &entry.parents {
                let parent_entry = adopted.get(parent).ok_or(AdoptError::ParentAfterChild(entry.id))?;
                height = height.max(parent_entry.height);
                has_child.insert(*parent);
            }
            let known = match self.applied.get(&entry.id).and_then(AppliedEntry::body) {
                Some(body) if body.parents == entry.parents => Known::Body(body.clone()),
                _ => Known::Structure(entry.parents.clone().into_boxed_slice()),
            };
            if adopted.insert(entry.id, AppliedEntry { height: height + 1, known }).is_some() {
                return Err(AdoptError::DuplicateEntry(entry.id));
            }
        }
        if let Some(uncovered) = self
            .applied
            .iter()
            .find(|(id, entry)| entry.body().is_none() && !adopted.contains_key(*id))
            .map(|(id, _)| *id)
        {
            return Err(AdoptError::DropsStateOnlyHistory(uncovered));
        }
        let heads: BTreeSet<DeltaId> = heads.iter().copied().collect();
        let childless = adopted.keys().filter(|id| !has_child.contains(*id)).count();
        if childless != heads.len() || heads.iter().any(|head| !adopted.contains_key(head) || has_child.contains(head))
        {
            return Err(AdoptError::HeadsMismatch);
        }
        Ok(PreparedCheckpoint { applied: adopted, heads })
    }

    /// Replaces the applied set and heads with a prepared checkpoint. The caller imports the
    /// matching state into the applier first.
    ///
    /// Returns what the snapshot lacks, parents first: deltas applied here but unknown to the
    /// snapshot (`reapply`), and pending or quarantined ones (`requeue`). The caller must `add`
    /// them again, in that order, so that no local write is lost.
    pub fn install_checkpoint(&mut self, prepared: PreparedCheckpoint) -> CheckpointReplay {
        let mut leftovers: Vec<(u64, DeltaRef)> = self
            .applied
            .iter()
            .filter(|(id, _)| !prepared.applied.contains_key(*id))
            .filter_map(|(_, entry)| entry.body().map(|body| (entry.height, body.clone())))
            .collect();
        leftovers.sort_unstable_by_key(|(height, body)| (*height, body.id));
        let reapply = leftovers.into_iter().map(|(_, body)| body).collect();
        let mut requeue = self.pending.drain();
        requeue.extend(self.quarantine.drain());
        self.pending.compact();
        self.applied = prepared.applied;
        self.heads = prepared.heads;
        let markers: Vec<(u64, DeltaId)> = self.applied.iter().map(|(id, entry)| (entry.height, *id)).collect();
        self.height_markers.clear();
        for (height, id) in markers {
            self.mark_height(height, id);
        }
        self.structure_only = self.applied.values().filter(|entry| entry.body().is_none()).count();
        CheckpointReplay { reapply, requeue }
    }

    /// [`Self::prepare_checkpoint`] then [`Self::install_checkpoint`].
    pub fn adopt_checkpoint(
        &mut self,
        entries: &[CheckpointEntry],
        heads: &[DeltaId],
    ) -> Result<Vec<DeltaRef>, AdoptError> {
        let prepared = self.prepare_checkpoint(entries, heads)?;
        let replay = self.install_checkpoint(prepared);
        Ok(replay.reapply.into_iter().chain(replay.requeue).collect())
    }

    /// Drops a quarantined delta for good (a local write whose application failed: the call
    /// failed, so the delta must not linger). Returns false if it was not quarantined.
    pub fn discard_quarantined(&mut self, id: &DeltaId) -> bool {
        self.quarantine.remove(id).is_some()
    }

    fn missing_parent_ids(&self) -> Vec<DeltaId> {
        let mut missing = self.pending.missing_parents();
        missing.retain(|id| !self.quarantine.contains(id));
        missing
    }

    fn apply_with_cascade(
        &mut self,
        now: Timestamp,
        delta: DeltaRef,
        applier: &mut (impl Applier + ?Sized),
    ) -> AddOutcome {
        if let Err(error) = self.apply_one(&delta, applier) {
            self.put_in_quarantine(now, delta, error.clone());
            return AddOutcome::Quarantined(error);
        }
        let mut cascade = Vec::new();
        let mut quarantined = Vec::new();
        self.cascade_from(now, delta.id, applier, &mut cascade, &mut quarantined);
        AddOutcome::Applied { cascade, quarantined }
    }

    /// Applies every pending delta that `root` (just applied) releases, transitively. Iterative:
    /// an explicit stack, so a chain of any depth runs in constant call-stack space.
    fn cascade_from(
        &mut self,
        now: Timestamp,
        root: DeltaId,
        applier: &mut (impl Applier + ?Sized),
        cascade: &mut Vec<DeltaId>,
        quarantined: &mut Vec<DeltaId>,
    ) {
        let mut ready = Vec::new();
        let mut released = Vec::new();
        self.pending.release(&root, &mut ready);
        loop {
            for child in ready.drain(..) {
                match self.apply_one(&child, applier) {
                    Ok(()) => {
                        cascade.push(child.id);
                        released.push(child.id);
                    }
                    Err(error) => {
                        quarantined.push(child.id);
                        self.put_in_quarantine(now, child, error);
                    }
                }
            }
            let Some(next) = released.pop() else { break };
            self.pending.release(&next, &mut ready);
        }
        self.pending.compact();
    }

    fn apply_one(&mut self, delta: &DeltaRef, applier: &mut (impl Applier + ?Sized)) -> Result<(), ApplyError> {
        let mut height = 0;
        for parent in &delta.parents {
            height = height.max(self.applied[parent].height);
        }
        applier.apply(&self.context, delta)?;
        for parent in &delta.parents {
            self.heads.remove(parent);
        }
        self.heads.insert(delta.id);
        self.applied.insert(delta.id, AppliedEntry { height: height + 1, known: Known::Body(delta.clone()) });
        self.mark_height(height + 1, delta.id);
        self.counters.applied += 1;
        Ok(())
    }

    fn put_in_quarantine(&mut self, now: Timestamp, delta: DeltaRef, error: ApplyError) {
        self.counters.quarantined += 1;
        if self.quarantine.put(now, delta, error, self.limits.max_quarantined_deltas.max(1)).is_some() {
            self.counters.quarantine_evicted += 1;
        }
    }

    /// Checks the store's invariants: heads are applied and have no applied children,
    /// every applied delta's parents are applied, the pending index is consistent. Panics on a
    /// violation; it walks the whole store (see [`crate::Node::check_invariants`]).
    pub fn check_invariants(&self) {
        let mut least_at_height: BTreeMap<u64, DeltaId> = BTreeMap::new();
        for (id, entry) in &self.applied {
            let least = least_at_height.entry(entry.height).or_insert(*id);
            *least = (*least).min(*id);
        }
        assert_eq!(least_at_height, self.height_markers, "height markers are the least id per height");
        let mut has_child: crate::ids::IdSet<DeltaId> = Default::default();
        for entry in self.applied.values() {
            for parent in entry.parents() {
                assert!(self.applied.contains_key(parent), "applied delta with unapplied parent");
                assert!(self.applied[parent].height < entry.height, "parent not below child");
                has_child.insert(*parent);
            }
        }
        for head in &self.heads {
            assert!(self.applied.contains_key(head), "head not applied");
            assert!(!has_child.contains(head), "head has an applied child");
        }
        self.pending.check_invariants();
    }
}

/// A checkpoint that passed [`DagStore::prepare_checkpoint`], ready to install.
#[derive(Debug)]
pub struct PreparedCheckpoint {
    applied: IdMap<DeltaId, AppliedEntry>,
    heads: BTreeSet<DeltaId>,
}

/// What a store held that an installed checkpoint lacks.
#[derive(Debug, Default)]
pub struct CheckpointReplay {
    /// Deltas that were applied here but are not in the snapshot, parents first.
    pub reapply: Vec<DeltaRef>,
    /// Deltas that were pending or quarantined here, in arrival order.
    pub requeue: Vec<DeltaRef>,
}

/// Why a snapshot's checkpoint could not be adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdoptError {
    /// An entry names a parent that is not listed before it.
    #[error("checkpoint entry {0} comes before one of its parents")]
    ParentAfterChild(DeltaId),
    /// An id is listed twice.
    #[error("checkpoint lists {0} twice")]
    DuplicateEntry(DeltaId),
    /// The heads are not exactly the entries without children.
    #[error("checkpoint heads do not match its DAG")]
    HeadsMismatch,
    /// The snapshot lacks history this store holds only as state (from an earlier snapshot):
    /// adopting it would lose that history, which cannot be re-applied. The peer should pull
    /// from us instead.
    #[error("snapshot does not cover {0}, which this node holds only as snapshot state")]
    DropsStateOnlyHistory(DeltaId),
}

#[cfg(test)]
mod convergence_props;
#[cfg(test)]
mod tests;
