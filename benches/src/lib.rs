//! Benchmarks for rhizome; see benches/.
//!
//! This library only holds the workload builders the bench targets share: deterministic DAG
//! shapes and a seeded shuffle, so every run measures exactly the same input.

use rhizome_core::dag::{DagLimits, DagStore};
use rhizome_core::testing::{genesis_of, DeltaFactory, NoopApplier};
use rhizome_core::{ContextId, DeltaId, DeltaRef, Limits, Timestamp};

/// The genesis of the context every bench uses: by the unsigned factories' key, which is
/// therefore its admin, so the stores judge membership as a node's do.
pub fn bench_genesis() -> DeltaRef {
    genesis_of(&DeltaFactory::unsigned_author(), [], 0)
}

/// The context every bench uses.
pub fn bench_context() -> ContextId {
    bench_genesis().context
}

/// A delta factory for [`bench_context`] whose deltas have real ids and zero signatures;
/// parentless ones descend from the genesis.
pub fn bench_factory() -> DeltaFactory {
    DeltaFactory::unsigned_on(&bench_genesis())
}

/// DAG limits with the default bounds except a pending cap of 200,000, so a 100k-delta
/// delivery in any order never evicts.
pub fn roomy_limits() -> DagLimits {
    DagLimits::from_limits(&Limits { max_pending_deltas: 200_000, ..Limits::default() })
}

/// A store for [`bench_context`] with [`roomy_limits`], holding only the genesis: membership
/// is judged and every payload opened, as in a node.
pub fn new_store() -> DagStore {
    let mut store = DagStore::new(bench_context(), roomy_limits());
    // The factory seals under the test genesis's key: the store opens every payload, as a
    // node's does.
    store.insert_key(rhizome_core::testing::test_context_key());
    store.add(Timestamp::ZERO, bench_genesis(), &mut NoopApplier);
    store
}

/// A small payload: the index as eight little-endian bytes.
pub fn payload(index: usize) -> Vec<u8> {
    (index as u64).to_le_bytes().to_vec()
}

/// A DAG of exactly `len` deltas that is not just a chain: a main chain where, every
/// `merge_every` deltas, a side delta forks off the main chain five deltas back and the next
/// main delta merges it. Returned parents first.
pub fn chain_with_side_branches(factory: &mut DeltaFactory, len: usize, merge_every: usize) -> Vec<DeltaRef> {
    const FORK_DEPTH: usize = 5;
    let merge_every = merge_every.max(2);
    let mut out: Vec<DeltaRef> = Vec::with_capacity(len);
    let mut main: Vec<DeltaId> = Vec::with_capacity(len);
    // Main deltas since the last fork (a counter rather than `%`, which clippy would have
    // turned into `is_multiple_of`, newer than the workspace's MSRV).
    let mut since_fork = 0usize;
    while out.len() < len {
        let index = out.len();
        let Some(tip) = main.last().copied() else {
            let root = factory.make(&[], payload(index));
            main.push(root.id);
            out.push(root);
            continue;
        };
        since_fork += 1;
        let fork_here = since_fork >= merge_every && main.len() > FORK_DEPTH;
        if fork_here && out.len() + 2 <= len {
            since_fork = 0;
            let fork_point = main[main.len() - 1 - FORK_DEPTH];
            let side = factory.make(&[fork_point], payload(index));
            let merge = factory.make(&[tip, side.id], payload(index + 1));
            main.push(merge.id);
            out.push(side);
            out.push(merge);
        } else {
            let next = factory.make(&[tip], payload(index));
            main.push(next.id);
            out.push(next);
        }
    }
    out
}

/// A root, `width` children of the root, and one delta merging all of them: `width + 2`
/// deltas, parents first.
pub fn fan_out_merge(factory: &mut DeltaFactory, width: usize) -> Vec<DeltaRef> {
    let root = factory.make(&[], payload(0));
    let children: Vec<DeltaRef> = (0..width).map(|index| factory.make(&[root.id], payload(index + 1))).collect();
    let child_ids: Vec<DeltaId> = children.iter().map(|child| child.id).collect();
    let merge = factory.make(&child_ids, payload(width + 1));
    let mut out = Vec::with_capacity(width + 2);
    out.push(root);
    out.extend(children);
    out.push(merge);
    out
}

/// A tiny deterministic generator (xorshift64*), seeded, for reproducible shuffles.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (a zero seed is replaced, as xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..bound` (`bound > 0`); the modulo bias is irrelevant here.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// Fisher–Yates shuffle of `items`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
