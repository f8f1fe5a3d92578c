//! Snapshot transfer: the server freezes state and DAG structure at one instant and pages it
//! out; the client assembles pages, checking every bound, before anything is adopted.

use crate::delta::DeltaHeader;
use crate::ids::{ContextId, DeltaId, RootHash};
use crate::time::Timestamp;
use crate::wire::{SnapshotCheckpoint, SnapshotPage};
use std::collections::BTreeMap;
use std::ops::Range;

/// A snapshot frozen for serving.
#[derive(Debug, Clone)]
pub struct ServedSnapshot {
    context: ContextId,
    heads: Vec<DeltaId>,
    root: RootHash,
    state: Vec<u8>,
    entries: Vec<DeltaHeader>,
    state_page_bytes: usize,
    entry_pages: Vec<Range<usize>>,
    last_used_at: Timestamp,
}

/// The parts of a snapshot, captured at one instant.
#[derive(Debug, Clone)]
pub struct FrozenState {
    /// The context.
    pub context: ContextId,
    /// DAG heads at capture.
    pub heads: Vec<DeltaId>,
    /// State root at capture.
    pub root: RootHash,
    /// The applier's exported state.
    pub state: Vec<u8>,
    /// Every applied id with its parents, parents first.
    pub entries: Vec<DeltaHeader>,
}

/// How large each snapshot page may be.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    /// Most state bytes, and about the most entry bytes, per page.
    pub max_page_bytes: usize,
    /// Most entries per page.
    pub max_entries_per_page: usize,
}

impl ServedSnapshot {
    /// Freezes a snapshot and plans its pages: state in slices of `max_page_bytes`, entries in
    /// runs of at most `max_entries_per_page` and about `max_page_bytes` encoded.
    pub fn new(frozen: FrozenState, limits: PageLimits, now: Timestamp) -> Self {
        let FrozenState { context, heads, root, state, entries } = frozen;
        let PageLimits { max_page_bytes, max_entries_per_page } = limits;
        let mut entry_pages = Vec::new();
        let mut start = 0;
        let mut bytes = 0;
        for (index, entry) in entries.iter().enumerate() {
            let size = entry.encoded_len();
            let count = index - start;
            if count > 0 && (count >= max_entries_per_page.max(1) || bytes + size > max_page_bytes) {
                entry_pages.push(start..index);
                start = index;
                bytes = 0;
            }
            bytes += size;
        }
        if start < entries.len() {
            entry_pages.push(start..entries.len());
        }
        Self {
            context,
            heads,
            root,
            state,
            entries,
            state_page_bytes: max_page_bytes.max(1),
            entry_pages,
            last_used_at: now,
        }
    }

    fn page_count(&self) -> u32 {
        let state_pages = self.state.len().div_ceil(self.state_page_bytes);
        u32::try_from(state_pages.max(self.entry_pages.len()).max(1)).unwrap_or(u32::MAX)
    }

    /// The checkpoint announcing this snapshot.
    pub fn checkpoint(&self, snapshot_id: u64) -> SnapshotCheckpoint {
        SnapshotCheckpoint {
            context: self.context,
            snapshot_id,
            heads: self.heads.clone(),
            root: self.root,
            state_bytes: self.state.len() as u64,
            entry_count: self.entries.len() as u64,
            page_count: self.page_count(),
        }
    }

    /// Page `page`, or `None` past the end.
    pub fn page(&mut self, snapshot_id: u64, page: u32, now: Timestamp) -> Option<SnapshotPage> {
        if page >= self.page_count() {
            return None;
        }
        self.last_used_at = now;
        let index = page as usize;
        let state_start = (index * self.state_page_bytes).min(self.state.len());
        let state_end = (state_start + self.state_page_bytes).min(self.state.len());
        let entries = self.entry_pages.get(index).map_or_else(Vec::new, |range| self.entries[range.clone()].to_vec());
        Some(SnapshotPage {
            context: self.context,
            snapshot_id,
            page,
            state_chunk: self.state[state_start..state_end].to_vec(),
            entries,
        })
    }
}

/// The snapshots a context is serving, dropped when idle (the node bounds their count).
#[derive(Debug, Default)]
pub struct ServedSnapshots {
    snapshots: BTreeMap<u64, ServedSnapshot>,
}

impl ServedSnapshots {
    /// Stores a snapshot under `snapshot_id` (chosen by the node, unique across its contexts).
    pub fn insert(&mut self, snapshot_id: u64, snapshot: ServedSnapshot) {
        self.snapshots.insert(snapshot_id, snapshot);
    }

    /// A snapshot being served.
    pub fn get_mut(&mut self, snapshot_id: u64, context: &ContextId) -> Option<&mut ServedSnapshot> {
        self.snapshots.get_mut(&snapshot_id).filter(|snapshot| snapshot.context == *context)
    }

