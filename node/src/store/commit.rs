//! One commit: the state writes staged since the last one and the rows of a [`CommitBatch`],
//! written in one durable write transaction by a [`CommitJob`], which may run on another thread
//! while the node stages the next batch (see [`Committer`]).

use super::error::StoredTable;
use super::read_back::Written;
use super::tables::{
    context_key, context_range_end, dag_key, dag_seq, pending_key, APPLIED, APPS, CONTEXTS, DAG, PENDING, STATE,
    USED_INVITATIONS,
};
use super::{ContextRecord, Overlay, StoreError, StoredEntry};
use redb::ReadableTable;
use rhizome_core::{CausalDelta, ContextId, DeltaId};
use rhizome_runtime::AppId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What a commit ends with.
pub type CommitResult = Result<CommitStats, StoreError>;

/// Everything one commit changes, besides the staged state writes.
#[derive(Debug, Default)]
pub(crate) struct CommitBatch {
    /// Applied deltas to append to a context's DAG, in application order.
    pub(crate) dag_appends: Vec<(ContextId, StoredEntry)>,
    /// Contexts whose whole DAG is rewritten (after a snapshot): the entries, parents first.
    pub(crate) dag_rewrites: Vec<(ContextId, Vec<StoredEntry>)>,
    /// Pending rows to write (`Some`: the delta went pending) or delete (`None`: it left the
    /// queue). The last change of a key wins, so a delta released and pended again within one
    /// batch ends up stored, and one pended and released ends up gone.
    pub(crate) pending: BTreeMap<(ContextId, DeltaId), Option<Arc<CausalDelta>>>,
    /// Contexts joined.
    pub(crate) contexts: Vec<(ContextId, ContextRecord)>,
    /// Apps installed.
    pub(crate) apps: Vec<(AppId, Vec<u8>)>,
    /// Invitation ids to record as used (`Some(expires_at_ms)`) or forget (`None`: pruned past
    /// their expiry).
    pub(crate) used_invitations: BTreeMap<[u8; 16], Option<u64>>,
    /// The batch must be committed now: it holds something we authored or promised (a local
    /// delta, a handler run). Otherwise a batch of only what peers sent may wait in memory
    /// for a later commit: a crash loses it, and sync fetches it again.
    pub(crate) durable: bool,
}

impl CommitBatch {
    /// Rows the batch writes (a DAG rewrite counts its entries).
    pub(crate) fn row_count(&self) -> usize {
        self.dag_appends.len()
            + self.dag_rewrites.iter().map(|(_, entries)| entries.len().max(1)).sum::<usize>()
            + self.pending.len()
            + self.contexts.len()
            + self.apps.len()
            + self.used_invitations.len()
    }
}

/// Figures of one commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// State keys written or deleted.
    pub state_writes: usize,
    /// DAG rows written.
    pub dag_rows: usize,
}

/// A commit ready to run: the database, the state writes it makes durable and the batch.
/// [`crate::Store`] keeps reading the state writes from memory until the commit has landed.
pub struct CommitJob {
    pub(super) db: Arc<redb::Database>,
    pub(super) state: Arc<Overlay>,
    pub(super) batch: CommitBatch,
}

impl std::fmt::Debug for CommitJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitJob")
            .field("state_writes", &self.state.len())
            .field("rows", &self.batch.row_count())
            .finish_non_exhaustive()
    }
}

