//! Rebuilding a DAG from storage after a restart: the applied entries go back in, parents
//! first, without touching the applier (its state was stored in the same commits).

use super::{AppliedEntry, DagStore, Known};
use crate::delta::{DeltaHeader, DeltaKind, DeltaRef};
use crate::ids::DeltaId;
use crate::membership::{Judged, SharedView};
use crate::reject::RejectReason;

/// One stored applied entry.
#[derive(Debug, Clone)]
pub enum RestoredEntry {
    /// A delta whose body was stored.
    Body(DeltaRef),
    /// A delta known only by its signed header (it came inside an adopted snapshot).
    Structure(DeltaHeader),
}

impl RestoredEntry {
    /// The entry's id.
    pub fn id(&self) -> DeltaId {
        match self {
            Self::Body(delta) => delta.id,
            Self::Structure(header) => header.id,
        }
    }

    /// What membership judges it by, without hashing a body's payload.
    fn judged(&self) -> Judged<'_> {
        match self {
            Self::Body(delta) => delta.as_ref().into(),
            Self::Structure(header) => header.into(),
        }
    }

    fn context(&self) -> &crate::ids::ContextId {
        match self {
            Self::Body(delta) => &delta.context,
            Self::Structure(header) => &header.context,
        }
    }
}

/// Why stored entries could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreDagError {
    /// An entry names a parent that was not restored before it.
    #[error("delta {child} names parent {parent}, which was not restored before it")]
    ParentMissing {
        /// The entry.
        child: DeltaId,
        /// Its missing parent.
        parent: DeltaId,
    },
    /// The same id twice.
    #[error("delta {0} stored twice")]
    Duplicate(DeltaId),
    /// A body for another context.
    #[error("delta {0} belongs to another context")]
    WrongContext(DeltaId),
    /// A stored delta whose author was not a member at its causal point: the store was
    /// written by a build that judged membership otherwise, or was altered.
    #[error("stored delta {0} refused: {1}")]
    Refused(DeltaId, RejectReason),
    /// The store already holds pending or quarantined deltas. Restoring under them would mark
    /// their parents applied without releasing them (restoring applies nothing), so they would
    /// wait for ever on parents reported as present.
    #[error("the store already holds {pending} pending and {quarantined} quarantined deltas")]
    NotEmpty {
        /// Pending deltas held.
        pending: usize,
        /// Quarantined deltas held.
        quarantined: usize,
    },
}

