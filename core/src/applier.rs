//! The boundary between the protocol core and application state.

use crate::delta::CausalDelta;
use crate::hlc::Hlc;
use crate::ids::{ContextId, RootHash};

/// Why the applier could not apply a delta or a snapshot. Each reason is its own variant with
/// a stable [`ApplyError::label`]: it reaches events ([`crate::Event::DeltaQuarantined`]),
/// sync failures and, through the runtime, the API's error codes, so a reader matches on the
/// type, never on a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The payload could not be decoded or is not valid for this application.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// The applier holds no state for this context (it was never created or restored here).
    #[error("application failed: unknown context")]
    UnknownContext,
    /// The context is known but its state store is not attached (taken out for a restart).
    #[error("application failed: state store missing")]
    NoStateStore,
    /// A stored state record does not decode: the application's own state is corrupt.
    #[error("application failed: corrupt {0}")]
    CorruptState(StateRecord),
    /// The state backend refused the batch; nothing of it was applied. The backend's own
    /// words are kept for the operator (redb's errors have no stable kinds to map).
    #[error("application failed: storage: {0}")]
    Storage(String),
    /// An imported snapshot does not hash to the root it claims.
    #[error("snapshot root {actual} does not match checkpoint root {expected}")]
    RootMismatch {
        /// The root the checkpoint announced.
        expected: RootHash,
        /// The root the imported state hashes to.
        actual: RootHash,
    },
    /// An entry of an imported snapshot's state is not one this application could have
    /// written; nothing was replaced.
    #[error("snapshot state entry {index}: {fault}")]
    InvalidSnapshotEntry {
        /// The entry's position in the snapshot's state.
        index: usize,
        /// What is wrong with it.
        fault: SnapshotEntryFault,
    },
    /// The payload could not be opened with the context keys held (the store's error, before
    /// the applier is called). The delta waits in quarantine: a key that a later membership
    /// delta grants opens it then.
    #[error("payload not opened: {0}")]
    Sealed(crate::seal::KeyringOpenError),
    /// An action of the delta refers to a stamp (a set tag it retires or removes, a list node
    /// it anchors to or removes) that is not earlier than the action's own stamp. A writer can
    /// only name writes it has seen, which its clock had passed; a reference to a later stamp
    /// would let a payload pre-empt writes that do not exist yet (a tombstone waiting for a
    /// future tag), so every replica refuses it alike.
    #[error("action {action} refers to a stamp not earlier than its own")]
    ReferenceNotEarlier {
        /// The action's position in the delta.
        action: u32,
    },
    /// The exported state would be larger than the snapshot bound.
    #[error("state of {bytes} bytes is over the snapshot limit of {max}")]
    StateTooLarge {
        /// State size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

impl ApplyError {
    /// `state` as an export, or [`ApplyError::StateTooLarge`] if it is over `max_bytes`: the
    /// bound every [`Applier::export_state`] enforces.
    pub fn within_snapshot_bound(state: Vec<u8>, max_bytes: usize) -> Result<Vec<u8>, ApplyError> {
        if state.len() > max_bytes {
            return Err(ApplyError::StateTooLarge { bytes: state.len(), max: max_bytes });
        }
        Ok(state)
    }

    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::UnknownContext => "unknown_context",
            Self::NoStateStore => "no_state_store",
            Self::CorruptState(_) => "corrupt_state",
            Self::Storage(_) => "storage",
            Self::RootMismatch { .. } => "root_mismatch",
            Self::InvalidSnapshotEntry { .. } => "invalid_snapshot_entry",
            Self::StateTooLarge { .. } => "state_too_large",
            Self::Sealed(error) => error.label(),
            Self::ReferenceNotEarlier { .. } => "reference_not_earlier",
        }
    }
}

/// Which kind of stored state record failed to decode ([`ApplyError::CorruptState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateRecord {
    /// A value slot (register, counter share, set tag, list element).
    #[error("state slot")]
    Slot,
    /// A removal marker (the stamp below which a removed path's older writes stay hidden).
    #[error("removal marker")]
    RemovalMarker,
}