    /// Drops snapshots unused for `ttl_ms`. Returns how many.
    pub fn expire(&mut self, now: Timestamp, ttl_ms: u64) -> usize {
        let before = self.snapshots.len();
        self.snapshots.retain(|_, snapshot| now < snapshot.last_used_at.add_millis(ttl_ms));
        before - self.snapshots.len()
    }

    /// Snapshots being served.
    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    /// True if none are being served.
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }
}

/// Why a snapshot could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// The checkpoint is over a bound or inconsistent.
    #[error("checkpoint refused: {0}")]
    BadCheckpoint(&'static str),
    /// A page does not follow the checkpoint.
    #[error("page refused: {0}")]
    BadPage(&'static str),
}

/// Bounds a client applies to an incoming snapshot.
#[derive(Debug, Clone, Copy)]
pub struct AssemblyLimits {
    /// Most state bytes.
    pub max_state_bytes: usize,
    /// Most entries.
    pub max_entries: usize,
}

/// A snapshot being received.
#[derive(Debug, Clone)]
pub struct SnapshotAssembly {
    checkpoint: SnapshotCheckpoint,
    next_page: u32,
    state: Vec<u8>,
    entries: Vec<DeltaHeader>,
}

impl SnapshotAssembly {
    /// Starts assembling after checking the checkpoint against `limits`.
    pub fn new(
        checkpoint: SnapshotCheckpoint,
        context: &ContextId,
        limits: AssemblyLimits,
    ) -> Result<Self, AssemblyError> {
        if checkpoint.context != *context {
            return Err(AssemblyError::BadCheckpoint("wrong context"));
        }
        if checkpoint.state_bytes > limits.max_state_bytes as u64 {
            return Err(AssemblyError::BadCheckpoint("state over the snapshot limit"));
        }
        if checkpoint.entry_count > limits.max_entries as u64 {
            return Err(AssemblyError::BadCheckpoint("too many entries"));
        }
        if checkpoint.page_count == 0 {
            return Err(AssemblyError::BadCheckpoint("no pages"));
        }
        // Every page must carry something, so a checkpoint cannot announce more pages than
        // it has bytes and entries: a session can never be strung along by empty pages.
        if u64::from(checkpoint.page_count) > checkpoint.state_bytes + checkpoint.entry_count + 1 {
            return Err(AssemblyError::BadCheckpoint("more pages than content"));
        }
        Ok(Self { checkpoint, next_page: 0, state: Vec::new(), entries: Vec::new() })
    }

    /// The checkpoint being assembled.
    pub fn checkpoint(&self) -> &SnapshotCheckpoint {
        &self.checkpoint
    }

    /// The page to request next.
    pub fn next_page(&self) -> u32 {
        self.next_page
    }

    /// True once every page arrived.
    pub fn is_complete(&self) -> bool {
        self.next_page >= self.checkpoint.page_count
    }

    /// Takes one page; it must be the next one and stay within the checkpoint's totals.
    pub fn accept(&mut self, page: SnapshotPage) -> Result<(), AssemblyError> {
        if page.snapshot_id != self.checkpoint.snapshot_id || page.context != self.checkpoint.context {
            return Err(AssemblyError::BadPage("belongs to another snapshot"));
        }
        if page.page != self.next_page {
            return Err(AssemblyError::BadPage("out of order"));
        }
        if (self.state.len() + page.state_chunk.len()) as u64 > self.checkpoint.state_bytes {
            return Err(AssemblyError::BadPage("more state than announced"));
        }
        if (self.entries.len() + page.entries.len()) as u64 > self.checkpoint.entry_count {
            return Err(AssemblyError::BadPage("more entries than announced"));
        }
        let only_page_of_nothing =
            self.checkpoint.page_count == 1 && self.checkpoint.state_bytes == 0 && self.checkpoint.entry_count == 0;
        if page.state_chunk.is_empty() && page.entries.is_empty() && !only_page_of_nothing {
            return Err(AssemblyError::BadPage("empty page"));
        }
        self.state.extend_from_slice(&page.state_chunk);
        self.entries.extend(page.entries);
        self.next_page += 1;
        if self.is_complete()
            && (self.state.len() as u64 != self.checkpoint.state_bytes
                || self.entries.len() as u64 != self.checkpoint.entry_count)
        {
            return Err(AssemblyError::BadPage("less than announced"));
        }
        Ok(())
    }

    /// The assembled parts: checkpoint, state bytes, entries.
    pub fn into_parts(self) -> (SnapshotCheckpoint, Vec<u8>, Vec<DeltaHeader>) {
        (self.checkpoint, self.state, self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(count: usize) -> Vec<DeltaHeader> {
        let mut previous: Option<DeltaId> = None;
        (0..count as u32)
            .map(|i| {
                let id = DeltaId::hash_of(&i.to_le_bytes());
                let entry = crate::testing::stub_header(id, previous.into_iter().collect());
                previous = Some(id);
                entry
            })
            .collect()
    }

    fn freeze(
        context: ContextId,
        heads: Vec<DeltaId>,
        root: RootHash,
        state: Vec<u8>,
        entries: Vec<DeltaHeader>,
        max_page_bytes: usize,
        max_entries_per_page: usize,
    ) -> ServedSnapshot {
        let frozen = FrozenState { context, heads, root, state, entries };
        ServedSnapshot::new(frozen, PageLimits { max_page_bytes, max_entries_per_page }, Timestamp::ZERO)
    }

    fn limits() -> AssemblyLimits {
        AssemblyLimits { max_state_bytes: 1 << 20, max_entries: 1 << 20 }
    }

    #[test]
    fn pages_reassemble_into_the_frozen_snapshot() {
        let context = ContextId::hash_of(b"c");
        let state: Vec<u8> = (0..2_500u32).map(|i| i as u8).collect();
        let all = entries(300);
        let heads = vec![all.last().unwrap().id];
        let mut served = freeze(context, heads, RootHash::hash_of(b"r"), state.clone(), all.clone(), 20_000, 64);
        let checkpoint = served.checkpoint(7);
        assert_eq!(checkpoint.page_count, 5, "300 entries at 64 per page; state fits in one");
        let mut assembly = SnapshotAssembly::new(checkpoint, &context, limits()).unwrap();
        while !assembly.is_complete() {
            let page = served.page(7, assembly.next_page(), Timestamp::ZERO).unwrap();
            assembly.accept(page).unwrap();
        }
        assert!(served.page(7, 5, Timestamp::ZERO).is_none());
        let small_pages = freeze(context, vec![], RootHash::default(), state.clone(), entries(300), 1_000, 64);
        // A stub header of one parent is 253 bytes: four per 1,000-byte page.
        assert_eq!(small_pages.checkpoint(1).page_count, 75, "entries also bounded by bytes: 4 per 1,000-byte page");
        let (_, got_state, got_entries) = assembly.into_parts();
        assert_eq!(got_state, state);
        assert_eq!(got_entries, all);
    }

    #[test]
    fn out_of_order_foreign_or_overflowing_pages_are_refused() {
        let context = ContextId::hash_of(b"c");
        let mut served = freeze(context, vec![], RootHash::default(), vec![1; 10], entries(3), 4, 2);
        let checkpoint = served.checkpoint(1);
        let mut assembly = SnapshotAssembly::new(checkpoint.clone(), &context, limits()).unwrap();
        let second = served.page(1, 1, Timestamp::ZERO).unwrap();
        assert_eq!(assembly.accept(second), Err(AssemblyError::BadPage("out of order")));
        let mut foreign = served.page(1, 0, Timestamp::ZERO).unwrap();
        foreign.snapshot_id = 2;
        assert!(assembly.accept(foreign).is_err());
        let mut bloated = served.page(1, 0, Timestamp::ZERO).unwrap();
        bloated.state_chunk = vec![0; 11];
        assert_eq!(assembly.accept(bloated), Err(AssemblyError::BadPage("more state than announced")));
        let mut empty = served.page(1, 0, Timestamp::ZERO).unwrap();
        empty.state_chunk.clear();
        empty.entries.clear();
        assert_eq!(assembly.accept(empty), Err(AssemblyError::BadPage("empty page")));
        let mut endless = checkpoint.clone();
        endless.page_count = u32::MAX;
        assert_eq!(
            SnapshotAssembly::new(endless, &context, limits()).unwrap_err(),
            AssemblyError::BadCheckpoint("more pages than content")
        );
        let tight = AssemblyLimits { max_state_bytes: 9, max_entries: 10 };
        assert!(SnapshotAssembly::new(checkpoint, &context, tight).is_err());
    }

    #[test]
    fn served_snapshots_expire_when_idle_and_answer_only_their_context() {
        let context = ContextId::hash_of(b"c");
        let snapshot = freeze(context, vec![], RootHash::default(), vec![], vec![], 10, 10);
        let mut served = ServedSnapshots::default();
        let first = 1;
        served.insert(first, snapshot.clone());
        served.insert(2, snapshot);
        assert!(served.get_mut(first, &ContextId::hash_of(b"other")).is_none());
        served.get_mut(first, &context).unwrap().page(first, 0, Timestamp::from_secs(50));
        assert_eq!(served.expire(Timestamp::from_secs(60), 60_000), 1);
        assert_eq!(served.len(), 1);
    }
}
