//! Exactly-once event handlers. When a remote delta that carries events is applied, one job
//! per event is written to the context's meta store in the same commit. A job leaves the store
//! only when the handler's own delta (which names the job) is applied, or at once if the
//! handler wrote nothing. After a restart the remaining jobs are exactly the ones whose effects
//! are not yet in state, so each handler's writes land once.

use borsh::{BorshDeserialize, BorshSerialize};
use rhizome_core::{AuthorKey, DeltaId};

/// A handler run owed for one event of one applied remote delta.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HandlerJob {
    /// The delta that carried the event.
    pub delta: DeltaId,
    /// The event's index in that delta.
    pub index: u32,
    /// The delta's author.
    pub author: AuthorKey,
    /// The event's kind.
    pub kind: String,
    /// The event's data.
    pub data: Vec<u8>,
}

/// What the guest's handler export reads as its input (borsh).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HandlerInput {
    /// The event's kind.
    pub kind: String,
    /// The event's data.
    pub data: Vec<u8>,
    /// The delta that carried it.
    pub delta: [u8; 32],
    /// Who wrote that delta.
    pub author: [u8; 32],
    /// The event's index in the delta.
    pub index: u32,
}

/// The meta-store key of a job: ordered by delta id, then index.
pub(crate) fn job_key(delta: &DeltaId, index: u32) -> Vec<u8> {
    event_key(JOB_PREFIX[0], delta, index)
}

/// `namespace ‖ delta id ‖ event index (big-endian)`.
fn event_key(namespace: u8, delta: &DeltaId, index: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 32 + 4);
    key.push(namespace);
    key.extend_from_slice(delta.as_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The prefix of every job key.
pub(crate) const JOB_PREFIX: &[u8] = b"h";

/// The key recording that the events of (delta, index) were queued once. Kept after the job
/// is done, so re-applying the delta (after a snapshot, say) never queues its handler again.
pub(crate) fn queued_key(delta: &DeltaId, index: u32) -> Vec<u8> {
    event_key(b'q', delta, index)
}
