//! The database layout. Every key that belongs to a context starts with its 32-byte id, so a
//! context's rows are one range.

use redb::TableDefinition;
use rhizome_core::{ContextId, DeltaId};

/// Replicated state and runtime meta (handler jobs): `context ‖ key → value`.
pub(crate) const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
/// Applied DAG entries in application order: `context ‖ seq (u64 BE) → StoredEntry`.
pub(crate) const DAG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("dag");
/// Pending deltas: `context ‖ delta id → CausalDelta`.
pub(crate) const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
/// Joined contexts: `context → ContextRecord`.
pub(crate) const CONTEXTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contexts");
/// Installed app modules: `app id → wasm bytes`.
pub(crate) const APPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("apps");
/// How many DAG rows each context has, written with the rows it counts: `context → u64 (BE)`.
/// A restart compares it with the rows it finds, so a lost or extra DAG row is an error at
/// start, not a silently shorter history. A database from before this table has no count, and
/// nothing to compare, until its next commit writes one.
pub(crate) const APPLIED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("applied");

/// Invitation ids this node has joined with, so a token is accepted once, across restarts:
/// `invitation id (16 bytes) → expires_at_ms (u64 BE)`. The expiry lets the node forget ids
/// that can no longer be replayed (an expired token is refused before its id is looked up).
pub(crate) const USED_INVITATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("used_invitations");

/// Bytes of a context id, the prefix of every context's keys.
pub(crate) const CONTEXT_KEY_BYTES: usize = 32;
/// Bytes of a DAG key: the context id, then the sequence number (u64 big-endian).
pub(crate) const DAG_KEY_BYTES: usize = CONTEXT_KEY_BYTES + 8;
/// Bytes of a pending key: the context id, then the delta id.
pub(crate) const PENDING_KEY_BYTES: usize = CONTEXT_KEY_BYTES + 32;

pub(crate) fn context_key(context: &ContextId, suffix: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(32 + suffix.len());
    key.extend_from_slice(context.as_bytes());
    key.extend_from_slice(suffix);
    key
}

pub(crate) fn dag_key(context: &ContextId, seq: u64) -> Vec<u8> {
    context_key(context, &seq.to_be_bytes())
}

/// The sequence number of a DAG key, if it has a DAG key's length.
pub(crate) fn dag_seq(key: &[u8]) -> Option<u64> {
    let seq: [u8; 8] = key.get(CONTEXT_KEY_BYTES..)?.try_into().ok()?;
    (key.len() == DAG_KEY_BYTES).then_some(u64::from_be_bytes(seq))
}

pub(crate) fn pending_key(context: &ContextId, id: &DeltaId) -> Vec<u8> {
    context_key(context, id.as_bytes())
}

/// The exclusive end of a context's key range: the id plus one, as a 33-byte key that sorts
/// after every `id ‖ suffix`.
pub(crate) fn context_range_end(context: &ContextId) -> Vec<u8> {
    let mut end = context.as_bytes().to_vec();
    end.push(0xff);
    end.extend_from_slice(&[0xff; 64]);
    end
}
