//! The boundary between the protocol core and application state.

use crate::delta::CausalDelta;
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
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::UnknownContext => "unknown_context",
            Self::NoStateStore => "no_state_store",
            Self::CorruptState(_) => "corrupt_state",
            Self::Storage(_) => "storage",
            Self::RootMismatch { .. } => "root_mismatch",
            Self::StateTooLarge { .. } => "state_too_large",
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

/// Application state for every context a node replicates.
///
/// Contract, which the DAG relies on:
/// - `apply` is atomic: on `Err` the context's state (and root) is exactly as before.
/// - Applying the same set of deltas in any causal order gives the same root (CRDT semantics).
/// - `import_state` builds the new state aside and replaces the old one only if it hashes to
///   `expected_root`; otherwise it returns [`ApplyError::RootMismatch`] and changes nothing.
/// - Nothing here may read a clock or OS randomness; everything it needs is in the delta.
pub trait Applier {
    /// Applies one delta's payload to its context's state.
    fn apply(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError>;

    /// The context's current state root.
    fn root_hash(&self, context: &ContextId) -> RootHash;

    /// The context's whole state, as opaque bytes that `import_state` accepts.
    fn export_state(&self, context: &ContextId, max_bytes: usize) -> Result<Vec<u8>, ApplyError>;

    /// Replaces the context's state with `state` if it hashes to `expected_root`.
    fn import_state(&mut self, context: &ContextId, state: &[u8], expected_root: &RootHash) -> Result<(), ApplyError>;
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
