//! The node's redb database: state, DAG, pending deltas, contexts and apps, all changed by one
//! write transaction per commit ([`Store::begin_commit`], then [`CommitJob::run`], possibly on
//! another thread while the next batch stages).
//!
//! The runtime writes state through [`ContextBackend`], which stages writes in memory; the
//! node folds them into the next commit together with the DAG rows of the same deltas. So a
//! delta, its DAG bookkeeping and its state changes become durable together or not at all.

mod backend;
mod commit;
mod error;
mod read_back;
mod records;
mod restore;
mod tables;

pub use backend::ContextBackend;
pub(crate) use commit::CommitBatch;
pub use commit::{CommitJob, CommitResult, CommitStats, Committer, InlineCommitter};
pub use error::{Misfiling, StoreError, StoredTable};
pub use records::ContextRecord;
pub(crate) use records::StoredEntry;

use redb::ReadableDatabase;
use rhizome_core::dag::RestoredEntry;
use rhizome_core::{CausalDelta, ContextId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tables::{APPLIED, APPS, CONTEXTS, DAG, PENDING, STATE, USED_INVITATIONS};

/// State writes staged since the last commit: `context ‖ key → value` (`None` deletes).
type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// One stored state row.
type KeyValue = (Vec<u8>, Vec<u8>);

struct Shared {
    db: Arc<redb::Database>,
    /// State writes staged since the last commit started.
    overlay: Overlay,
    /// State writes of the commit in flight, read from here until it lands.
    committing: Option<Arc<Overlay>>,
    /// The state table as of the last commit that landed, kept open for reads until the next
    /// one lands: a read transaction per read was most of a read's cost.
    reader: Option<StateReader>,
}

/// The committed state table, read-only.
type StateReader = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

impl Shared {
    /// The committed state table, opened once per landed commit.
    fn reader(&mut self) -> Result<&StateReader, StoreError> {
        self.open_reader()?;
        self.opened_reader()
    }

    fn open_reader(&mut self) -> Result<(), StoreError> {
        if self.reader.is_none() {
            let txn = self.db.begin_read()?;
            self.reader = Some(txn.open_table(STATE)?);
        }
        Ok(())
    }

    fn opened_reader(&self) -> Result<&StateReader, StoreError> {
        self.reader.as_ref().ok_or(StoreError::StateTableClosed)
    }

    /// The staged write of `key`, if any (`Some(None)`: a staged deletion): the newest layer
    /// first, then the commit in flight.
    fn staged(&self, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.overlay.get(key).or_else(|| self.committing.as_ref()?.get(key))
    }

    /// The staged writes under `prefix`, in key order, the newest layer winning.
    fn staged_range(&self, prefix: &[u8]) -> BTreeMap<&Vec<u8>, &Option<Vec<u8>>> {
        let mut merged = BTreeMap::new();
        for layer in self.committing.as_deref().into_iter().chain(std::iter::once(&self.overlay)) {
            merged.extend(layer.range(prefix.to_vec()..).take_while(|(key, _)| key.starts_with(prefix)));
        }
        merged
    }
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

/// What a restart finds in the database.
#[derive(Debug, Default)]
pub struct Restored {
    /// Installed app modules.
    pub apps: Vec<Vec<u8>>,
    /// Joined contexts, each with its DAG (parents first) and pending deltas.
    pub contexts: Vec<RestoredContext>,
    /// Invitation ids joined with, each with its token's expiry (Unix ms).
    pub used_invitations: Vec<([u8; 16], u64)>,
}

/// One stored context.
#[derive(Debug)]
pub struct RestoredContext {
    /// Its id.
    pub id: ContextId,
    /// Its app and bootstrap keys.
    pub record: ContextRecord,
    /// Applied entries, parents first.
    pub applied: Vec<RestoredEntry>,
    /// Pending deltas.
    pub pending: Vec<Arc<CausalDelta>>,
}

impl Store {
    /// Opens (or initialises) the tables of `db`.
    pub fn open(db: redb::Database) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        for table in [STATE, DAG, PENDING, CONTEXTS, APPS, APPLIED, USED_INVITATIONS] {
            txn.open_table(table)?;
        }
        txn.commit()?;
        let shared = Shared { db: Arc::new(db), overlay: Overlay::new(), committing: None, reader: None };
        Ok(Self { shared: Arc::new(Mutex::new(shared)) })
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

    /// Starts a commit of the staged state writes and `batch`: the writes move to the commit in
    /// flight (still read from memory), and new writes stage for the next one. Run the job,
    /// then call [`Store::end_commit`]. One commit at a time.
    pub(crate) fn begin_commit(&self, batch: CommitBatch) -> Result<CommitJob, StoreError> {
        let mut shared = self.lock();
        if shared.committing.is_some() {
            return Err(StoreError::CommitInFlight);
        }
        let state = Arc::new(std::mem::take(&mut shared.overlay));
        shared.committing = Some(state.clone());
        Ok(CommitJob { db: shared.db.clone(), state, batch })
    }

    /// The commit in flight has landed: its writes are read from the database from now on. (A
    /// failed commit stops the node, so there is nothing to undo.)
    pub(crate) fn end_commit(&self) {
        let mut shared = self.lock();
        shared.committing = None;
        shared.reader = None;
    }

    #[cfg(test)]
    /// Commits the staged state writes and `batch` on this thread, in one durable write
    /// transaction. On error nothing is durable: the caller must stop.
    pub(crate) fn commit(&self, batch: CommitBatch) -> CommitResult {
        let result = self.begin_commit(batch)?.run();
        self.end_commit();
        result
    }

    fn read_state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut shared = self.lock();
        if let Some(staged) = shared.staged(key) {
            return Ok(staged.clone());
        }
        let table = shared.reader()?;
        Ok(table.get(key)?.map(|value| value.value().to_vec()))
    }

    fn scan_state(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        let mut shared = self.lock();
        let table = shared.reader()?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for row in table.range(prefix..)? {
            let (key, value) = row?;
            if !key.value().starts_with(prefix) {
                break;
            }
            merged.insert(key.value().to_vec(), value.value().to_vec());
        }
        for (key, value) in shared.staged_range(prefix) {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// The first live row under `prefix`: the smaller of the first staged insert and the
    /// first committed row that no staged write overrides. Only rows staged for deletion are
    /// walked past, and the staged layers hold two batches' writes at most.
    fn first_state(&self, prefix: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let mut shared = self.lock();
        let staged = shared
            .staged_range(prefix)
            .into_iter()
            .find_map(|(key, value)| value.as_ref().map(|value| (key.clone(), value.clone())));
        shared.open_reader()?;
        let table = shared.opened_reader()?;
        let mut committed = None;
        for row in table.range(prefix..)? {
            let (key, value) = row?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            if shared.staged(key).is_none() {
                committed = Some((key.to_vec(), value.value().to_vec()));
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
