//! Throughput of the DAG store: inserting deltas in various orders and shapes, and the two
//! queries sync leans on (`missing_parents`, `deltas_since`).
//!
//! Deltas are generated once per case, outside the measured loop; each measured iteration gets
//! a fresh store and a clone of the `Vec` of `Arc`s from an untimed setup closure, and returns
//! the store so its drop is not timed either. The applier is a no-op, so the numbers are the
//! DAG's own bookkeeping.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use rhizome_benches::{bench_factory, chain_with_side_branches, fan_out_merge, new_store, payload, XorShift64};
use rhizome_core::dag::{AddOutcome, DagStore};
use rhizome_core::testing::NoopApplier;
use rhizome_core::{DeltaId, DeltaRef, Timestamp};
use std::hint::black_box;
use std::time::Duration;

const NOW: Timestamp = Timestamp::from_secs(1);
const SHUFFLE_SEED: u64 = 0x5eed_f00d_da6a_0001;

/// Inserts every delta in order into a fresh store; returns the store (dropped untimed).
fn insert_all(deltas: Vec<DeltaRef>) -> DagStore {
    let mut store = new_store();
    let mut applier = NoopApplier;
    for delta in deltas {
        black_box(store.add(NOW, delta, &mut applier));
    }
    store
}

/// Runs the insertion once outside the bench and checks that everything got applied.
fn check_all_applied(deltas: &[DeltaRef]) {
    let store = insert_all(deltas.to_vec());
    assert_eq!(store.applied_len(), deltas.len() + 1, "not everything applied (beside the genesis)");
    assert_eq!(store.pending_len(), 0, "deltas left pending");
    assert_eq!(store.heads().len(), 1, "expected a single head");
}

/// Benches inserting `deltas` (in the given order) into an empty store as one case.
fn bench_insert(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    deltas: &[DeltaRef],
) {
    check_all_applied(deltas);
    let size = if deltas.len() >= 10_000 { BatchSize::PerIteration } else { BatchSize::LargeInput };
    group.throughput(Throughput::Elements(deltas.len() as u64));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter_batched(|| deltas.to_vec(), insert_all, size);
    });
}

fn configure_large(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
}

fn configure_small(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
}

fn linear_insert(c: &mut Criterion) {
    let small = bench_factory().chain(1_000);
    let large = bench_factory().chain(100_000);
    let mut group = c.benchmark_group("linear_insert");
    configure_small(&mut group);
    bench_insert(&mut group, "1k", &small);
    configure_large(&mut group);
    bench_insert(&mut group, "100k", &large);
    group.finish();
}

fn reverse_insert(c: &mut Criterion) {
    let mut small = bench_factory().chain(1_000);
    small.reverse();
    let mut large = bench_factory().chain(100_000);
    large.reverse();
    let mut group = c.benchmark_group("reverse_insert");
    configure_small(&mut group);
    bench_insert(&mut group, "1k", &small);
    configure_large(&mut group);
    bench_insert(&mut group, "100k", &large);
    group.finish();
}

fn random_order_insert(c: &mut Criterion) {
    // A 100k-delta chain in which every 10th main delta merges a side delta forked 5 back.
    let mut deltas = chain_with_side_branches(&mut bench_factory(), 100_000, 10);
    XorShift64::new(SHUFFLE_SEED).shuffle(&mut deltas);
    let mut group = c.benchmark_group("random_order_insert");
    configure_large(&mut group);
    bench_insert(&mut group, "100k", &deltas);
    group.finish();
}

fn branch_merge(c: &mut Criterion) {
    let deltas = fan_out_merge(&mut bench_factory(), 200);
    let mut group = c.benchmark_group("branch_merge");
    configure_small(&mut group);
    bench_insert(&mut group, "200", &deltas);
    group.finish();
}

fn missing_parents(c: &mut Criterion) {
    // 5,000 pending deltas, each waiting on its own parent that nobody has.
    let mut factory = bench_factory();
    let mut store = new_store();
    let mut applier = NoopApplier;
    for index in 0..5_000u64 {
        let phantom = DeltaId::hash_of(&index.to_le_bytes());
        let delta = factory.make(&[phantom], payload(index as usize));
        let outcome = store.add(NOW, delta, &mut applier);
        assert!(matches!(outcome, AddOutcome::Pending { .. }), "{outcome:?}");
    }
    assert_eq!(store.pending_len(), 5_000);
    let page = store.missing_parents(None, 256);
    assert_eq!(page.ids.len(), 256);
    assert!(page.next.is_some());

    let mut group = c.benchmark_group("missing_parents");
    configure_small(&mut group);
    group.bench_function("page_256_of_5000", |b| {
        b.iter(|| store.missing_parents(black_box(None), black_box(256)));
    });
    group.finish();
}

fn deltas_since(c: &mut Criterion) {
    // A 10k chain; the peer has applied the first 8,000 (its head is the 8,000th delta).
    let chain = bench_factory().chain(10_000);
    let known = [chain[7_999].id];
    let store = insert_all(chain);
    let page = store.deltas_since(&known, None, None, 500, usize::MAX, usize::MAX).expect("gap is walkable");
    assert_eq!(page.gap_total, 2_000);
    assert_eq!(page.deltas.len(), 500);
    assert!(page.next.is_some());

    let mut group = c.benchmark_group("deltas_since");
    configure_small(&mut group);
    group.bench_function("page_500_gap_2000", |b| {
        b.iter(|| store.deltas_since(black_box(&known), None, None, black_box(500), usize::MAX, usize::MAX));
    });
    group.finish();
}

criterion_group!(
    benches,
    linear_insert,
    reverse_insert,
    random_order_insert,
    branch_merge,
    missing_parents,
    deltas_since
);
criterion_main!(benches);
