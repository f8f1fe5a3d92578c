//! Heap bytes of DAG metadata per applied delta, measured with a counting global allocator.
//!
//! The deltas (`Arc<CausalDelta>`) are generated before the first reading and the store only
//! clones the `Arc`, so the growth in live bytes across the inserts is exactly the store's own
//! metadata: the applied map, the heads set and whatever the pending queue still holds. Bytes
//! are the sizes requested from the allocator (its own per-block overhead is not counted).
//! "Peak" is the highest live figure seen during the inserts (e.g. a hash-table resize holds
//! the old and the new table at once, or a reverse delivery holds everything as pending).

#![allow(unsafe_code)]
#![allow(clippy::print_stdout)]

use rhizome_benches::{bench_factory, chain_with_side_branches, new_store, XorShift64};
use rhizome_core::dag::DagStore;
use rhizome_core::testing::NoopApplier;
use rhizome_core::{CausalDelta, DeltaId, DeltaRef, Timestamp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `System`, counting the bytes currently allocated and the high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only updates counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: Timestamp = Timestamp::from_secs(1);

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// One reading: the store's metadata after a run of inserts, and the peak during it.
struct Reading {
    applied: usize,
    pending: usize,
    heads: usize,
    bytes: usize,
    peak: usize,
}

/// Inserts `deltas` into `store` and reads its metadata relative to `base` live bytes.
fn insert_and_read(store: &mut DagStore, deltas: &[DeltaRef], base: usize) -> Reading {
    let mut applier = NoopApplier;
    for delta in deltas {
        // The outcome (a small Vec at most) is dropped at once, so it does not count.
        let _ = store.add(NOW, delta.clone(), &mut applier);
    }
    Reading {
        applied: store.applied_len(),
        pending: store.pending_len(),
        heads: store.heads().len(),
        bytes: live() - base,
        peak: PEAK.load(Ordering::Relaxed) - base,
    }
}

fn print_header() {
    println!(
        "{:<44} {:>8} {:>8} {:>6} {:>13} {:>9} {:>13} {:>9}",
        "case", "applied", "pending", "heads", "meta bytes", "B/delta", "peak bytes", "peak B/d"
    );
}

fn print_row(label: &str, n: usize, reading: &Reading) {
    println!(
        "{:<44} {:>8} {:>8} {:>6} {:>13} {:>9.1} {:>13} {:>9.1}",
        label,
        reading.applied,
        reading.pending,
        reading.heads,
        reading.bytes,
        reading.bytes as f64 / n as f64,
        reading.peak,
        reading.peak as f64 / n as f64,
    );
}

/// Measures inserting all of `deltas` (in the given order) into an empty store.
fn measure(label: &str, deltas: &[DeltaRef]) {
    let base = live();
    PEAK.store(base, Ordering::Relaxed);
    let mut store = new_store();
    let reading = insert_and_read(&mut store, deltas, base);
    assert_eq!(reading.applied, deltas.len() + 1, "{label}: not all applied (beside the genesis)");
    print_row(label, deltas.len(), &reading);
    drop(store);
}

/// Root, `width` children (measured with `width` heads open), then merged in groups of at most
/// `group` parents and a final merge of the groups (measured with one head).
fn measure_wide(width: usize, group: usize) {
    let mut factory = bench_factory();
    let root = factory.make(&[], vec![0; 8]);
    let mut fan: Vec<DeltaRef> = vec![root.clone()];
    for index in 0..width {
        fan.push(factory.make(&[root.id], (index as u64).to_le_bytes().to_vec()));
    }
    let mut merges: Vec<DeltaRef> = Vec::new();
    let child_ids: Vec<DeltaId> = fan[1..].iter().map(|delta| delta.id).collect();
    for chunk in child_ids.chunks(group) {
        merges.push(factory.make(chunk, vec![1; 8]));
    }
    let group_ids: Vec<DeltaId> = merges.iter().map(|delta| delta.id).collect();
    merges.push(factory.make(&group_ids, vec![2; 8]));

    let base = live();
    PEAK.store(base, Ordering::Relaxed);
    let mut store = new_store();
    let open = insert_and_read(&mut store, &fan, base);
    print_row(&format!("wide: root + {width} branches (open)"), fan.len(), &open);
    let merged = insert_and_read(&mut store, &merges, base);
    let total = fan.len() + merges.len();
    assert_eq!(merged.applied, total + 1, "and the genesis");
    print_row(&format!("wide: ... merged by {} + 1 merges", merges.len() - 1), total, &merged);
    drop(store);
}

/// A reverse delivery, read when everything but the root is pending and again at the end.
fn measure_reverse(n: usize) {
    let mut deltas = bench_factory().chain(n);
    deltas.reverse();
    let (root, rest) = deltas.split_last().expect("non-empty");
    let base = live();
    PEAK.store(base, Ordering::Relaxed);
    let mut store = new_store();
    let waiting = insert_and_read(&mut store, rest, base);
    assert_eq!(waiting.pending, n - 1);
    print_row(&format!("reverse chain {n}: all but root pending"), n - 1, &waiting);
    let done = insert_and_read(&mut store, std::slice::from_ref(root), base);
    assert_eq!(done.applied, n + 1, "and the genesis");
    print_row(&format!("reverse chain {n}: after cascade"), n, &done);
    drop(store);
}

fn main() {
    let sample = bench_factory().chain(2);
    let typical = &sample[1];
    println!(
        "typical chain delta: 1 parent, {}-byte payload: encoded {} bytes; in memory {} bytes \
         (Arc header + CausalDelta {} + parents {} + payload {}), not counted below",
        typical.payload.len(),
        typical.encoded_len(),
        2 * std::mem::size_of::<usize>()
            + std::mem::size_of::<CausalDelta>()
            + typical.parents.len() * std::mem::size_of::<DeltaId>()
            + typical.payload.len(),
        std::mem::size_of::<CausalDelta>(),
        typical.parents.len() * std::mem::size_of::<DeltaId>(),
        typical.payload.len(),
    );
    println!();
    print_header();
    for n in [10_000, 100_000] {
        let chain = bench_factory().chain(n);
        measure(&format!("linear chain {n}, in order"), &chain);
    }
    for n in [10_000, 100_000] {
        let mut dag = chain_with_side_branches(&mut bench_factory(), n, 10);
        measure(&format!("chain + side branches {n}, in order"), &dag);
        XorShift64::new(0x5eed).shuffle(&mut dag);
        measure(&format!("chain + side branches {n}, shuffled"), &dag);
    }
    for n in [10_000, 100_000] {
        measure_reverse(n);
    }
    measure_wide(1_000, 250);
}
