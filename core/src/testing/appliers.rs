//! Appliers for tests and benches. `KvCounterApplier` is a small but real CRDT state:
//! last-writer-wins registers keyed by bytes, plus per-author PN-counters.

use crate::applier::{Applier, ApplyError, SnapshotEntryFault, StateRecord};
use crate::delta::CausalDelta;
use crate::hlc::Hlc;
use crate::ids::{AuthorKey, ContextId, DeltaId, IdSet, RootHash};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;

/// Accepts everything and keeps no state; the root is all zeroes. For DAG benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopApplier;

impl Applier for NoopApplier {
    fn apply(&mut self, _: &ContextId, _: &CausalDelta) -> Result<(), ApplyError> {
        Ok(())
    }

    fn root_hash(&self, _: &ContextId) -> RootHash {
        RootHash::default()
    }

    fn export_state(&self, _: &ContextId, _: usize) -> Result<Vec<u8>, ApplyError> {
        Ok(Vec::new())
    }

    fn import_state(
        &mut self,
        _: &ContextId,
        _: &[u8],
        expected_root: &RootHash,
        _: u64,
    ) -> Result<Option<Hlc>, ApplyError> {
        if *expected_root != RootHash::default() {
            return Err(ApplyError::RootMismatch { expected: *expected_root, actual: RootHash::default() });
        }
        Ok(None)
    }
}

/// One operation in a [`KvCounterApplier`] payload.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum KvOp {
    /// Last-writer-wins set.
    Set {
        /// Register key.
        key: Vec<u8>,
        /// New value.
        value: Vec<u8>,
    },
    /// Last-writer-wins delete (a tombstone).
    Remove {
        /// Register key.
        key: Vec<u8>,
    },
    /// PN-counter increment (negative to decrement).
    Add {
        /// Counter name.
        counter: Vec<u8>,
        /// Amount.
        amount: i64,
    },
}

