//! The total order over writes: the delta's HLC, then its author, then the action's index.

use borsh::{BorshDeserialize, BorshSerialize};
use rhizome_core::{AuthorKey, Hlc};

/// When and by whom one action was written. Unique per action, totally ordered, and the
/// same on every replica, because it is derived from the delta that carries the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
pub struct Stamp {
    /// The delta's HLC.
    pub hlc: Hlc,
    /// The delta's author.
    pub author: AuthorKey,
    /// The action's position in the delta.
    pub index: u32,
}
