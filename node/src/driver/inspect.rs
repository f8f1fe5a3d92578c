//! Read-only inspection of a context's DAG and keys, for checks from outside the node (the
//! simulator's adversary checks): what was written after a membership change, and what this
//! node's keys can open of it. Nothing here changes state.

use super::NodeTask;
use crate::api::{ApiError, ReadProbe};
use crate::transport::Transport;
use rhizome_core::{ContextId, DeltaId, DeltaKind, DeltaRef};
use std::collections::BTreeSet;

impl<T: Transport> NodeTask<T> {
    /// The applied application deltas with bodies whose view folds `after`. Walks back from
    /// the heads and stops at a delta whose view does not fold `after`: views only grow along
    /// causality, so none of its ancestors folds it either.
    pub(super) fn app_deltas_after(&self, context: &ContextId, after: &DeltaId) -> Result<Vec<DeltaRef>, ApiError> {
        let dag = self.node.dag(context).ok_or(ApiError::UnknownContext(*context))?;
        let folds = |id: &DeltaId| dag.view_at(id).is_some_and(|view| view.folded().iter().any(|(_, f)| f == after));
        let mut seen = BTreeSet::new();
        let mut stack: Vec<DeltaId> = dag.heads_vec();
        let mut found = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || !folds(&id) {
                continue;
            }
            // A delta held only as snapshot structure has no body to walk through.
            let Some(delta) = dag.get(&id) else { continue };
            stack.extend(delta.parents.iter().copied());
            if matches!(delta.kind, DeltaKind::App) {
                found.push(delta.clone());
            }
        }
        found.sort_by_key(|delta| delta.id);
        Ok(found)
    }

    /// How many of `deltas`' payloads this node's keys open.
    pub(super) fn read_probe(&self, context: &ContextId, deltas: &[DeltaRef]) -> Result<ReadProbe, ApiError> {
        let dag = self.node.dag(context).ok_or(ApiError::UnknownContext(*context))?;
        let apps = deltas.iter().filter(|delta| matches!(delta.kind, DeltaKind::App));
        let (probed, opened) = apps.fold((0, 0), |(probed, opened), delta| {
            (probed + 1, opened + usize::from(self.node.open_payload(context, delta).is_ok()))
        });
        Ok(ReadProbe { keys: dag.keyring().len(), probed, opened })
    }
}
