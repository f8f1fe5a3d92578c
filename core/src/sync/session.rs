//! A sync session with one peer for one context, as an explicit state machine.
//!
//! ```text
//!  Deltas mode:   AwaitingHeads ──heads we lack──▶ FetchingDeltas ──last page──▶ done
//!                      │ nothing missing ─────────────────────────────────────▶ done
//!  (a session whose reason already shows the peer ahead starts in FetchingDeltas, with the
//!   peer's heads as the target)
//!                      │ fresh node / gap over threshold / peer says so
//!                      ▼
//!  Snapshot mode: AwaitingCheckpoint ──checkpoint──▶ FetchingSnapshot ──last page, root ok──▶ done
//! ```
//! Any error response, transport failure or timeout fails the session; the tracker backs off.
//! The node drives the transitions (it owns the DAG and the applier); this module holds the
//! states and the snapshot assembly they carry.

use super::snapshot::SnapshotAssembly;
use crate::dag::SinceCursor;
use crate::ids::{ContextId, DeltaId, PeerId};
use crate::time::Timestamp;

/// How a session transfers state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Heads exchange, then missing deltas in pages.
    Deltas,
    /// A frozen copy of the peer's state, verified against its root.
    Snapshot,
}

/// Why a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncReason {
    /// The periodic sync tick.
    Periodic,
    /// A heartbeat showed heads we lack.
    HeartbeatAhead,
    /// A heartbeat showed equal heads but a different root.
    Divergence,
    /// A member peer connected (a new link, or one healed after a partition).
    PeerConnected,
    /// The previous session brought deltas, so the world is moving: ask another peer at once.
    FollowUp,
    /// A peer asking us for deltas named ids we lack: sync back from it.
    Reciprocal,
    /// A delta with missing parents arrived for a context that holds nothing yet (a node that
    /// just joined): catch up through a sync, which takes a snapshot when the history is long,
    /// instead of pulling the whole history as parents one page at a time.
    FreshContext,
    /// A state adopted on one member's word was contradicted by another member's attestation:
    /// take that member's snapshot instead.
    SnapshotRepair,
}

impl SyncReason {
    /// True if the reason already says the peer holds more than we do, so the session may
    /// skip the heads exchange and ask for "everything past our heads" at once (when the
    /// context holds history). Periodic and divergence syncs have no such evidence.
    pub fn fetches_directly(self) -> bool {
        matches!(
            self,
            Self::HeartbeatAhead | Self::PeerConnected | Self::FollowUp | Self::Reciprocal | Self::FreshContext
        )
    }
}

/// Where a session is.
#[derive(Debug, Clone)]
pub enum SessionPhase {
    /// Sent `Heads`, waiting.
    AwaitingHeads,
    /// Fetching deltas reachable from `target` in pages.
    FetchingDeltas {
        /// The peer's heads when the session began; the fetch ends there.
        target: Vec<DeltaId>,
        /// Resume point of the page requested last.
        after: Option<SinceCursor>,
    },
    /// Sent `SnapshotBegin`, waiting.
    AwaitingCheckpoint,
    /// Receiving snapshot pages.
    FetchingSnapshot(Box<SnapshotAssembly>),
}

impl SessionPhase {
    /// True while a snapshot is being requested or received, when gossip must be buffered.
    pub fn is_snapshot(&self) -> bool {
        matches!(self, Self::AwaitingCheckpoint | Self::FetchingSnapshot(_))
    }

    /// A short name for logs and events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AwaitingHeads => "awaiting_heads",
            Self::FetchingDeltas { .. } => "fetching_deltas",
            Self::AwaitingCheckpoint => "awaiting_checkpoint",
            Self::FetchingSnapshot(_) => "fetching_snapshot",
        }
    }
}

/// One running session.
#[derive(Debug, Clone)]
pub struct SyncSession {
    /// The context synced.
    pub context: ContextId,
    /// The peer synced with.
    pub peer: PeerId,
    /// Why it started.
    pub reason: SyncReason,
    /// How it transfers state now (a delta session may fall back to a snapshot).
    pub mode: SyncMode,
    /// Where it is.
    pub phase: SessionPhase,
    /// When it started.
    pub started_at: Timestamp,
    /// Deltas received so far.
    pub deltas_received: u64,
    /// When the session chose a snapshot over deltas the peer offered (the gap over the
    /// threshold): those deltas' target, fetched instead if too few members vouch for the
    /// snapshot.
    pub deltas_target: Option<Vec<DeltaId>>,
    /// A snapshot of this session was declined for want of vouchers: read the gap as deltas
    /// to the end, and take no snapshot on the peer's word again.
    pub snapshot_declined: bool,
}
