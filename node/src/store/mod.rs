//! The node's redb database: state, DAG, pending deltas, contexts and apps, all changed by one
//! write transaction per commit ([`Store::commit`]).
//!
//! The runtime writes state through [`ContextBackend`], which stages writes in memory; the
//! node folds them into the next commit together with the DAG rows of the same deltas. So a
//! delta, its DAG bookkeeping and its state changes become durable together or not at all.

mod backend;
mod records;
mod tables;

pub use backend::ContextBackend;
pub use records::ContextRecord;
pub(crate) use records::StoredEntry;

use redb::{ReadableDatabase, ReadableTable};
use rhizome_core::dag::RestoredEntry;
use rhizome_core::{CausalDelta, ContextId, DeltaId};
use rhizome_runtime::AppId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tables::{context_key, context_range_end, dag_key, pending_key, APPS, CONTEXTS, DAG, PENDING, STATE};

/// A storage failure. The node stops on one: its memory is ahead of its disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

fn storage(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

/// State writes staged since the last commit: `context ‖ key → value` (`None` deletes).
type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// One stored state row.
type KeyValue = (Vec<u8>, Vec<u8>);

struct Shared {
    db: redb::Database,
    overlay: Overlay,
}

/// A handle on the node's database, shared by the node loop and every context backend.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Everything one commit changes, besides the staged state writes.
#[derive(Debug, Default)]
pub(crate) struct CommitBatch {
    /// Applied deltas to append to a context's DAG, in application order.
    pub(crate) dag_appends: Vec<(ContextId, StoredEntry)>,
    /// Contexts whose whole DAG is rewritten (after a snapshot): the entries, parents first.
    pub(crate) dag_rewrites: Vec<(ContextId, Vec<StoredEntry>)>,
    /// Pending deltas to store.
    pub(crate) pending_puts: Vec<(ContextId, Arc<CausalDelta>)>,
    /// Pending deltas to forget (applied or evicted).
    pub(crate) pending_deletes: Vec<(ContextId, DeltaId)>,
    /// Contexts joined.
    pub(crate) contexts: Vec<(ContextId, ContextRecord)>,
    /// Apps installed.
    pub(crate) apps: Vec<(AppId, Vec<u8>)>,
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
            + self.pending_puts.len()
            + self.pending_deletes.len()
            + self.contexts.len()
            + self.apps.len()
    }
}

/// What a restart finds in the database.
#[derive(Debug, Default)]
pub struct Restored {
    /// Installed app modules.
    pub apps: Vec<Vec<u8>>,
    /// Joined contexts, each with its DAG (parents first) and pending deltas.
    pub contexts: Vec<RestoredContext>,
}

/// One stored context.
#[derive(Debug)]
pub struct RestoredContext {
    /// Its id.
    pub id: ContextId,
    /// Its app and members.
    pub record: ContextRecord,
    /// Applied entries, parents first.
    pub applied: Vec<RestoredEntry>,
    /// Pending deltas.
    pub pending: Vec<Arc<CausalDelta>>,
}

/// Figures of one commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// State keys written or deleted.
    pub state_writes: usize,
    /// DAG rows written.
    pub dag_rows: usize,
}

