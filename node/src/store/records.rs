//! What the node stores besides state, in borsh.

use borsh::{BorshDeserialize, BorshSerialize};
use rhizome_core::dag::RestoredEntry;
use rhizome_core::delta::DeltaHeader;
use rhizome_core::{AuthorKey, CausalDelta};
use rhizome_runtime::AppId;
use std::sync::Arc;

/// A joined context.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ContextRecord {
    /// The app it runs.
    pub app: AppId,
    /// Keys to sync with until the context's DAG names this node a member (whoever invited
    /// it); the members themselves are in the DAG.
    pub bootstrap: Vec<AuthorKey>,
}

/// One applied DAG entry.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub(crate) enum StoredEntry {
    /// With its body.
    Body(CausalDelta),
    /// Only its place in the DAG (it came inside an adopted snapshot).
    Structure(DeltaHeader),
}

impl StoredEntry {
    pub(crate) fn into_restored(self) -> RestoredEntry {
        match self {
            Self::Body(delta) => RestoredEntry::Body(Arc::new(delta)),
            Self::Structure(entry) => RestoredEntry::Structure(entry),
        }
    }
}
