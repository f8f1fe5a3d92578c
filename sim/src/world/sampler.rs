//! The sampler: asks every answering node for its state in the run's context. A sample (how
//! many agree, queue sizes) goes to the recorder for the plots and the figures; a
//! fingerprint (root, heads, handler jobs) is what the liveness phase compares. Every status
//! read, either way, is held to the queue limits.

use super::cluster::Slot;
use crate::checks::QueueBounds;
use crate::record::{Sample, SharedRecorder};
use rhizome_core::{ContextId, DeltaId, InvariantDepth, Limits, RootHash};
use rhizome_node::ContextStatus;
use std::collections::BTreeMap;

/// What agreement compares: root, heads and handler jobs left.
pub(super) type Fingerprint = (RootHash, Vec<DeltaId>, usize);

/// Reads the nodes' states and keeps the queue bounds seen.
pub(super) struct Sampler {
    context: ContextId,
    start: tokio::time::Instant,
    recorder: SharedRecorder,
    limits: Limits,
    /// The queues seen in every status read.
    pub(super) bounds: QueueBounds,
    /// Samples taken so far (which node's DAGs the next one walks).
    samples_taken: usize,
}

impl Sampler {
    /// A sampler of `context`, holding queues to `limits`.
    pub(super) fn new(
        context: ContextId,
        start: tokio::time::Instant,
        recorder: &SharedRecorder,
        limits: Limits,
    ) -> Self {
        Self { context, start, recorder: recorder.clone(), limits, bounds: QueueBounds::default(), samples_taken: 0 }
    }

    /// The context's status on every node that is up, booted, not paused and has joined it.
    async fn statuses(&mut self, slots: &[Slot]) -> BTreeMap<usize, ContextStatus> {
        let mut states = BTreeMap::new();
        for (index, slot) in slots.iter().enumerate() {
            let Some(handle) = slot.answering() else { continue };
            let Ok(status) = handle.status().await else { continue };
            if let Some(state) = status.contexts.into_iter().find(|state| state.context == self.context) {
                let t_s = self.start.elapsed().as_secs_f64();
                self.bounds.observe(&self.limits, t_s, index, state.pending, state.snapshot_buffer);
                states.insert(index, state);
            }
        }
        states
    }

    /// Every answering node's fingerprint.
    pub(super) async fn fingerprints(&mut self, slots: &[Slot]) -> BTreeMap<usize, Fingerprint> {
        let states = self.statuses(slots).await;
        states.into_iter().map(|(index, state)| (index, (state.root, state.heads, state.handler_jobs))).collect()
    }

    /// Samples every answering node into the recorder, after checking each node's core
    /// invariants (a violation panics that node, and the run fails naming it): every node's
    /// bookkeeping at every sample, and one node's DAGs in turn, since a DAG walk costs its
    /// whole history (every node's at every sample made convergence-100 run 70 % longer).
    pub(super) async fn sample(&mut self, slots: &[Slot]) {
        let deep = self.samples_taken % slots.len().max(1);
        self.samples_taken += 1;
        for (index, slot) in slots.iter().enumerate() {
            if let Some(handle) = slot.answering() {
                let depth = if index == deep { InvariantDepth::WithDags } else { InvariantDepth::Bookkeeping };
                let _ = handle.check_invariants(depth).await;
            }
        }
        let states = self.statuses(slots).await;
        let mut groups: BTreeMap<(RootHash, &[DeltaId]), usize> = BTreeMap::new();
        let (mut max_pending, mut total_pending, mut max_buffer) = (0, 0, 0);
        for state in states.values() {
            *groups.entry((state.root, &state.heads)).or_default() += 1;
            max_pending = max_pending.max(state.pending);
            total_pending += state.pending;
            max_buffer = max_buffer.max(state.snapshot_buffer);
        }
        let live = states.len();
        let largest = groups.values().copied().max().unwrap_or(0);
        let agreement = if live == 0 { 0.0 } else { largest as f64 / live as f64 };
        self.recorder.lock().samples.push(Sample {
            t_s: self.start.elapsed().as_secs_f64(),
            agreement,
            max_pending,
            total_pending,
            max_snapshot_buffer: max_buffer,
            live,
        });
    }
}