impl Store {
    /// Opens (or initialises) the tables of `db`.
    pub fn open(db: redb::Database) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(storage)?;
        for table in [STATE, DAG, PENDING, CONTEXTS, APPS] {
            txn.open_table(table).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(Self { shared: Arc::new(Mutex::new(Shared { db, overlay: Overlay::new() })) })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves the overlay as it was: keep going with it.
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A backend for one context's state.
    pub fn context_backend(&self, context: ContextId) -> ContextBackend {
        ContextBackend::attached(context, self.clone())
    }

    /// State writes staged and not yet committed.
    pub fn staged_len(&self) -> usize {
        self.lock().overlay.len()
    }

    /// Commits the staged state writes and `batch` in one durable write transaction. On error
    /// nothing is durable, and the staged writes are dropped: the caller must stop.
    pub(crate) fn commit(&self, batch: CommitBatch) -> Result<CommitStats, StoreError> {
        let mut shared = self.lock();
        let overlay = std::mem::take(&mut shared.overlay);
        let mut stats = CommitStats { state_writes: overlay.len(), dag_rows: 0 };
        let txn = shared.db.begin_write().map_err(storage)?;
        {
            let mut state = txn.open_table(STATE).map_err(storage)?;
            for (key, value) in &overlay {
                match value {
                    Some(value) => state.insert(key.as_slice(), value.as_slice()).map(drop),
                    None => state.remove(key.as_slice()).map(drop),
                }
                .map_err(storage)?;
            }
            let mut dag = txn.open_table(DAG).map_err(storage)?;
            let mut next_seq: BTreeMap<ContextId, u64> = BTreeMap::new();
            for (context, entries) in &batch.dag_rewrites {
                let start = context_key(context, &[]);
                let end = context_range_end(context);
                dag.retain_in(start.as_slice()..end.as_slice(), |_, _| false).map_err(storage)?;
                for (seq, entry) in entries.iter().enumerate() {
                    let bytes = borsh::to_vec(entry).map_err(storage)?;
                    dag.insert(dag_key(context, seq as u64).as_slice(), bytes.as_slice()).map_err(storage)?;
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
                        let last = dag.range(start.as_slice()..end.as_slice()).map_err(storage)?.next_back();
                        let next = match last {
                            Some(row) => {
                                let (key, _) = row.map_err(storage)?;
                                let mut seq = [0u8; 8];
                                seq.copy_from_slice(&key.value()[32..40]);
                                u64::from_be_bytes(seq) + 1
                            }
                            None => 0,
                        };
                        next_seq.entry(*context).or_insert(next)
                    }
                };
                let bytes = borsh::to_vec(entry).map_err(storage)?;
                dag.insert(dag_key(context, *seq).as_slice(), bytes.as_slice()).map_err(storage)?;
                *seq += 1;
                stats.dag_rows += 1;
            }
            let mut pending = txn.open_table(PENDING).map_err(storage)?;
            for (context, delta) in &batch.pending_puts {
                let bytes = borsh::to_vec(delta.as_ref()).map_err(storage)?;
                pending.insert(pending_key(context, &delta.id).as_slice(), bytes.as_slice()).map_err(storage)?;
            }
            for (context, id) in &batch.pending_deletes {
                pending.remove(pending_key(context, id).as_slice()).map_err(storage)?;
            }
            let mut contexts = txn.open_table(CONTEXTS).map_err(storage)?;
            for (context, record) in &batch.contexts {
                let bytes = borsh::to_vec(record).map_err(storage)?;
                contexts.insert(context.as_bytes().as_slice(), bytes.as_slice()).map_err(storage)?;
            }
            let mut apps = txn.open_table(APPS).map_err(storage)?;
            for (app, module) in &batch.apps {
                apps.insert(app.0.as_slice(), module.as_slice()).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(stats)
    }

    /// Reads everything a restart needs.
    pub fn load(&self) -> Result<Restored, StoreError> {
        let shared = self.lock();
        let txn = shared.db.begin_read().map_err(storage)?;
        let mut restored = Restored::default();
        let apps = txn.open_table(APPS).map_err(storage)?;
        for row in apps.iter().map_err(storage)? {
            let (_, module) = row.map_err(storage)?;
            restored.apps.push(module.value().to_vec());
        }
        let contexts = txn.open_table(CONTEXTS).map_err(storage)?;
        let dag = txn.open_table(DAG).map_err(storage)?;
        let pending = txn.open_table(PENDING).map_err(storage)?;
        for row in contexts.iter().map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            let id = ContextId::from_bytes(key.value().try_into().map_err(storage)?);
            let record: ContextRecord = borsh::from_slice(value.value()).map_err(storage)?;
            let start = context_key(&id, &[]);
            let end = context_range_end(&id);
            let mut applied = Vec::new();
            for row in dag.range(start.as_slice()..end.as_slice()).map_err(storage)? {
                let (_, value) = row.map_err(storage)?;
                let entry: StoredEntry = borsh::from_slice(value.value()).map_err(storage)?;
                applied.push(entry.into_restored());
            }
            let mut waiting = Vec::new();
            for row in pending.range(start.as_slice()..end.as_slice()).map_err(storage)? {
                let (_, value) = row.map_err(storage)?;
                let delta: CausalDelta = borsh::from_slice(value.value()).map_err(storage)?;
                waiting.push(Arc::new(delta));
            }
            restored.contexts.push(RestoredContext { id, record, applied, pending: waiting });
        }
        Ok(restored)
    }

    fn read_state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let shared = self.lock();
        if let Some(staged) = shared.overlay.get(key) {
            return Ok(staged.clone());
        }
        let txn = shared.db.begin_read().map_err(storage)?;
        let table = txn.open_table(STATE).map_err(storage)?;
        Ok(table.get(key).map_err(storage)?.map(|value| value.value().to_vec()))
    }

    fn scan_state(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let shared = self.lock();
        let txn = shared.db.begin_read().map_err(storage)?;
        let table = txn.open_table(STATE).map_err(storage)?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for row in table.range(prefix..).map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            if !key.value().starts_with(prefix) {
                break;
            }
            merged.insert(key.value().to_vec(), value.value().to_vec());
        }
        for (key, value) in shared.overlay.range(prefix.to_vec()..).take_while(|(key, _)| key.starts_with(prefix)) {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// The first live row under `prefix`: the smaller of the first staged insert and the
    /// first committed row that no staged write overrides. Only rows staged for deletion are
    /// walked past, and the overlay holds one batch's writes at most.
    fn first_state(&self, prefix: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let shared = self.lock();
        let in_prefix = |key: &Vec<u8>| key.starts_with(prefix);
        let staged = shared
            .overlay
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| in_prefix(key))
            .find_map(|(key, value)| value.as_ref().map(|value| (key.clone(), value.clone())));
        let txn = shared.db.begin_read().map_err(storage)?;
        let table = txn.open_table(STATE).map_err(storage)?;
        let mut committed = None;
        for row in table.range(prefix..).map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            let key = key.value().to_vec();
            if !in_prefix(&key) {
                break;
            }
            if !shared.overlay.contains_key(&key) {
                committed = Some((key, value.value().to_vec()));
                break;
            }
        }
        Ok(match (staged, committed) {
            (Some(staged), Some(committed)) => Some(if staged.0 < committed.0 { staged } else { committed }),
            (staged, committed) => staged.or(committed),
        })
    }

    fn stage(&self, writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) {
        self.lock().overlay.extend(writes);
    }
}