impl CommitJob {
    /// Writes the job in one durable write transaction, with each touched context's DAG row
    /// count; in debug and simulator builds, then reads it all back (see [`Written`]). On error
    /// nothing of it is durable.
    pub fn run(self) -> CommitResult {
        let Self { db, state: overlay, batch } = self;
        let mut stats = CommitStats { state_writes: overlay.len(), dag_rows: 0 };
        let mut written = Written::default();
        let txn = db.begin_write()?;
        {
            let mut state = txn.open_table(STATE)?;
            for (key, value) in overlay.iter() {
                match value {
                    Some(value) => state.insert(key.as_slice(), value.as_slice()).map(drop),
                    None => state.remove(key.as_slice()).map(drop),
                }?;
            }
            let mut dag = txn.open_table(DAG)?;
            let mut next_seq: BTreeMap<ContextId, u64> = BTreeMap::new();
            for (context, entries) in &batch.dag_rewrites {
                let start = context_key(context, &[]);
                let end = context_range_end(context);
                dag.retain_in(start.as_slice()..end.as_slice(), |_, _| false)?;
                for (seq, entry) in entries.iter().enumerate() {
                    let (key, bytes) = (dag_key(context, seq as u64), borsh::to_vec(entry)?);
                    dag.insert(key.as_slice(), bytes.as_slice())?;
                    written.note(StoredTable::Dag, &key, Some(&bytes));
                }
                stats.dag_rows += entries.len();
                next_seq.insert(*context, entries.len() as u64);
            }
            let rewritten: BTreeSet<ContextId> = batch.dag_rewrites.iter().map(|(context, _)| *context).collect();
            for (context, entry) in &batch.dag_appends {
                if rewritten.contains(context) {
                    continue;
                }
                let seq = match next_seq.get_mut(context) {
                    Some(seq) => seq,
                    None => {
                        let start = context_key(context, &[]);
                        let end = context_range_end(context);
                        let last = dag.range(start.as_slice()..end.as_slice())?.next_back();
                        let next = match last {
                            Some(row) => {
                                let (key, _) = row?;
                                let misfiled = StoreError::Misfiled {
                                    table: StoredTable::Dag,
                                    context: *context,
                                    problem: super::Misfiling::KeyLength,
                                };
                                dag_seq(key.value()).ok_or(misfiled)? + 1
                            }
                            None => 0,
                        };
                        next_seq.entry(*context).or_insert(next)
                    }
                };
                let (key, bytes) = (dag_key(context, *seq), borsh::to_vec(entry)?);
                dag.insert(key.as_slice(), bytes.as_slice())?;
                written.note(StoredTable::Dag, &key, Some(&bytes));
                *seq += 1;
                stats.dag_rows += 1;
            }
            // The count goes with the rows it counts: a restart that finds another number of
            // rows knows some were lost.
            let mut applied = txn.open_table(APPLIED)?;
            for (context, count) in &next_seq {
                let count = count.to_be_bytes();
                applied.insert(context.as_bytes().as_slice(), count.as_slice())?;
                written.note(StoredTable::Applied, context.as_bytes(), Some(&count));
            }
            let mut pending = txn.open_table(PENDING)?;
            for ((context, id), change) in &batch.pending {
                match change {
                    Some(delta) => {
                        let (key, bytes) = (pending_key(context, id), borsh::to_vec(delta.as_ref())?);
                        pending.insert(key.as_slice(), bytes.as_slice())?;
                        written.note(StoredTable::Pending, &key, Some(&bytes));
                    }
                    None => {
                        let key = pending_key(context, id);
                        pending.remove(key.as_slice())?;
                        written.note(StoredTable::Pending, &key, None);
                    }
                }
            }
            let mut contexts = txn.open_table(CONTEXTS)?;
            for (context, record) in &batch.contexts {
                let bytes = borsh::to_vec(record)?;
                contexts.insert(context.as_bytes().as_slice(), bytes.as_slice())?;
                written.note(StoredTable::Contexts, context.as_bytes(), Some(&bytes));
            }
            let mut apps = txn.open_table(APPS)?;
            for (app, module) in &batch.apps {
                apps.insert(app.0.as_slice(), module.as_slice())?;
                written.note(StoredTable::Apps, &app.0, Some(module));
            }
            let mut used = txn.open_table(USED_INVITATIONS)?;
            for (id, change) in &batch.used_invitations {
                match change {
                    Some(expires_at_ms) => {
                        let expiry = expires_at_ms.to_be_bytes();
                        used.insert(id.as_slice(), expiry.as_slice())?;
                        written.note(StoredTable::UsedInvitations, id, Some(&expiry));
                    }
                    None => {
                        used.remove(id.as_slice())?;
                        written.note(StoredTable::UsedInvitations, id, None);
                    }
                }
            }
        }
        txn.commit()?;
        written.verify(&db, &overlay)?;
        Ok(stats)
    }
}

/// Where a node's commits run. The node starts one commit at a time and waits for it to land
/// (its answer on `done`) before it starts the next, staging new work meanwhile; replies,
/// events and messages that depend on a commit wait for it.
///
/// The node crate runs no threads of its own (the simulator must stay deterministic), so the
/// choice is the embedder's: [`InlineCommitter`] (the default, and the simulator's) runs the
/// commit at once on the node loop; the daemon runs it on a thread of its own.
pub trait Committer: Send + 'static {
    /// Runs `job` and sends its result on `done`.
    fn start(&mut self, job: CommitJob, done: oneshot::Sender<CommitResult>);
}

/// Runs each commit on the caller's thread, before `start` returns.
#[derive(Debug, Default, Clone, Copy)]
pub struct InlineCommitter;

impl Committer for InlineCommitter {
    fn start(&mut self, job: CommitJob, done: oneshot::Sender<CommitResult>) {
        // The receiver is the node loop, which holds it until the result arrives.
        let _ = done.send(job.run());
    }
}
