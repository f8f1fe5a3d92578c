//! Delta signature checks, one at a time against in batches (core/src/signature_batch.rs), on
//! sync pages of N deltas with 1 KiB payloads, and the remote apply of such a page (checks and
//! DAG insert, a no-op applier). Every case checks the id too (BLAKE3 over the 1 KiB payload),
//! as a node does for each delta it takes in.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rhizome_benches::{bench_genesis, new_store};
use rhizome_core::signature_batch::verify_records;
use rhizome_core::testing::{DeltaFactory, NoopApplier};
use rhizome_core::{CausalDelta, ContextId, DeltaId, DeltaRef, Limits, Timestamp};
use std::hint::black_box;

const PAGE_SIZES: [usize; 4] = [1, 8, 64, 256];

/// A chain of `count` deltas with 1 KiB payloads, by `authors` keys in turn.
fn page(count: usize, authors: u8) -> Vec<DeltaRef> {
    let mut factories: Vec<DeltaFactory> =
        (0..authors).map(|n| DeltaFactory::signed(ContextId::hash_of(b"signature-bench"), [0x10 + n; 32])).collect();
    let mut deltas: Vec<DeltaRef> = Vec::with_capacity(count);
    for index in 0..count {
        let parents: Vec<DeltaId> = deltas.last().map(|last| vec![last.id]).unwrap_or_default();
        let mut payload = vec![0u8; 1024];
        payload[..8].copy_from_slice(&(index as u64).to_le_bytes());
        let author = index % factories.len();
        deltas.push(factories[author].make(&parents, payload));
    }
    deltas
}

/// The check before batching: the id, then ed25519-dalek's `verify_strict`.
fn strict_check(delta: &CausalDelta) -> bool {
    let mut message = b"rhizome/delta-signature/v1".to_vec();
    message.extend_from_slice(delta.id.as_bytes());
    let key = ed25519_dalek::VerifyingKey::from_bytes(delta.author.as_bytes()).unwrap();
    let signature = ed25519_dalek::Signature::from_bytes(&delta.signature.0);
    delta.recompute_id() == delta.id && key.verify_strict(&message, &signature).is_ok()
}

fn verify_pages(c: &mut Criterion) {
    let limits = Limits::default();
    for count in PAGE_SIZES {
        let deltas = page(count, 4);
        let records: Vec<&CausalDelta> = deltas.iter().map(|delta| &**delta).collect();
        let mut group = c.benchmark_group(format!("signatures/page_1kib_4_authors/{count}"));
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function("strict_each", |b| b.iter(|| assert!(records.iter().all(|delta| strict_check(delta)))));
        group.bench_function("single_each", |b| {
            b.iter(|| assert!(records.iter().all(|delta| delta.verify_with(&limits, None).is_ok())))
        });
        group.bench_function("batch", |b| {
            b.iter(|| assert!(verify_records(black_box(&records), &limits, None).iter().all(Result::is_ok)))
        });
        group.finish();
    }
}

/// A page by the bench context's admin, applied as a node applies one: checked, then added.
fn remote_apply(c: &mut Criterion) {
    let limits = Limits::default();
    let count = 256;
    let mut factory = DeltaFactory::signed_on(&bench_genesis(), [0x5a; 32]);
    let mut deltas: Vec<DeltaRef> = Vec::with_capacity(count);
    for index in 0..count {
        let parents: Vec<DeltaId> = deltas.last().map(|last| vec![last.id]).unwrap_or_default();
        deltas.push(factory.make(&parents, vec![index as u8; 1024]));
    }
    let mut group = c.benchmark_group(format!("signatures/remote_apply_page_1kib/{count}"));
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function("single_each", |b| {
        b.iter_batched(
            new_store,
            |mut store| {
                for delta in &deltas {
                    delta.verify_with(&limits, None).unwrap();
                    store.add(Timestamp::ZERO, delta.clone(), &mut NoopApplier);
                }
                store
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("batch", |b| {
        b.iter_batched(
            new_store,
            |mut store| {
                let records: Vec<&CausalDelta> = deltas.iter().map(|delta| &**delta).collect();
                for (delta, verdict) in deltas.iter().zip(verify_records(&records, &limits, None)) {
                    verdict.unwrap();
                    store.add(Timestamp::ZERO, delta.clone(), &mut NoopApplier);
                }
                store
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, verify_pages, remote_apply);
criterion_main!(benches);
