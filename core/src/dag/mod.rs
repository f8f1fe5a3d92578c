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
use crate::delta::{CausalDelta, DeltaHeader, DeltaKind, DeltaRef};
use crate::ids::{ContextId, DeltaId, IdMap};
use crate::limits::Limits;
use crate::membership::{MembershipLedger, SharedView};
use crate::reject::RejectReason;
use crate::seal::{Keyring, KeyringOpenError, SealHeader};
use crate::signature_batch::verify_records;
use crate::signature_memo::SignatureMemo;
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
    /// Most context keys held ([`crate::Limits::max_keys_per_context`]).
    pub max_keys: usize,
}

impl DagLimits {
    /// The DAG bounds out of the node-wide limits.
    pub fn from_limits(limits: &crate::Limits) -> Self {
        Self {
            max_pending_deltas: limits.max_pending_deltas,
            max_quarantined_deltas: limits.max_quarantined_deltas,
            max_parents_per_delta: limits.max_parents_per_delta,
            max_keys: limits.max_keys_per_context,
        }
    }
}

/// What the store keeps per applied delta.
#[derive(Debug, Clone)]
pub(crate) struct AppliedEntry {
    /// 1 + the greatest parent height; 1 for a delta with no parents.
    pub(crate) height: u64,
    /// The members after this delta, judged from its causal past (shared by the deltas that
    /// have the same).
    pub(crate) view: SharedView,
    /// The delta itself, or only its header when it came with an adopted snapshot.
    pub(crate) known: Known,
}

/// How much of an applied delta the store holds.
#[derive(Debug, Clone)]
pub(crate) enum Known {
    /// The whole delta, so it can be served to peers.
    Body(DeltaRef),
    /// Only its signed header: it is part of adopted snapshot state.
    Structure(Box<DeltaHeader>),
}

impl AppliedEntry {
    pub(crate) fn parents(&self) -> &[DeltaId] {
        match &self.known {
            Known::Body(delta) => &delta.parents,
            Known::Structure(header) => &header.parents,
        }
    }

    /// The signed header, computed from the body when the body is held.
    pub(crate) fn header(&self) -> DeltaHeader {
        match &self.known {
            Known::Body(delta) => delta.header(),
            Known::Structure(header) => DeltaHeader::clone(header),
        }
    }

    pub(crate) fn body(&self) -> Option<&DeltaRef> {
        match &self.known {
            Known::Body(delta) => Some(delta),
            Known::Structure(_) => None,
        }
    }
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
    /// The membership deltas applied and the members they give.
    membership: MembershipLedger,
    /// False only in DAG-structure tests: no genesis, no membership judged, payloads given
    /// to the applier as they are.
    guarded: bool,
    /// The context keys held: a guarded store opens every application payload with them
    /// before the applier sees it (bodies stay sealed in the store, on the wire and on disk).
    keyring: Keyring,
    /// The view every delta of an unguarded store shares.
    open_view: SharedView,
    /// Pending deltas refused when their parents arrived (their author was not a member at
    /// their causal point), with why, since the owner last asked ([`Self::take_refused`]).
    refused: Vec<(DeltaId, RejectReason)>,
}

impl DagStore {
    /// An empty store for `context`: every delta must descend from the context's genesis and
    /// be written by a member at its causal point.
    pub fn new(context: ContextId, limits: DagLimits) -> Self {
        Self::with_guard(context, limits, true)
    }

    /// A store that judges no membership and needs no genesis, for tests of the DAG's
    /// structure alone.
    #[cfg(any(test, feature = "testing"))]
    pub fn new_unguarded(context: ContextId, limits: DagLimits) -> Self {
        Self::with_guard(context, limits, false)
    }

