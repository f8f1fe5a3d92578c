//! Costs of the seal module: sealing and opening a delta payload (the budget is at most 2 µs
//! per 1 KiB payload for both together), and wrapping a context key to one member.
//!
//! `seal` is what an author pays (seal straight into the delta's payload bytes); `open` is
//! what every replica pays (open from the payload bytes). Inputs are built once,
//! outside the measured loop.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rhizome_core::seal::{open_payload_encoded, seal_payload_encoded, unwrap_key, wrap_key, SealHeader};
use rhizome_core::{AuthorKey, ContextId, ContextKey, DeltaId, Hlc, KeyEpoch, Keypair};
use std::hint::black_box;

/// The sealing node's per-start entropy (any fixed bytes: it only keeps runs apart).
const SALT: [u8; 32] = [3; 32];

fn payloads(c: &mut Criterion) {
    let key = ContextKey::new(KeyEpoch(1), [7; 32]);
    let context = ContextId::hash_of(b"seal-bench");
    let author = AuthorKey::hash_of(b"author");
    let mut parents = vec![DeltaId::hash_of(b"p1"), DeltaId::hash_of(b"p2")];
    parents.sort_unstable();
    let hlc = Hlc { physical_ms: 1_700_000_000_000, logical: 0, node: 1 };
    let header = SealHeader { context: &context, author: &author, parents: &parents, hlc: &hlc };

    let mut group = c.benchmark_group("seal/payload");
    for size in [64usize, 1024, 16 * 1024] {
        let plaintext: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let sealed = seal_payload_encoded(&key, &header, &SALT, &plaintext);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, plaintext| {
            b.iter(|| black_box(seal_payload_encoded(&key, &header, &SALT, black_box(plaintext))))
        });
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, sealed| {
            b.iter(|| black_box(open_payload_encoded(&key, &header, black_box(sealed)).unwrap()))
        });
    }
    group.finish();
}

fn key_wrapping(c: &mut Criterion) {
    let key = ContextKey::new(KeyEpoch(1), [7; 32]);
    let context = ContextId::hash_of(b"seal-bench");
    let admin = Keypair::from_secret_bytes([1; 32]);
    let member = Keypair::from_secret_bytes([2; 32]);
    let wrapped = wrap_key(&admin, &member.author_key(), &context, &key).unwrap();
    let mut group = c.benchmark_group("seal/key");
    group.bench_function("wrap", |b| {
        b.iter(|| black_box(wrap_key(&admin, &member.author_key(), &context, &key).unwrap()))
    });
    group.bench_function("unwrap", |b| {
        b.iter(|| black_box(unwrap_key(&member, &admin.author_key(), &context, black_box(&wrapped)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, payloads, key_wrapping);
criterion_main!(benches);
