//! Reading back what a restart needs, holding every row to what was written: a row sits under
//! the key its content names, DAG rows are numbered without gaps, and each context has as many
//! DAG rows as were committed with its count. A row that breaks one is a typed
//! [`StoreError`], so the node refuses to start on it instead of panicking or skipping it.

use super::error::{Misfiling, StoredTable};
use super::tables::{
    context_key, context_range_end, dag_seq, APPLIED, APPS, CONTEXTS, CONTEXT_KEY_BYTES, DAG, PENDING,
    PENDING_KEY_BYTES, USED_INVITATIONS,
};
use super::{ContextRecord, Restored, RestoredContext, Store, StoreError, StoredEntry};
use redb::{ReadOnlyTable, ReadableDatabase, ReadableTable};
use rhizome_core::dag::RestoredEntry;
use rhizome_core::{CausalDelta, ContextId, DeltaId};
use std::sync::Arc;

type Table = ReadOnlyTable<&'static [u8], &'static [u8]>;

impl Store {
    /// Reads everything a restart needs, checking each row against its key and each
    /// context's DAG against its committed count.
    pub fn load(&self) -> Result<Restored, StoreError> {
        let shared = self.lock();
        let txn = shared.db.begin_read()?;
        let mut restored = Restored::default();
        let apps = txn.open_table(APPS)?;
        for row in apps.iter()? {
            let (_, module) = row?;
            restored.apps.push(module.value().to_vec());
        }
        let contexts = txn.open_table(CONTEXTS)?;
        let dag = txn.open_table(DAG)?;
        let pending = txn.open_table(PENDING)?;
        let counts = txn.open_table(APPLIED)?;
        for row in contexts.iter()? {
            let (key, value) = row?;
            let id = ContextId::from_bytes(key.value().try_into()?);
            let record: ContextRecord = borsh::from_slice(value.value())?;
            let applied = read_dag(&dag, &id)?;
            check_applied_count(&counts, &id, applied.len())?;
            let waiting = read_pending(&pending, &id)?;
            restored.contexts.push(RestoredContext { id, record, applied, pending: waiting });
        }
        let used = txn.open_table(USED_INVITATIONS)?;
        for row in used.iter()? {
            let (id, expiry) = row?;
            let id: [u8; 16] = id.value().try_into()?;
            let expires_at_ms = u64::from_be_bytes(expiry.value().try_into()?);
            restored.used_invitations.push((id, expires_at_ms));
        }
        Ok(restored)
    }
}

/// A context's DAG rows, parents first, numbered 0, 1, 2... with nothing missing.
fn read_dag(dag: &Table, context: &ContextId) -> Result<Vec<RestoredEntry>, StoreError> {
    let (start, end) = (context_key(context, &[]), context_range_end(context));
    let mut applied = Vec::new();
    for row in dag.range(start.as_slice()..end.as_slice())? {
        let (key, value) = row?;
        let seq = dag_seq(key.value()).ok_or(misfiled(StoredTable::Dag, context, Misfiling::KeyLength))?;
        let expected = applied.len() as u64;
        if seq != expected {
            return Err(StoreError::DagGap { context: *context, expected, found: seq });
        }
        let entry: StoredEntry = borsh::from_slice(value.value())?;
        if let StoredEntry::Body(delta) = &entry {
            if delta.context != *context {
                return Err(misfiled(StoredTable::Dag, context, Misfiling::Context));
            }
        }
        applied.push(entry.into_restored());
    }
    Ok(applied)
}

/// Holds the DAG rows found to the count committed with them, where there is one.
fn check_applied_count(counts: &Table, context: &ContextId, found: usize) -> Result<(), StoreError> {
    let Some(stored) = counts.get(context.as_bytes().as_slice())? else { return Ok(()) };
    let stored = u64::from_be_bytes(
        stored.value().try_into().map_err(|_| misfiled(StoredTable::Applied, context, Misfiling::KeyLength))?,
    );
    let found = found as u64;
    if stored != found {
        return Err(StoreError::AppliedCountMismatch { context: *context, stored, found });
    }
    Ok(())
}

/// A context's pending deltas, each under the key of its own id and context.
fn read_pending(pending: &Table, context: &ContextId) -> Result<Vec<Arc<CausalDelta>>, StoreError> {
    let (start, end) = (context_key(context, &[]), context_range_end(context));
    let mut waiting = Vec::new();
    for row in pending.range(start.as_slice()..end.as_slice())? {
        let (key, value) = row?;
        let key = key.value();
        if key.len() != PENDING_KEY_BYTES {
            return Err(misfiled(StoredTable::Pending, context, Misfiling::KeyLength));
        }
        let delta: CausalDelta = borsh::from_slice(value.value())?;
        if delta.id != DeltaId::from_bytes(key[CONTEXT_KEY_BYTES..].try_into()?) {
            return Err(misfiled(StoredTable::Pending, context, Misfiling::DeltaId));
        }
        if delta.context != *context {
            return Err(misfiled(StoredTable::Pending, context, Misfiling::Context));
        }
        waiting.push(Arc::new(delta));
    }
    Ok(waiting)
}