/// What is wrong with one entry of an imported snapshot's state
/// ([`ApplyError::InvalidSnapshotEntry`]). A snapshot comes from one peer; its state must look,
/// entry by entry, like state that deltas could have made before it may replace ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotEntryFault {
    /// The key is in no state namespace, or is not a path's key.
    #[error("a key that names no state record")]
    BadKey,
    /// The value does not decode as its record.
    #[error("a {0} that does not decode")]
    Undecodable(StateRecord),
    /// The value decodes, but is not the encoding this application writes (merging would
    /// rewrite it, so the root would change under nobody's delta).
    #[error("a {0} in a non-canonical encoding")]
    NonCanonical(StateRecord),
    /// A stamp in the record lies beyond the clock bound: the HLC drift bound refuses such a
    /// delta, and a stamp far ahead would outrank every honest write to its path for as long.
    #[error("a {record} stamped {ahead_ms} ms beyond the clock bound")]
    StampAhead {
        /// The record.
        record: StateRecord,
        /// How far beyond the bound its latest stamp is.
        ahead_ms: u64,
    },
}

/// Application state for every context a node replicates.
///
/// Contract, which the DAG relies on:
/// - `apply` is atomic: on `Err` the context's state (and root) is exactly as before.
/// - Applying the same set of deltas in any causal order gives the same root (CRDT semantics).
/// - `import_state` builds the new state aside and replaces the old one only if every entry is
///   one the application could have written (it decodes canonically, no stamp in it is later
///   than `max_stamp_ms`) and it hashes to `expected_root`; otherwise it returns
///   [`ApplyError::InvalidSnapshotEntry`] or [`ApplyError::RootMismatch`] and changes nothing.
///   On success it returns the latest HLC of any stamp in the new state, which the node's clock
///   then observes: the node's next write must order after everything it imported, or it
///   would lose every LWW race against the snapshot and could not refer to its writes.
/// - Nothing here may read a clock or OS randomness; everything it needs is in the delta.
pub trait Applier {
    /// Applies one delta's payload to its context's state.
    fn apply(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError>;

    /// The context's current state root.
    fn root_hash(&self, context: &ContextId) -> RootHash;

    /// The context's whole state, as opaque bytes that `import_state` accepts.
    fn export_state(&self, context: &ContextId, max_bytes: usize) -> Result<Vec<u8>, ApplyError>;

    /// Replaces the context's state with `state` if every entry is valid and no stamp's
    /// physical time is after `max_stamp_ms` (Unix milliseconds: the importer's wall clock plus
    /// the HLC drift bound), and if it hashes to `expected_root`. Returns the latest HLC of any
    /// stamp in the imported state (`None` if it holds none).
    fn import_state(
        &mut self,
        context: &ContextId,
        state: &[u8],
        expected_root: &RootHash,
        max_stamp_ms: u64,
    ) -> Result<Option<Hlc>, ApplyError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_apply_error_has_its_own_snake_case_label() {
        let all = [
            ApplyError::InvalidPayload(String::new()),
            ApplyError::UnknownContext,
            ApplyError::NoStateStore,
            ApplyError::CorruptState(StateRecord::Slot),
            ApplyError::Storage(String::new()),
            ApplyError::RootMismatch { expected: RootHash::default(), actual: RootHash::default() },
            ApplyError::StateTooLarge { bytes: 2, max: 1 },
            ApplyError::InvalidSnapshotEntry { index: 0, fault: SnapshotEntryFault::BadKey },
            ApplyError::ReferenceNotEarlier { action: 0 },
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(ApplyError::label).collect();
        assert_eq!(labels.len(), all.len(), "two errors share a label: {labels:?}");
        assert!(labels.iter().all(|label| label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn a_corrupt_record_is_named_in_the_message() {
        assert_eq!(
            ApplyError::CorruptState(StateRecord::RemovalMarker).to_string(),
            "application failed: corrupt removal marker"
        );
        assert_eq!(ApplyError::NoStateStore.to_string(), "application failed: state store missing");
    }
}
