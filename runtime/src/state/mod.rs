//! Where an application's state lives: a key-value backend behind a trait (in memory now; the
//! node backs it with redb), with a Merkle index maintained on every commit, and transactions
//! that stage writes so that a failed call or delta leaves the state exactly as it was.

pub mod merkle;
mod snapshot_entries;

pub use snapshot_entries::check_snapshot_entries;

use merkle::MerkleIndex;
use rhizome_core::RootHash;
use std::collections::BTreeMap;

/// Why a backend could not commit a batch. Nothing of the batch was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct BackendError(pub String);

/// A sorted key-value store holding one context's replicated state and its local meta (handler
/// jobs), under distinct key namespaces.
///
/// Writes come only as batches, applied all or nothing: a durable backend maps one batch to one
/// write transaction, so a delta's state changes and its handler bookkeeping land together.
pub trait KvBackend: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// The first entry whose key starts with `prefix`. Backends should override this: the
    /// default reads the whole range, which makes draining a queue quadratic.
    fn first_with_prefix(&self, prefix: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        self.scan_prefix(prefix).into_iter().next()
    }
    /// Applies every write of `batch` (`None` deletes), or none of them.
    fn write_batch(&mut self, batch: StagedWrites) -> Result<(), BackendError>;
}

/// An in-memory backend.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KvBackend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn first_with_prefix(&self, prefix: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range(prefix.to_vec()..)
            .next()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
    }

    fn write_batch(&mut self, batch: StagedWrites) -> Result<(), BackendError> {
        for (key, value) in batch {
            match value {
                Some(value) => self.entries.insert(key, value),
                None => self.entries.remove(&key),
            };
        }
        Ok(())
    }
}

/// Namespaces of replicated state (value slots and removal markers); everything else in a
/// backend is local meta, outside the root hash.
const STATE_NAMESPACES: [u8; 2] = [crate::path::VALUE_NAMESPACE, crate::path::REMOVAL_NAMESPACE];

fn is_state_key(key: &[u8]) -> bool {
    key.first().is_some_and(|namespace| STATE_NAMESPACES.contains(namespace))
}

/// A backend plus the Merkle index of its replicated state.
#[derive(Debug, Clone, Default)]
pub struct StateStore<B: KvBackend = MemoryBackend> {
    backend: B,
    index: MerkleIndex,
}

/// Writes staged by a transaction: `None` deletes.
pub type StagedWrites = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

impl<B: KvBackend> StateStore<B> {
    /// A store over `backend`, indexing the state it already holds (O(n), once at start-up).
    pub fn new(backend: B) -> Self {
        let mut store = Self { backend, index: MerkleIndex::default() };
        let entries = store.entries();
        store.index.update_many(entries.iter().map(|(key, value)| (key_hash(key), Some(value_hash(value)))));
        store
    }

    /// The value at `key` (state or meta).
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.backend.get(key)
    }

    /// Entries under `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.backend.scan_prefix(prefix)
    }

    /// The first entry under `prefix`, if any.
    pub fn first_with_prefix(&self, prefix: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        self.backend.first_with_prefix(prefix)
    }

    /// The state root.
    pub fn root(&self) -> RootHash {
        RootHash::from_bytes(self.index.root())
    }

    /// Number of state entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if there is no state.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Commits staged state writes and meta writes as one batch; the index follows only once
    /// the backend has accepted it. On error, nothing changed.
    pub fn commit(&mut self, state: StagedWrites, meta: StagedWrites) -> Result<(), BackendError> {
        debug_assert!(state.keys().all(|key| is_state_key(key)), "state write outside the state namespaces");
        debug_assert!(meta.keys().all(|key| !is_state_key(key)), "meta write inside the state namespaces");
        let index_updates: Vec<([u8; 32], Option<[u8; 32]>)> =
            state.iter().map(|(key, value)| (key_hash(key), value.as_deref().map(value_hash))).collect();
        let mut batch = state;
        batch.extend(meta);
        self.backend.write_batch(batch)?;
        self.index.update_many(index_updates);
        Ok(())
    }

    /// Every state entry (not meta), for a snapshot.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        STATE_NAMESPACES.iter().flat_map(|namespace| self.backend.scan_prefix(&[*namespace])).collect()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Gives the backend back (a simulated restart rebuilds the store from it).
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Replaces the whole state with `entries` (a verified snapshot), in one batch; meta stays.
    pub fn replace_all(&mut self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), BackendError> {
        if let Some((key, _)) = entries.iter().find(|(key, _)| !is_state_key(key)) {
            return Err(BackendError(format!("snapshot entry outside the state namespaces: {key:?}")));
        }
        let mut batch: StagedWrites = self.entries().into_iter().map(|(key, _)| (key, None)).collect();
        batch.extend(entries.into_iter().map(|(key, value)| (key, Some(value))));
        self.backend.write_batch(batch)?;
        let mut index = MerkleIndex::default();
        index.update_many(self.entries().iter().map(|(key, value)| (key_hash(key), Some(value_hash(value)))));
        self.index = index;
        Ok(())
    }
}

/// What the Merkle index keys an entry by.
pub(crate) fn key_hash(key: &[u8]) -> [u8; 32] {
    *blake3::hash(key).as_bytes()
}

fn value_hash(value: &[u8]) -> [u8; 32] {
    *blake3::hash(value).as_bytes()
}