fn misfiled(table: StoredTable, context: &ContextId, problem: Misfiling) -> StoreError {
    StoreError::Misfiled { table, context: *context, problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CommitBatch;
    use redb::TableDefinition;
    use rhizome_core::testing::DeltaFactory;
    use rhizome_runtime::AppId;

    fn context() -> ContextId {
        ContextId::hash_of(b"restore")
    }

    /// A store holding one context with a DAG of three deltas and two pending ones.
    fn stored() -> (Store, Vec<Arc<CausalDelta>>) {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory database");
        let store = Store::open(db).expect("open store");
        let mut factory = DeltaFactory::unsigned(context());
        let chain = factory.chain(5);
        let mut batch = CommitBatch::default();
        batch.contexts.push((context(), ContextRecord { app: AppId([1; 32]), bootstrap: Vec::new() }));
        for delta in &chain[..3] {
            batch.dag_appends.push((context(), StoredEntry::Body(delta.as_ref().clone())));
        }
        for delta in &chain[3..] {
            batch.pending.insert((context(), delta.id), Some(delta.clone()));
        }
        store.commit(batch).expect("commit");
        (store, chain)
    }

    /// Runs `change` on `table` in a write transaction of its own: the disk going wrong.
    fn tamper(
        store: &Store,
        table: TableDefinition<&[u8], &[u8]>,
        change: impl FnOnce(&mut redb::Table<&[u8], &[u8]>),
    ) {
        let db = store.lock().db.clone();
        let txn = db.begin_write().unwrap();
        change(&mut txn.open_table(table).unwrap());
        txn.commit().unwrap();
    }

    #[test]
    fn what_a_commit_wrote_a_restart_reads_back() {
        let (store, chain) = stored();
        let restored = store.load().unwrap();
        let [context] = restored.contexts.as_slice() else { panic!("one context") };
        let applied: Vec<DeltaId> = context
            .applied
            .iter()
            .map(|entry| match entry {
                RestoredEntry::Body(delta) => delta.id,
                RestoredEntry::Structure(entry) => entry.id,
            })
            .collect();
        assert_eq!(applied, chain[..3].iter().map(|delta| delta.id).collect::<Vec<_>>());
        let mut pending: Vec<DeltaId> = context.pending.iter().map(|delta| delta.id).collect();
        pending.sort();
        let mut expected: Vec<DeltaId> = chain[3..].iter().map(|delta| delta.id).collect();
        expected.sort();
        assert_eq!(pending, expected);
    }

    #[test]
    fn a_pending_row_under_another_deltas_key_is_misfiled() {
        let (store, chain) = stored();
        let wrong_key = super::super::tables::pending_key(&context(), &chain[0].id);
        let bytes = borsh::to_vec(chain[3].as_ref()).unwrap();
        tamper(&store, PENDING, |table| {
            table.insert(wrong_key.as_slice(), bytes.as_slice()).unwrap();
        });
        let error = store.load().unwrap_err();
        assert_eq!(error, misfiled(StoredTable::Pending, &context(), Misfiling::DeltaId));
        assert_eq!(error.label(), "misfiled");
    }

    #[test]
    fn a_pending_row_that_does_not_decode_is_an_encoding_error() {
        let (store, chain) = stored();
        let key = super::super::tables::pending_key(&context(), &chain[3].id);
        tamper(&store, PENDING, |table| {
            table.insert(key.as_slice(), [7u8; 5].as_slice()).unwrap();
        });
        assert_eq!(store.load().unwrap_err().label(), "encoding");
    }

    #[test]
    fn a_lost_dag_row_in_the_middle_is_a_gap() {
        let (store, _) = stored();
        let key = super::super::tables::dag_key(&context(), 1);
        tamper(&store, DAG, |table| {
            table.remove(key.as_slice()).unwrap();
        });
        let error = store.load().unwrap_err();
        assert_eq!(error, StoreError::DagGap { context: context(), expected: 1, found: 2 });
    }

    #[test]
    fn a_lost_last_dag_row_differs_from_the_committed_count() {
        let (store, _) = stored();
        let key = super::super::tables::dag_key(&context(), 2);
        tamper(&store, DAG, |table| {
            table.remove(key.as_slice()).unwrap();
        });
        let error = store.load().unwrap_err();
        assert_eq!(error, StoreError::AppliedCountMismatch { context: context(), stored: 3, found: 2 });
        assert_eq!(error.label(), "applied_count_mismatch");
    }

    #[test]
    fn a_dag_row_of_another_context_is_misfiled() {
        let (store, _) = stored();
        let mut stranger = DeltaFactory::unsigned(ContextId::hash_of(b"elsewhere"));
        let bytes = borsh::to_vec(&StoredEntry::Body(stranger.make(&[], Vec::new()).as_ref().clone())).unwrap();
        let key = super::super::tables::dag_key(&context(), 0);
        tamper(&store, DAG, |table| {
            table.insert(key.as_slice(), bytes.as_slice()).unwrap();
        });
        assert_eq!(store.load().unwrap_err(), misfiled(StoredTable::Dag, &context(), Misfiling::Context));
    }

    #[test]
    fn a_database_without_counts_restores_and_its_next_commit_counts() {
        let (store, chain) = stored();
        tamper(&store, APPLIED, |table| {
            table.remove(context().as_bytes().as_slice()).unwrap();
        });
        assert_eq!(store.load().unwrap().contexts[0].applied.len(), 3, "nothing to compare: restored");
        let mut batch = CommitBatch::default();
        batch.dag_appends.push((context(), StoredEntry::Body(chain[3].as_ref().clone())));
        store.commit(batch).unwrap();
        let db = store.lock().db.clone();
        let txn = db.begin_read().unwrap();
        let count =
            txn.open_table(APPLIED).unwrap().get(context().as_bytes().as_slice()).unwrap().unwrap().value().to_vec();
        assert_eq!(count, 4u64.to_be_bytes(), "the count covers the rows from before the table");
    }
}
