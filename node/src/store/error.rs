//! Why the store failed, by cause. The node stops on any of them (its memory is ahead of its
//! disk); the cause says whether the disk, the data or the node's own call order is to blame.

use rhizome_core::ContextId;

/// A storage failure. The node stops on one: its memory is ahead of its disk.
///
/// redb's errors are kept as their messages, by kind, so the error stays `Clone` and `Eq` for
/// the node's failure types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// redb could not begin a read or write transaction.
    #[error("storage: beginning a transaction: {0}")]
    Transaction(String),
    /// redb could not open a table.
    #[error("storage: opening a table: {0}")]
    Table(String),
    /// A read or write inside a transaction failed (I/O, a corrupt page).
    #[error("storage: {0}")]
    Storage(String),
    /// A write transaction did not commit: nothing of it is durable.
    #[error("storage: committing: {0}")]
    Commit(String),
    /// A stored row does not decode, or a row to store did not encode.
    #[error("storage: a row does not encode or decode: {0}")]
    Encoding(String),
    /// A commit began while another was in flight (the node commits one at a time).
    #[error("storage: a commit is already in flight")]
    CommitInFlight,
    /// The state table was read before it was opened.
    #[error("storage: the state table is not open")]
    StateTableClosed,
    /// The committer stopped without answering a commit, so its outcome is unknown.
    #[error("storage: the committer stopped without answering a commit")]
    CommitterGone,
    /// A stored row is not where its content says it belongs: its key is malformed, or names
    /// another delta or context than the row holds.
    #[error("storage: a {table} row of context {context} is misfiled ({problem})")]
    Misfiled {
        /// The table.
        table: StoredTable,
        /// The context whose key range holds the row.
        context: ContextId,
        /// What does not match.
        problem: Misfiling,
    },
    /// A context's DAG rows are not numbered 0, 1, 2...: a row was lost or written twice.
    #[error("storage: context {context}'s DAG row {found} stands where row {expected} belongs")]
    DagGap {
        /// The context.
        context: ContextId,
        /// The sequence number the next row should have.
        expected: u64,
        /// The one it has.
        found: u64,
    },
    /// A context holds another number of DAG rows than was committed with them.
    #[error("storage: context {context} has {found} DAG rows, {stored} were committed")]
    AppliedCountMismatch {
        /// The context.
        context: ContextId,
        /// The count committed with the rows.
        stored: u64,
        /// The rows found.
        found: u64,
    },
    /// A committed row reads back other than it was written (checked after every commit in
    /// debug and simulator builds).
    #[error("storage: a committed {table} row reads back other than it was written")]
    ReadBack {
        /// The table.
        table: StoredTable,
    },
}

/// The node's tables, as [`StoreError`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum StoredTable {
    /// Replicated state and runtime meta.
    #[error("state")]
    State,
    /// Applied DAG entries.
    #[error("dag")]
    Dag,
    /// Pending deltas.
    #[error("pending")]
    Pending,
    /// Joined contexts.
    #[error("contexts")]
    Contexts,
    /// Installed apps.
    #[error("apps")]
    Apps,
    /// Each context's DAG row count.
    #[error("applied")]
    Applied,
    /// Invitation ids already joined with.
    #[error("used_invitations")]
    UsedInvitations,
}

/// How a stored row is misfiled ([`StoreError::Misfiled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Misfiling {
    /// The key has the wrong length for its table.
    #[error("a key of the wrong length")]
    KeyLength,
    /// The delta's id is not the one its key names.
    #[error("the delta's id differs from its key")]
    DeltaId,
    /// The delta belongs to another context.
    #[error("the delta belongs to another context")]
    Context,
}

impl StoreError {
    /// A short stable label, for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Transaction(_) => "transaction",
            Self::Table(_) => "table",
            Self::Storage(_) => "storage",
            Self::Commit(_) => "commit",
            Self::Encoding(_) => "encoding",
            Self::CommitInFlight => "commit_in_flight",
            Self::StateTableClosed => "state_table_closed",
            Self::CommitterGone => "committer_gone",
            Self::Misfiled { .. } => "misfiled",
            Self::DagGap { .. } => "dag_gap",
            Self::AppliedCountMismatch { .. } => "applied_count_mismatch",
            Self::ReadBack { .. } => "read_back",
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(error: redb::TransactionError) -> Self {
        Self::Transaction(error.to_string())
    }
}

impl From<redb::TableError> for StoreError {
    fn from(error: redb::TableError) -> Self {
        Self::Table(error.to_string())
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(error: redb::StorageError) -> Self {
        Self::Storage(error.to_string())
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(error: redb::CommitError) -> Self {
        Self::Commit(error.to_string())
    }
}

/// borsh reports encoding and decoding failures as I/O errors.
impl From<std::io::Error> for StoreError {
    fn from(error: std::io::Error) -> Self {
        Self::Encoding(error.to_string())
    }
}

/// A stored key of the wrong length (a context id is 32 bytes).
impl From<std::array::TryFromSliceError> for StoreError {
    fn from(error: std::array::TryFromSliceError) -> Self {
        Self::Encoding(format!("a key of the wrong length: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_error_has_its_own_snake_case_label() {
        let all = [
            StoreError::Transaction(String::new()),
            StoreError::Table(String::new()),
            StoreError::Storage(String::new()),
            StoreError::Commit(String::new()),
            StoreError::Encoding(String::new()),
            StoreError::CommitInFlight,
            StoreError::StateTableClosed,
            StoreError::CommitterGone,
            StoreError::Misfiled {
                table: StoredTable::Pending,
                context: ContextId::hash_of(b"c"),
                problem: Misfiling::DeltaId,
            },
            StoreError::DagGap { context: ContextId::hash_of(b"c"), expected: 1, found: 2 },
            StoreError::AppliedCountMismatch { context: ContextId::hash_of(b"c"), stored: 2, found: 1 },
            StoreError::ReadBack { table: StoredTable::State },
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(StoreError::label).collect();
        assert_eq!(labels.len(), all.len());
        assert!(labels.iter().all(|label| label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn a_stored_row_that_does_not_decode_is_an_encoding_error() {
        let error = StoreError::from(borsh::from_slice::<u64>(&[1]).unwrap_err());
        assert_eq!(error.label(), "encoding");
    }
}
