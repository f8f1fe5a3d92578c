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

    fn write_batch(&mut self, batch: StagedWrites) -> Result<(), BackendError> {
        let Some((context, store)) = &self.attached else {
            return self.detached.write_batch(batch);
        };
        store.stage(batch.into_iter().map(|(key, value)| (context_key(context, &key), value)));
        Ok(())
    }
}