    fn with_guard(context: ContextId, limits: DagLimits, guarded: bool) -> Self {
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
            membership: MembershipLedger::default(),
            guarded,
            keyring: Keyring::default(),
            open_view: SharedView::default(),
            refused: Vec::new(),
        }
    }

    /// The members at our heads: the fold of every applied membership delta.
    pub fn members(&self) -> &SharedView {
        self.membership.current()
    }

    /// The membership deltas applied, and what they give.
    pub fn membership(&self) -> &MembershipLedger {
        &self.membership
    }

    /// The context keys held.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Keeps a context key (within [`crate::Limits::max_keys_per_context`]). True if it is
    /// new: quarantined deltas sealed under it may apply now
    /// ([`Self::retry_quarantined`]).
    pub fn insert_key(&mut self, key: crate::seal::ContextKey) -> bool {
        self.keyring.insert(key, self.limits.max_keys)
    }

    /// Opens an application delta's payload with the keys held.
    pub fn open_payload(&self, delta: &CausalDelta) -> Result<Vec<u8>, KeyringOpenError> {
        let header =
            SealHeader { context: &delta.context, author: &delta.author, parents: &delta.parents, hlc: &delta.hlc };
        self.keyring.open(&header, &delta.payload)
    }

    /// The members of the causal past of a delta on `parents` (all applied), or `None` if one
    /// is not applied.
    pub fn view_of_parents(&self, parents: &[DeltaId]) -> Option<SharedView> {
        let views: Option<Vec<&SharedView>> =
            parents.iter().map(|parent| self.applied.get(parent).map(|entry| &entry.view)).collect();
        Some(self.membership.merge(&views?))
    }

    /// The members after applied delta `id`, judged from its causal past.
    pub fn view_at(&self, id: &DeltaId) -> Option<&SharedView> {
        self.applied.get(id).map(|entry| &entry.view)
    }

    /// The pending deltas refused since the last call, with why: their parents arrived and
    /// their author was not a member (or not permitted) at their causal point. The deltas
    /// waiting on them are evicted with [`EvictionCause::NotMember`].
    pub fn take_refused(&mut self) -> Vec<(DeltaId, RejectReason)> {
        std::mem::take(&mut self.refused)
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

    /// True when nothing has been applied or adopted yet but the genesis: the context's whole
    /// history is still to come.
    pub fn is_fresh(&self) -> bool {
        match self.membership.genesis() {
            Some(genesis) => self.applied.len() == 1 && self.applied.contains_key(genesis),
            None => self.applied.is_empty(),
        }
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

    /// The keys (epoch and id) that quarantined deltas wait for: sealed under a key not held.
    pub fn keys_awaited(&self) -> std::collections::BTreeSet<(crate::seal::KeyEpoch, crate::seal::KeyId)> {
        self.quarantine
            .iter()
            .filter(|waiting| matches!(waiting.error, ApplyError::Sealed(KeyringOpenError::NoKey(_))))
            .filter_map(|waiting| crate::seal::SealedPayload::key_of(&waiting.delta.payload))
            .collect()
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
                Err(Refusal::Failed(error)) => {
                    // Already present, so this records the attempt and never evicts.
                    self.quarantine.put(now, delta, error, usize::MAX);
                }
                Err(Refusal::Rejected(reason)) => {
                    // Admitted when it first failed, and its causal past has not changed, so
                    // this does not happen; if it did, the delta must not stay to retry.
                    self.quarantine.remove(&id);
                    self.refused.push((id, reason));
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

    /// Every applied delta's signed header, parents first (sorted by height, then id): the
    /// DAG half of a snapshot.
    pub fn checkpoint(&self) -> Vec<DeltaHeader> {
        let mut ids: Vec<(u64, DeltaId)> = self.applied.iter().map(|(id, entry)| (entry.height, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| self.applied[&id].header()).collect()
    }

    /// Checks a snapshot's checkpoint and prepares the new applied set, keeping the bodies this
    /// store already holds. Changes nothing.
    ///
    /// `entries` must list parents before children, each id once, and `heads` must be exactly
    /// the entries without children. Every entry must be a signed header of this context whose
    /// author was a member at its causal point (judged as if the deltas were applied in this
    /// order), and the history must start at the context's genesis: a snapshot cannot name a
    /// delta nobody signed, nor one a non-member wrote.
    pub fn prepare_checkpoint(
        &self,
        entries: &[DeltaHeader],
        heads: &[DeltaId],
        limits: &Limits,
        memo: Option<&SignatureMemo>,
    ) -> Result<PreparedCheckpoint, AdoptError> {
        let mut adopted: IdMap<DeltaId, AppliedEntry> =
            IdMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut has_child: crate::ids::IdSet<DeltaId> = Default::default();
        let mut membership = MembershipLedger::default();
        let verdicts = self.checkpoint_verdicts(entries, limits, memo);
        for (entry, verified) in entries.iter().zip(verdicts) {
            if entry.context != self.context {
                return Err(AdoptError::Refused(entry.id, RejectReason::WrongContext));
            }
            let mut height = 0;
            let mut parent_views = Vec::with_capacity(entry.parents.len());
            for parent in &entry.parents {
                let parent_entry = adopted.get(parent).ok_or(AdoptError::ParentAfterChild(entry.id))?;
                height = height.max(parent_entry.height);
                parent_views.push(&parent_entry.view);
                has_child.insert(*parent);
            }
            let held = self.held_body(entry);
            // Bodies we hold were verified when they arrived, and are judged by what they say,
            // not by what the entry claims for their id; the rest are checked here.
            let held_header = held.map(|body| body.header());
            if held.is_none() && self.guarded {
                let verdict = verified.unwrap_or_else(|| entry.verify_with(limits, memo));
                verdict.map_err(|reason| AdoptError::Refused(entry.id, reason))?;
            }
            let header = held_header.as_ref().unwrap_or(entry);
            let view = if self.guarded {
                let past = membership.merge(&parent_views);
                let view = membership
                    .admit(&self.context, header.into(), &past, height + 1)
                    .map_err(|reason| AdoptError::Refused(entry.id, reason))?;
                membership.record(header.into(), height + 1, &view);
                view
            } else {
                self.open_view.clone()
            };
            let known = match held {
                Some(body) => Known::Body(body.clone()),
                None => Known::Structure(Box::new(entry.clone())),
            };
            if adopted.insert(entry.id, AppliedEntry { height: height + 1, view, known }).is_some() {
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
        Ok(PreparedCheckpoint { applied: adopted, heads, membership })
    }

    /// The body this store holds for a checkpoint entry, if the entry names it as it is.
    fn held_body(&self, entry: &DeltaHeader) -> Option<&DeltaRef> {
        self.applied.get(&entry.id).and_then(AppliedEntry::body).filter(|body| body.parents == entry.parents)
    }

    /// For each checkpoint entry [`Self::prepare_checkpoint`] checks (of this context, not
    /// held, in a guarded store), the answer of its `verify_with`, the signatures verified in
    /// batches: a snapshot brings up to thousands of headers at once.
    fn checkpoint_verdicts(
        &self,
        entries: &[DeltaHeader],
        limits: &Limits,
        memo: Option<&SignatureMemo>,
    ) -> Vec<Option<Result<(), RejectReason>>> {
        let mut verdicts = vec![None; entries.len()];
        if !self.guarded {
            return verdicts;
        }
        let checked: Vec<usize> = (0..entries.len())
            .filter(|&index| entries[index].context == self.context && self.held_body(&entries[index]).is_none())
            .collect();
        let records: Vec<&DeltaHeader> = checked.iter().map(|&index| &entries[index]).collect();
        for (index, verdict) in checked.into_iter().zip(verify_records(&records, limits, memo)) {
            verdicts[index] = Some(verdict);
        }
        verdicts
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
        if self.guarded {
            self.membership = prepared.membership;
        }
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
        entries: &[DeltaHeader],
        heads: &[DeltaId],
        limits: &Limits,
    ) -> Result<Vec<DeltaRef>, AdoptError> {
        let prepared = self.prepare_checkpoint(entries, heads, limits, None)?;
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
        match self.apply_one(&delta, applier) {
            Ok(()) => {}
            Err(Refusal::Rejected(reason)) => return AddOutcome::Rejected(reason),
            Err(Refusal::Failed(error)) => {
                self.put_in_quarantine(now, delta, error.clone());
                return AddOutcome::Quarantined(error);
            }
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
                    Err(Refusal::Failed(error)) => {
                        quarantined.push(child.id);
                        self.put_in_quarantine(now, child, error);
                    }
                    Err(Refusal::Rejected(reason)) => {
                        // Whatever waits on a refused delta can never apply.
                        self.refused.push((child.id, reason));
                        let doomed = child.id;
                        let waiting = self.pending.evict_where(|delta| delta.parents.contains(&doomed));
                        self.evicted.extend(waiting.into_iter().map(|id| (id, EvictionCause::NotMember)));
                    }
                }
            }
            let Some(next) = released.pop() else { break };
            self.pending.release(&next, &mut ready);
        }
        self.pending.compact();
    }

    /// Judges `delta` against the members of its causal past, then applies it. Membership
    /// deltas change no application state, so the applier never sees them.
    fn apply_one(&mut self, delta: &DeltaRef, applier: &mut (impl Applier + ?Sized)) -> Result<(), Refusal> {
        let mut height = 0;
        for parent in &delta.parents {
            height = height.max(self.applied[parent].height);
        }
        let view = if self.guarded {
            let parent_views: Vec<&SharedView> =
                delta.parents.iter().map(|parent| &self.applied[parent].view).collect();
            let past = self.membership.merge(&parent_views);
            self.membership.admit(&self.context, delta.as_ref().into(), &past, height + 1).map_err(Refusal::Rejected)?
        } else {
            self.open_view.clone()
        };
        if matches!(delta.kind, DeltaKind::App) {
            if self.guarded {
                // The applier sees plaintext; the store keeps the sealed body.
                let payload = self.open_payload(delta).map_err(|error| Refusal::Failed(ApplyError::Sealed(error)))?;
                let opened = CausalDelta { payload, ..CausalDelta::clone(delta) };
                applier.apply(&self.context, &opened).map_err(Refusal::Failed)?;
            } else {
                applier.apply(&self.context, delta).map_err(Refusal::Failed)?;
            }
        }
        if self.guarded && !matches!(delta.kind, DeltaKind::App) {
            self.membership.record(delta.as_ref().into(), height + 1, &view);
        }
        for parent in &delta.parents {
            self.heads.remove(parent);
        }
        self.heads.insert(delta.id);
        self.applied.insert(delta.id, AppliedEntry { height: height + 1, view, known: Known::Body(delta.clone()) });
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

/// Why [`DagStore::apply_one`] did not apply a delta.
enum Refusal {
    /// Its author may not write it at its causal point: dropped for good.
    Rejected(RejectReason),
    /// The applier failed: quarantined, to retry.
    Failed(ApplyError),
}

/// A checkpoint that passed [`DagStore::prepare_checkpoint`], ready to install.
#[derive(Debug)]
pub struct PreparedCheckpoint {
    applied: IdMap<DeltaId, AppliedEntry>,
    heads: BTreeSet<DeltaId>,
    membership: MembershipLedger,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptError {
    /// An entry is not a valid signed header by a member at its causal point.
    #[error("checkpoint entry {0} refused: {1}")]
    Refused(DeltaId, RejectReason),
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
