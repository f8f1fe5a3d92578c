//! The runtime's view of one context's state in the node's database.

use super::tables::context_key;
use super::Store;
use rhizome_core::ContextId;
use rhizome_runtime::state::{BackendError, StagedWrites};
use rhizome_runtime::{KvBackend, MemoryBackend};

/// One context's state: reads go through the staged writes to the database; writes are staged
/// and become durable with the node's next commit, together with the DAG rows of the delta
/// that made them.
///
/// The default value is detached (in memory): the runtime uses one as scratch space to probe
/// that an app instantiates.
#[derive(Debug, Default)]
pub struct ContextBackend {
    attached: Option<(ContextId, Store)>,
    detached: MemoryBackend,
}

impl ContextBackend {
    pub(crate) fn attached(context: ContextId, store: Store) -> Self {
        Self { attached: Some((context, store)), detached: MemoryBackend::default() }
    }
}

impl KvBackend for ContextBackend {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let Some((context, store)) = &self.attached else {
            return self.detached.get(key);
        };
        match store.read_state(&context_key(context, key)) {
            Ok(value) => value,
            Err(error) => {
                // The trait has no error path for reads. A read failure means the database is
                // broken; the next commit fails too and stops the node.
                tracing::error!(%error, "state read failed");
                None
            }
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some((context, store)) = &self.attached else {
            return self.detached.scan_prefix(prefix);
        };
        match store.scan_state(&context_key(context, prefix)) {
            Ok(rows) => rows.into_iter().map(|(key, value)| (key[32..].to_vec(), value)).collect(),
            Err(error) => {
                tracing::error!(%error, "state scan failed");
                Vec::new()
            }
        }
    }

    fn first_with_prefix(&self, prefix: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let Some((context, store)) = &self.attached else {
            return self.detached.first_with_prefix(prefix);
        };
        match store.first_state(&context_key(context, prefix)) {
            Ok(row) => row.map(|(key, value)| (key[32..].to_vec(), value)),
            Err(error) => {
                tracing::error!(%error, "state scan failed");
                None
            }
        }
    }

    fn write_batch(&mut self, batch: StagedWrites) -> Result<(), BackendError> {
        let Some((context, store)) = &self.attached else {
            return self.detached.write_batch(batch);
        };
        store.stage(batch.into_iter().map(|(key, value)| (context_key(context, &key), value)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CommitBatch;

    fn store() -> Store {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory database");
        Store::open(db).expect("open store")
    }

    fn put(key: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (key.as_bytes().to_vec(), Some(key.to_uppercase().into_bytes()))
    }

    fn delete(key: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (key.as_bytes().to_vec(), None)
    }

    fn first(backend: &ContextBackend, prefix: &str) -> Option<String> {
        let found = backend.first_with_prefix(prefix.as_bytes());
        assert_eq!(found, backend.scan_prefix(prefix.as_bytes()).into_iter().next(), "agrees with a full scan");
        found.map(|(key, _)| String::from_utf8(key).unwrap())
    }

    #[test]
    fn first_with_prefix_sees_committed_rows_through_staged_writes() {
        let store = store();
        let mut backend = store.context_backend(ContextId::hash_of(b"c"));
        let other = store.context_backend(ContextId::hash_of(b"other"));
        backend.write_batch([put("a1"), put("a2"), put("a3"), put("b1")].into_iter().collect()).unwrap();
        assert_eq!(first(&backend, "a").as_deref(), Some("a1"), "staged, not yet committed");
        store.commit(CommitBatch::default()).unwrap();
        assert_eq!(first(&backend, "a").as_deref(), Some("a1"));
        assert_eq!(first(&other, "a"), None, "another context's rows are not ours");
        backend.write_batch([delete("a1")].into_iter().collect()).unwrap();
        assert_eq!(first(&backend, "a").as_deref(), Some("a2"), "a staged delete hides the row");
        backend.write_batch([put("a0")].into_iter().collect()).unwrap();
        assert_eq!(first(&backend, "a").as_deref(), Some("a0"), "a staged insert before every row");
        backend.write_batch([delete("a0"), delete("a2"), delete("zz")].into_iter().collect()).unwrap();
        assert_eq!(first(&backend, "a").as_deref(), Some("a3"));
        assert_eq!(first(&backend, "b").as_deref(), Some("b1"));
        assert_eq!(first(&backend, "c"), None);
        store.commit(CommitBatch::default()).unwrap();
        assert_eq!(first(&backend, "a").as_deref(), Some("a3"));
    }

    #[test]
    fn reads_see_a_commit_in_flight_under_newer_staged_writes() {
        let store = store();
        let mut backend = store.context_backend(ContextId::hash_of(b"c"));
        backend.write_batch([put("a1"), put("a2")].into_iter().collect()).unwrap();
        store.commit(CommitBatch::default()).unwrap();
        backend.write_batch([delete("a1"), put("a3")].into_iter().collect()).unwrap();
        let job = store.begin_commit(CommitBatch::default()).unwrap();
        assert!(store.begin_commit(CommitBatch::default()).is_err(), "one commit in flight at a time");
        // Staged after the commit started: newer than what is in flight.
        backend.write_batch([put("a1"), delete("a3"), put("a4")].into_iter().collect()).unwrap();
        let seen = |backend: &ContextBackend| -> Vec<String> {
            let rows = backend.scan_prefix(b"a");
            rows.into_iter().map(|(key, _)| String::from_utf8(key).unwrap()).collect()
        };
        assert_eq!(seen(&backend), ["a1", "a2", "a4"]);
        assert_eq!(first(&backend, "a").as_deref(), Some("a1"));
        assert_eq!(backend.get(b"a3"), None, "the newer deletion hides the write in flight");
        job.run().unwrap();
        assert_eq!(seen(&backend), ["a1", "a2", "a4"], "landed but not ended: the same view");
        store.end_commit();
        assert_eq!(seen(&backend), ["a1", "a2", "a4"]);
        store.commit(CommitBatch::default()).unwrap();
        assert_eq!(seen(&backend), ["a1", "a2", "a4"], "and the same from the database alone");
        assert_eq!(store.staged_len(), 0);
    }
}
