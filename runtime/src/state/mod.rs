//! Where an application's state lives: a key-value backend behind a trait (in memory now; the
//! node backs it with redb), with a Merkle index maintained on every commit, and transactions
//! that stage writes so that a failed call or delta leaves the state exactly as it was.

pub mod merkle;

use merkle::MerkleIndex;
use rhizome_core::RootHash;
use std::collections::BTreeMap;

/// A sorted key-value store. Implementations must iterate in key order.
pub trait KvBackend: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Sets `key`.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Deletes `key`.
    fn delete(&mut self, key: &[u8]);
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Every entry, in key order.
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Number of entries.
    fn len(&self) -> usize;
    /// Deletes every entry (before importing a snapshot).
    fn clear(&mut self);
    /// True if empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.insert(key, value);
    }

    fn delete(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries.iter().map(|(key, value)| (key.clone(), value.clone())).collect()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A backend plus the Merkle index of its contents.
#[derive(Debug, Clone, Default)]
pub struct StateStore<B: KvBackend = MemoryBackend> {
    backend: B,
    index: MerkleIndex,
}

/// Writes staged by a transaction: `None` deletes.
pub type StagedWrites = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

impl<B: KvBackend> StateStore<B> {
    /// A store over `backend`, indexing what it already holds (O(n), once at start-up).
    pub fn new(backend: B) -> Self {
        let mut index = MerkleIndex::default();
        for (key, value) in backend.entries() {
            index.upsert(key_hash(&key), value_hash(&value));
        }
        Self { backend, index }
    }

    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.backend.get(key)
    }

    /// Entries under `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.backend.scan_prefix(prefix)
    }

    /// The state root.
    pub fn root(&self) -> RootHash {
        RootHash::from_bytes(self.index.root())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.backend.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.backend.is_empty()
    }

    /// Applies staged writes to the backend and the index. Cannot fail.
    pub fn commit(&mut self, writes: StagedWrites) {
        for (key, value) in writes {
            match value {
                Some(value) => {
                    self.index.upsert(key_hash(&key), value_hash(&value));
                    self.backend.put(key, value);
                }
                None => {
                    self.index.remove(&key_hash(&key));
                    self.backend.delete(&key);
                }
            }
        }
    }

    /// Every entry, for a snapshot.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.backend.entries()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Gives the backend back (a simulated restart rebuilds the store from it).
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Replaces the whole contents with `entries` (a verified snapshot).
    pub fn replace_all(&mut self, entries: Vec<(Vec<u8>, Vec<u8>)>) {
        self.backend.clear();
        self.index = MerkleIndex::default();
        let writes: StagedWrites = entries.into_iter().map(|(key, value)| (key, Some(value))).collect();
        self.commit(writes);
    }
}

/// What the Merkle index keys an entry by.
pub(crate) fn key_hash(key: &[u8]) -> [u8; 32] {
    *blake3::hash(key).as_bytes()
}

fn value_hash(value: &[u8]) -> [u8; 32] {
    *blake3::hash(value).as_bytes()
}

/// A read view over a store with staged writes on top.
#[derive(Debug)]
pub struct Txn<'a, B: KvBackend> {
    store: &'a StateStore<B>,
    writes: StagedWrites,
}

impl<'a, B: KvBackend> Txn<'a, B> {
    /// A transaction over `store`.
    pub fn new(store: &'a StateStore<B>) -> Self {
        Self { store, writes: StagedWrites::new() }
    }

    /// A transaction over `store` that continues from writes staged earlier.
    pub fn with_writes(store: &'a StateStore<B>, writes: StagedWrites) -> Self {
        Self { store, writes }
    }

    /// The value at `key`, staged writes first.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
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
        for (key, value) in self.writes.range(prefix.to_vec()..).take_while(|(key, _)| key.starts_with(prefix)) {
            match value {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        merged.into_iter().collect()
    }

    /// The staged writes, to commit.
    pub fn into_writes(self) -> StagedWrites {
        self.writes
    }

    /// True if nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}
