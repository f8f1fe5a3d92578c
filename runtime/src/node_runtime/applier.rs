//! The [`Applier`] the core drives: merging deltas natively (no WASM runs), queueing handler
//! jobs for remote events, and exporting and importing snapshot state.

use super::Runtime;
use crate::handlers::{job_key, queued_key, HandlerJob};
use crate::merge;
use crate::payload::AppPayload;
use crate::references::check_references;
use crate::stamp::Stamp;
use crate::state::{KvBackend, MemoryBackend, StagedWrites, StateStore, Txn};
use crate::wasm::app::EVENT_HANDLER_EXPORT;
use rhizome_core::{Applier, ApplyError, CausalDelta, ContextId, Hlc, RootHash};

impl<B: KvBackend + Default + 'static> Applier for Runtime<B> {
    /// Merges the delta's actions natively (no WASM runs), records handler jobs for a remote
    /// delta's events, and completes the handler job a local handler delta names: all staged
    /// and validated first, then committed together. A refusal is counted by its label.
    fn apply(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError> {
        let result = self.merge_delta(context, delta);
        if let Err(error) = &result {
            *self.metrics.deltas_refused.entry(error.label()).or_default() += 1;
        }
        result
    }

    fn root_hash(&self, context: &ContextId) -> RootHash {
        self.contexts
            .get(context)
            .and_then(|runtime| runtime.state.as_ref())
            .map_or(RootHash::default(), StateStore::root)
    }

    fn export_state(&self, context: &ContextId, max_bytes: usize) -> Result<Vec<u8>, ApplyError> {
        let store =
            self.contexts.get(context).and_then(|runtime| runtime.state.as_ref()).ok_or(ApplyError::UnknownContext)?;
        let bytes = rhizome_core::wire::encode(&store.entries());
        ApplyError::within_snapshot_bound(bytes, max_bytes)
    }

    fn import_state(
        &mut self,
        context: &ContextId,
        state: &[u8],
        expected_root: &RootHash,
        max_stamp_ms: u64,
    ) -> Result<Option<Hlc>, ApplyError> {
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            borsh::from_slice(state).map_err(|error| ApplyError::InvalidPayload(format!("snapshot state: {error}")))?;
        // Every entry, before anything is built or replaced.
        let latest = crate::state::check_snapshot_entries(&entries, max_stamp_ms)?;
        // Verify on a scratch store before touching the real one.
        let mut scratch = StateStore::new(MemoryBackend::default());
        scratch.replace_all(entries.clone()).map_err(|error| ApplyError::InvalidPayload(error.to_string()))?;
        let actual = scratch.root();
        if actual != *expected_root {
            return Err(ApplyError::RootMismatch { expected: *expected_root, actual });
        }
        let runtime = self.contexts.get_mut(context).ok_or(ApplyError::UnknownContext)?;
        let store = runtime.state.as_mut().ok_or(ApplyError::NoStateStore)?;
        store.replace_all(entries).map_err(|error| ApplyError::Storage(error.0))?;
        Ok(latest.map(|stamp| stamp.hlc))
    }
}

impl<B: KvBackend + Default + 'static> Runtime<B> {
    /// [`Applier::apply`], uncounted.
    fn merge_delta(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError> {
        let limits = &self.options.limits;
        let payload = AppPayload::decode(&delta.payload)?;
        let AppPayload::V1 { actions, events, handled } = &payload;
        // Before anything is staged: the rule reads only the delta, so every replica refuses
        // the same deltas (the core quarantines them).
        check_references(actions, delta.hlc, delta.author)?;
        // An app without a handler owes nothing for events: queueing jobs only to drop them
        // would cost two rows per remote event.
        let has_handler = self
            .contexts
            .get(context)
            .and_then(|runtime| self.apps.get(&runtime.app))
            .is_some_and(|app| app.has_method(EVENT_HANDLER_EXPORT));
        let runtime = self.contexts.get_mut(context).ok_or(ApplyError::UnknownContext)?;
        let store = runtime.state.as_mut().ok_or(ApplyError::NoStateStore)?;
        let mut txn = Txn::new(store);
        for (index, action) in actions.iter().enumerate() {
            let stamp = Stamp { hlc: delta.hlc, author: delta.author, index: index as u32 };
            merge::apply_action(&mut txn, action, stamp)?;
        }
        let writes = txn.into_writes();
        let local = delta.author == self.options.local_author;
        let room = limits.max_pending_handler_jobs.saturating_sub(runtime.pending_jobs);
        let mut new_jobs = Vec::new();
        if !local && has_handler {
            for (index, event) in events.iter().enumerate() {
                if store.get(&queued_key(&delta.id, index as u32)).is_some() {
                    continue; // queued before: a re-application (after a snapshot) owes nothing
                }
                let job = HandlerJob {
                    delta: delta.id,
                    index: index as u32,
                    author: delta.author,
                    kind: event.kind.clone(),
                    data: event.data.clone(),
                };
                new_jobs.push(job);
            }
        }
        let dropped = new_jobs.len().saturating_sub(room);
        new_jobs.truncate(room);
        let mut meta = StagedWrites::new();
        let mut completed = 0;
        // Only our own handler deltas complete our jobs: another node's handler delta names
        // the same (delta, event) but says nothing about whether *this* node handled it.
        if let (true, Some((handled_delta, handled_index))) = (local, handled) {
            let key = job_key(handled_delta, *handled_index);
            if store.get(&key).is_some() {
                meta.insert(key, None);
                completed = 1;
            }
        }
        for job in &new_jobs {
            meta.insert(job_key(&job.delta, job.index), Some(rhizome_core::wire::encode(job)));
            meta.insert(queued_key(&job.delta, job.index), Some(Vec::new()));
        }
        // One batch: the state changes, the completed job and the new jobs land together.
        store.commit(writes, meta).map_err(|error| ApplyError::Storage(error.0))?;
        runtime.pending_jobs = runtime.pending_jobs + new_jobs.len() - completed;
        if local && self.open.as_ref().is_some_and(|open| open.hlc == delta.hlc) {
            self.open = None;
        }
        self.metrics.deltas_merged += 1;
        self.metrics.handler_jobs_queued += new_jobs.len() as u64;
        self.metrics.handler_jobs_dropped += dropped as u64;
        Ok(())
    }
}