/// A read view over a store with staged writes on top, optionally over a second layer of
/// writes staged earlier (the writes of the calls before this one in the same delta).
#[derive(Debug)]
pub struct Txn<'a, B: KvBackend> {
    store: &'a StateStore<B>,
    base: Option<&'a StagedWrites>,
    writes: StagedWrites,
}

impl<'a, B: KvBackend> Txn<'a, B> {
    /// A transaction over `store`.
    pub fn new(store: &'a StateStore<B>) -> Self {
        Self { store, base: None, writes: StagedWrites::new() }
    }

    /// A transaction over `store` that continues from writes staged earlier.
    pub fn with_writes(store: &'a StateStore<B>, writes: StagedWrites) -> Self {
        Self { store, base: None, writes }
    }

    /// A transaction over `base` (read-only here) over `store`, continuing from `writes`.
    /// Only `writes` changes; [`Txn::into_writes`] gives back this layer alone.
    pub fn layered(store: &'a StateStore<B>, base: &'a StagedWrites, writes: StagedWrites) -> Self {
        Self { store, base: Some(base), writes }
    }

    /// The value at `key`: this transaction's writes first, then the base layer, then the store.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(staged) = self.writes.get(key) {
            return staged.clone();
        }
        match self.base.and_then(|base| base.get(key)) {
            Some(staged) => staged.clone(),
            None => self.store.get(key),
        }
    }

    /// Stages a write.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Entries under `prefix` with staged writes applied, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self.store.scan_prefix(prefix).into_iter().collect();
        for layer in self.base.into_iter().chain(std::iter::once(&self.writes)) {
            for (key, value) in layer.range(prefix.to_vec()..).take_while(|(key, _)| key.starts_with(prefix)) {
                match value {
                    Some(value) => merged.insert(key.clone(), value.clone()),
                    None => merged.remove(key),
                };
            }
        }
        merged.into_iter().collect()
    }

    /// The writes staged by this transaction (not the base layer), to commit.
    pub fn into_writes(self) -> StagedWrites {
        self.writes
    }

    /// True if this transaction staged nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that refuses every batch, as a full disk would.
    #[derive(Debug, Default)]
    struct FullDisk(MemoryBackend);

    impl KvBackend for FullDisk {
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.0.get(key)
        }

        fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
            self.0.scan_prefix(prefix)
        }

        fn write_batch(&mut self, _: StagedWrites) -> Result<(), BackendError> {
            Err(BackendError("no space left".to_owned()))
        }
    }

    #[test]
    fn a_refused_batch_changes_neither_the_backend_nor_the_root() {
        let mut store = StateStore::new(FullDisk::default());
        let before = store.root();
        let state = StagedWrites::from([(b"v\x00\x00\x00\x01k".to_vec(), Some(b"slot".to_vec()))]);
        let meta = StagedWrites::from([(b"hjob".to_vec(), Some(b"job".to_vec()))]);
        assert!(store.commit(state, meta).is_err());
        assert_eq!(store.root(), before);
        assert!(store.get(b"hjob").is_none());
    }

    #[test]
    fn meta_lives_beside_state_but_outside_the_root() {
        let mut store = StateStore::new(MemoryBackend::default());
        let state = StagedWrites::from([(b"v\x00\x00\x00\x01k".to_vec(), Some(b"slot".to_vec()))]);
        store.commit(state, StagedWrites::new()).unwrap();
        let root = store.root();
        store.commit(StagedWrites::new(), StagedWrites::from([(b"hjob".to_vec(), Some(b"job".to_vec()))])).unwrap();
        assert_eq!(store.root(), root, "meta does not move the root");
        assert_eq!(store.entries().len(), 1, "snapshots carry state only");
        store.replace_all(vec![]).unwrap();
        assert_eq!(store.get(b"hjob"), Some(b"job".to_vec()), "a snapshot replaces state, not meta");
        assert!(store.is_empty());
        // A rebuilt store indexes the same root from the backend alone.
        let rebuilt = StateStore::new(store.into_backend());
        assert!(rebuilt.is_empty());
    }

    #[test]
    fn a_layered_transaction_reads_through_its_base_and_returns_only_its_own_writes() {
        let mut store = StateStore::new(MemoryBackend::default());
        let committed = StagedWrites::from([
            (b"v1".to_vec(), Some(b"stored".to_vec())),
            (b"v2".to_vec(), Some(b"stored".to_vec())),
            (b"v3".to_vec(), Some(b"stored".to_vec())),
        ]);
        store.commit(committed, StagedWrites::new()).unwrap();
        let base = StagedWrites::from([(b"v2".to_vec(), Some(b"base".to_vec())), (b"v3".to_vec(), None)]);
        let mut txn = Txn::layered(&store, &base, StagedWrites::new());
        assert_eq!(txn.get(b"v1"), Some(b"stored".to_vec()));
        assert_eq!(txn.get(b"v2"), Some(b"base".to_vec()), "the base layer hides the store");
        assert_eq!(txn.get(b"v3"), None, "a deletion in the base layer hides the store");
        txn.put(b"v1".to_vec(), b"own".to_vec());
        txn.put(b"v3".to_vec(), b"own".to_vec());
        let scanned = txn.scan_prefix(b"v");
        assert_eq!(
            scanned,
            vec![
                (b"v1".to_vec(), b"own".to_vec()),
                (b"v2".to_vec(), b"base".to_vec()),
                (b"v3".to_vec(), b"own".to_vec()),
            ]
        );
        assert_eq!(txn.into_writes().len(), 2, "the base layer is not this transaction's to return");
    }
}