impl DagStore {
    /// Reinstates applied entries in storage order (parents before children), into a store
    /// that holds no pending or quarantined delta (add those after). Changes nothing on error.
    pub fn restore_applied(&mut self, entries: Vec<RestoredEntry>) -> Result<(), RestoreDagError> {
        if !self.pending.is_empty() || !self.quarantine.is_empty() {
            return Err(RestoreDagError::NotEmpty { pending: self.pending.len(), quarantined: self.quarantine.len() });
        }
        let mut staged: crate::ids::IdMap<DeltaId, AppliedEntry> = Default::default();
        let mut membership = self.membership.clone();
        for entry in entries {
            let id = entry.id();
            let header = entry.judged();
            if *entry.context() != self.context {
                return Err(RestoreDagError::WrongContext(id));
            }
            let mut height = 0;
            let mut parent_views: Vec<&SharedView> = Vec::with_capacity(header.parents.len());
            for parent in header.parents {
                let parent_entry = staged
                    .get(parent)
                    .or_else(|| self.applied.get(parent))
                    .ok_or(RestoreDagError::ParentMissing { child: id, parent: *parent })?;
                height = height.max(parent_entry.height);
                parent_views.push(&parent_entry.view);
            }
            let view = if self.guarded {
                let past = membership.merge(&parent_views);
                let view = membership
                    .admit(&self.context, header, &past, height + 1)
                    .map_err(|reason| RestoreDagError::Refused(id, reason))?;
                if !matches!(header.kind, DeltaKind::App) {
                    membership.record(header, height + 1, &view);
                }
                view
            } else {
                self.open_view.clone()
            };
            let known = match entry {
                RestoredEntry::Body(delta) => Known::Body(delta),
                RestoredEntry::Structure(header) => Known::Structure(Box::new(header)),
            };
            if self.applied.contains_key(&id)
                || staged.insert(id, AppliedEntry { height: height + 1, view, known }).is_some()
            {
                return Err(RestoreDagError::Duplicate(id));
            }
        }
        self.membership = membership;
        let mut has_child: crate::ids::IdSet<DeltaId> = Default::default();
        for entry in staged.values() {
            for parent in entry.parents() {
                self.heads.remove(parent);
                has_child.insert(*parent);
            }
        }
        for (id, entry) in staged {
            if entry.body().is_none() {
                self.structure_only += 1;
            }
            if !has_child.contains(&id) {
                self.heads.insert(id);
            }
            self.counters.applied += 1;
            self.mark_height(entry.height, id);
            self.applied.insert(id, entry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::DagLimits;
    use crate::ids::ContextId;
    use crate::testing::{DeltaFactory, NoopApplier};
    use crate::time::Timestamp;
    use crate::Limits;

    fn context() -> ContextId {
        ContextId::hash_of(b"restore-tests")
    }

    fn store() -> DagStore {
        DagStore::new_unguarded(context(), DagLimits::from_limits(&Limits::default()))
    }

    #[test]
    fn restoring_the_stored_order_rebuilds_heads_and_heights() {
        let mut factory = DeltaFactory::unsigned(context());
        let root = factory.make(&[], vec![]);
        let left = factory.make(&[root.id], vec![]);
        let right = factory.make(&[root.id], vec![1]);
        let mut original = store();
        for delta in [&root, &left, &right] {
            original.add(Timestamp::ZERO, delta.clone(), &mut NoopApplier);
        }
        let mut restored = store();
        let entries = vec![
            RestoredEntry::Body(root.clone()),
            RestoredEntry::Structure(left.header()),
            RestoredEntry::Body(right.clone()),
        ];
        restored.restore_applied(entries).unwrap();
        assert_eq!(restored.heads(), original.heads());
        assert_eq!(restored.height(&left.id), original.height(&left.id));
        assert_eq!(restored.structure_only_len(), 1);
        assert_eq!(restored.applied_len(), 3);
        restored.check_invariants();
        // A child of a restored head applies as usual.
        let child = factory.make(&[left.id, right.id], vec![]);
        assert!(matches!(
            restored.add(Timestamp::ZERO, child, &mut NoopApplier),
            crate::dag::AddOutcome::Applied { .. }
        ));
    }

    /// Regression: restoring a parent under its waiting child marked the parent applied but
    /// left the child pending, with the parent still reported missing and both refused as
    /// duplicates when sent again.
    #[test]
    fn restoring_under_pending_deltas_is_refused_and_changes_nothing() {
        let mut factory = DeltaFactory::unsigned(context());
        let root = factory.make(&[], vec![]);
        let child = factory.make(&[root.id], vec![]);
        let mut store = store();
        assert!(matches!(
            store.add(Timestamp::ZERO, child.clone(), &mut NoopApplier),
            crate::dag::AddOutcome::Pending { .. }
        ));
        let error = store.restore_applied(vec![RestoredEntry::Body(root.clone())]);
        assert_eq!(error, Err(RestoreDagError::NotEmpty { pending: 1, quarantined: 0 }));
        assert!(!store.is_applied(&root.id));
        // The ordinary path still works: the parent arrives and releases the child.
        assert!(matches!(
            store.add(Timestamp::ZERO, root, &mut NoopApplier),
            crate::dag::AddOutcome::Applied { ref cascade, .. } if cascade == &vec![child.id]
        ));
        store.check_invariants();
    }

    #[test]
    fn a_child_before_its_parent_is_refused_and_changes_nothing() {
        let mut factory = DeltaFactory::unsigned(context());
        let root = factory.make(&[], vec![]);
        let child = factory.make(&[root.id], vec![]);
        let mut store = store();
        let error = store.restore_applied(vec![RestoredEntry::Body(child.clone()), RestoredEntry::Body(root)]);
        assert_eq!(error, Err(RestoreDagError::ParentMissing { child: child.id, parent: child.parents[0] }));
        assert!(store.is_fresh());
    }
}