impl KvOp {
    /// Encodes a list of operations as a delta payload.
    pub fn encode(ops: &[KvOp]) -> Vec<u8> {
        borsh::to_vec(ops).expect("encoding to a Vec never fails")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Register {
    /// `None` is a tombstone.
    value: Option<Vec<u8>>,
    /// The write's HLC with the delta id as final tie-break: a total order over writes.
    stamp: (Hlc, DeltaId),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct KvState {
    registers: BTreeMap<Vec<u8>, Register>,
    /// counter → author → that author's running sum. Sums commute, so any order agrees.
    counters: BTreeMap<Vec<u8>, BTreeMap<AuthorKey, i64>>,
}

impl KvState {
    fn root(&self) -> RootHash {
        if self.registers.is_empty() && self.counters.is_empty() {
            return RootHash::default();
        }
        let bytes = borsh::to_vec(self).expect("encoding to a Vec never fails");
        RootHash::from_bytes(*blake3::hash(&bytes).as_bytes())
    }
}

/// A native CRDT application: LWW registers and PN-counters, per context.
#[derive(Debug, Default, Clone)]
pub struct KvCounterApplier {
    contexts: BTreeMap<ContextId, KvState>,
}

impl KvCounterApplier {
    /// A register's current value.
    pub fn get(&self, context: &ContextId, key: &[u8]) -> Option<&[u8]> {
        self.contexts.get(context)?.registers.get(key)?.value.as_deref()
    }

    /// A counter's current value.
    pub fn counter(&self, context: &ContextId, counter: &[u8]) -> i64 {
        self.contexts
            .get(context)
            .and_then(|state| state.counters.get(counter))
            .map_or(0, |by_author| by_author.values().fold(0i64, |sum, part| sum.wrapping_add(*part)))
    }

    /// Number of live (non-tombstoned) registers.
    pub fn live_keys(&self, context: &ContextId) -> usize {
        self.contexts.get(context).map_or(0, |state| state.registers.values().filter(|r| r.value.is_some()).count())
    }

    /// Changes state behind the DAG's back, to provoke a silent divergence in tests.
    pub fn corrupt(&mut self, context: &ContextId, key: &[u8], value: &[u8]) {
        let state = self.contexts.entry(*context).or_default();
        state.registers.insert(
            key.to_vec(),
            Register { value: Some(value.to_vec()), stamp: (Hlc::default(), DeltaId::default()) },
        );
    }
}

impl Applier for KvCounterApplier {
    fn apply(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError> {
        // Decode everything before touching state, so a bad payload changes nothing.
        let ops: Vec<KvOp> =
            borsh::from_slice(&delta.payload).map_err(|error| ApplyError::InvalidPayload(error.to_string()))?;
        let state = self.contexts.entry(*context).or_default();
        let stamp = (delta.hlc, delta.id);
        for op in ops {
            match op {
                KvOp::Set { key, value } => write_register(state, key, Some(value), stamp),
                KvOp::Remove { key } => write_register(state, key, None, stamp),
                KvOp::Add { counter, amount } => {
                    let part = state.counters.entry(counter).or_default().entry(delta.author).or_default();
                    *part = part.wrapping_add(amount);
                }
            }
        }
        Ok(())
    }

    fn root_hash(&self, context: &ContextId) -> RootHash {
        self.contexts.get(context).map_or(RootHash::default(), KvState::root)
    }

    fn export_state(&self, context: &ContextId, max_bytes: usize) -> Result<Vec<u8>, ApplyError> {
        let empty = KvState::default();
        let bytes = borsh::to_vec(self.contexts.get(context).unwrap_or(&empty)).expect("encoding never fails");
        ApplyError::within_snapshot_bound(bytes, max_bytes)
    }

    fn import_state(
        &mut self,
        context: &ContextId,
        state: &[u8],
        expected_root: &RootHash,
        max_stamp_ms: u64,
    ) -> Result<Option<Hlc>, ApplyError> {
        let imported: KvState =
            borsh::from_slice(state).map_err(|error| ApplyError::InvalidPayload(error.to_string()))?;
        for (index, register) in imported.registers.values().enumerate() {
            let ahead_ms = register.stamp.0.physical_ms.saturating_sub(max_stamp_ms);
            if ahead_ms > 0 {
                let fault = SnapshotEntryFault::StampAhead { record: StateRecord::Slot, ahead_ms };
                return Err(ApplyError::InvalidSnapshotEntry { index, fault });
            }
        }
        let actual = imported.root();
        if actual != *expected_root {
            return Err(ApplyError::RootMismatch { expected: *expected_root, actual });
        }
        let latest = imported.registers.values().map(|register| register.stamp.0).max();
        self.contexts.insert(*context, imported);
        Ok(latest)
    }
}

fn write_register(state: &mut KvState, key: Vec<u8>, value: Option<Vec<u8>>, stamp: (Hlc, DeltaId)) {
    let register = state.registers.entry(key).or_default();
    if stamp > register.stamp {
        *register = Register { value, stamp };
    }
}

/// Wraps an applier and fails chosen deltas until told to stop, to test quarantine.
#[derive(Debug, Default, Clone)]
pub struct FailingApplier<A> {
    /// The real applier.
    pub inner: A,
    /// Deltas whose application fails while listed.
    pub failing: IdSet<DeltaId>,
    /// Every application attempt, in order.
    pub attempts: Vec<DeltaId>,
}

impl<A: Applier> Applier for FailingApplier<A> {
    fn apply(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError> {
        self.attempts.push(delta.id);
        if self.failing.contains(&delta.id) {
            return Err(ApplyError::Storage(format!("injected failure for {}", delta.id)));
        }
        self.inner.apply(context, delta)
    }

    fn root_hash(&self, context: &ContextId) -> RootHash {
        self.inner.root_hash(context)
    }

    fn export_state(&self, context: &ContextId, max_bytes: usize) -> Result<Vec<u8>, ApplyError> {
        self.inner.export_state(context, max_bytes)
    }

    fn import_state(
        &mut self,
        context: &ContextId,
        state: &[u8],
        expected_root: &RootHash,
        max_stamp_ms: u64,
    ) -> Result<Option<Hlc>, ApplyError> {
        self.inner.import_state(context, state, expected_root, max_stamp_ms)
    }
}
