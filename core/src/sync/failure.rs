//! Why a sync session failed: one typed reason per way it can end badly, each with a stable
//! label for metrics and logs.

use crate::applier::ApplyError;
use crate::dag::AdoptError;
use crate::node::RequestFailure;
use crate::sync::snapshot::AssemblyError;
use crate::wire::{SyncErrorCode, WireError};

/// Why a sync session failed; reported in [`crate::Event::SyncFailed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFailure {
    /// A request got no answer before its deadline.
    #[error("timed out")]
    TimedOut,
    /// The transport gave up on a request.
    #[error("transport: {0:?}")]
    Transport(RequestFailure),
    /// The peer disconnected while a request was out.
    #[error("peer disconnected")]
    PeerDisconnected,
    /// The whole session ran past `max_sync_session_ms`.
    #[error("session deadline")]
    SessionDeadline,
    /// The answer did not decode.
    #[error("malformed response: {0}")]
    MalformedResponse(WireError),
    /// The peer answered with an error code.
    #[error("peer answered: {0}")]
    PeerError(SyncErrorCode),
    /// The answer does not fit the session's phase.
    #[error("unexpected response while {phase}")]
    UnexpectedResponse {
        /// The phase the session was in.
        phase: &'static str,
    },
    /// The node left the context while the session ran.
    #[error("context left")]
    ContextLeft,
    /// A deltas page with a next cursor carried nothing.
    #[error("peer sent an empty page that is not the last")]
    EmptyPage,
    /// A page carried a delta of another context.
    #[error("peer sent a delta of another context")]
    ForeignDelta,
    /// A snapshot checkpoint or page was refused while assembling.
    #[error("snapshot refused: {0}")]
    SnapshotAssembly(AssemblyError),
    /// The assembled snapshot's DAG checkpoint was refused.
    #[error("snapshot checkpoint refused: {0}")]
    SnapshotCheckpoint(AdoptError),
    /// The applier refused the snapshot's state.
    #[error("snapshot state refused: {0}")]
    SnapshotState(ApplyError),
    /// The applier's root after importing differs from the checkpoint's (its contract broke).
    #[error("applier root differs from the checkpoint root after import")]
    SnapshotRootMismatch,
    /// The peer answered that only a snapshot would do, but our own view does not say we are
    /// far behind (we hold history and know of no gap over the threshold): a member could
    /// otherwise send any replica to a snapshot of its choosing.
    #[error("peer demanded a snapshot ({0}) our own view does not call for")]
    SnapshotNotWarranted(SyncErrorCode),
    /// Too few distinct members vouched for the snapshot's exact heads and root.
    #[error("snapshot vouched for by {vouchers} members, {required} required")]
    SnapshotUnvouched {
        /// Distinct members that vouched (the server included).
        vouchers: usize,
        /// How many were required.
        required: usize,
    },
}

impl SyncFailure {
    /// A stable, machine-readable name.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TimedOut => "timed_out",
            Self::Transport(_) => "transport",
            Self::PeerDisconnected => "peer_disconnected",
            Self::SessionDeadline => "session_deadline",
            Self::MalformedResponse(_) => "malformed_response",
            Self::PeerError(_) => "peer_error",
            Self::UnexpectedResponse { .. } => "unexpected_response",
            Self::ContextLeft => "context_left",
            Self::EmptyPage => "empty_page",
            Self::ForeignDelta => "foreign_delta",
            Self::SnapshotAssembly(_) => "snapshot_assembly",
            Self::SnapshotCheckpoint(_) => "snapshot_checkpoint",
            Self::SnapshotState(_) => "snapshot_state",
            Self::SnapshotRootMismatch => "snapshot_root_mismatch",
            Self::SnapshotNotWarranted(_) => "snapshot_not_warranted",
            Self::SnapshotUnvouched { .. } => "snapshot_unvouched",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_own_label() {
        let all = [
            SyncFailure::TimedOut,
            SyncFailure::Transport(RequestFailure::Unreachable),
            SyncFailure::PeerDisconnected,
            SyncFailure::SessionDeadline,
            SyncFailure::MalformedResponse(WireError::Empty),
            SyncFailure::PeerError(SyncErrorCode::Busy),
            SyncFailure::UnexpectedResponse { phase: "awaiting heads" },
            SyncFailure::ContextLeft,
            SyncFailure::EmptyPage,
            SyncFailure::ForeignDelta,
            SyncFailure::SnapshotAssembly(AssemblyError::BadPage("empty page")),
            SyncFailure::SnapshotCheckpoint(AdoptError::HeadsMismatch),
            SyncFailure::SnapshotState(ApplyError::Storage("disk".to_owned())),
            SyncFailure::SnapshotRootMismatch,
            SyncFailure::SnapshotNotWarranted(SyncErrorCode::SnapshotRequired),
            SyncFailure::SnapshotUnvouched { vouchers: 1, required: 2 },
        ];
        let labels: std::collections::BTreeSet<&str> = all.iter().map(SyncFailure::label).collect();
        assert_eq!(labels.len(), all.len());
    }
}
