//! The boundary between the protocol core and application state.

use crate::delta::CausalDelta;
use crate::ids::{ContextId, RootHash};

/// Why the applier could not apply a delta or a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The payload could not be decoded or is not valid for this application.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// The application refused or failed (trap, out of fuel, storage error...).
    #[error("application failed: {0}")]
    Failed(String),
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
