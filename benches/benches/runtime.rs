//! The WASM runtime: a local kv `set` (WASM call recording its action), a remote one-action
//! merge (native, no WASM), instantiation through `InstancePre`, and the cost of one write as
//! the state grows from 1k to 1M keys (the Merkle index makes it O(log n)).
//!
//! Needs the apps: `cargo xtask apps` first (`cargo xtask bench` does not build them).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rhizome_core::{Applier, CausalDelta, ContextId, Hlc, Keypair};
use rhizome_runtime::{
    Action, AppPayload, EngineOptions, MemoryBackend, Path, Runtime, RuntimeLimits, RuntimeOptions, Stamp, StateStore,
};
use std::hint::black_box;

fn module(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}; run `cargo xtask apps` first", path.display()))
}

fn context() -> ContextId {
    ContextId::hash_of(b"runtime-bench")
}

fn runtime(pooling: bool) -> (Runtime, Keypair) {
    let key = Keypair::from_secret_bytes([1; 32]);
    let engine = EngineOptions { pooling_allocator: pooling, ..EngineOptions::default() };
    let options = RuntimeOptions { engine, limits: RuntimeLimits::default(), local_author: key.author_key() };
    let mut runtime = Runtime::new(options).unwrap();
    let app = runtime.install_app(&module("kv_store")).unwrap();
    runtime.create_context(context(), app).unwrap();
    (runtime, key)
}

fn hlc(n: u64) -> Hlc {
    Hlc { physical_ms: 1_700_000_000_000 + n, logical: 0, node: 1 }
}

fn local_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime/local_kv_set");
    group.throughput(Throughput::Elements(1));
    for (name, pooling) in [("on_demand_allocator", false), ("pooling_allocator", true)] {
        let (mut runtime, _) = runtime(pooling);
        let input = borsh::to_vec(&("key-1".to_owned(), "value".to_owned())).unwrap();
        let mut n = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let outcome = runtime.call(context(), "set", input.clone(), hlc(n)).unwrap();
                // Measures the call alone: its delta is never made, so release the guard.
                runtime.discard_uncommitted();
                black_box(outcome.payload)
            })
        });
    }
    // The whole local write for scale: the call, then signing the delta and merging it.
    let (mut runtime, key) = runtime(true);
    let input = borsh::to_vec(&("key-1".to_owned(), "value".to_owned())).unwrap();
    let mut n = 0;
    group.bench_function("call_sign_and_merge", |b| {
        b.iter(|| {
            n += 1;
            let outcome = runtime.call(context(), "set", input.clone(), hlc(n)).unwrap();
            let delta = CausalDelta::new_signed(&key, context(), vec![], hlc(n), outcome.payload.encode());
            runtime.apply(&context(), &delta).unwrap();
        })
    });
    group.finish();
}

fn one_action_delta(key: &Keypair, n: u64, path: Path) -> CausalDelta {
    let payload = AppPayload::V1 {
        actions: vec![Action::RegisterSet { path, value: b"value".to_vec() }],
        events: vec![],
        handled: None,
    };
    CausalDelta::new_signed(key, context(), vec![], hlc(n), payload.encode())
}

fn remote_merge(c: &mut Criterion) {
    let (mut runtime, _) = runtime(false);
    let remote = Keypair::from_secret_bytes([2; 32]);
    for i in 0..1_000u64 {
        let delta = one_action_delta(&remote, i, Path::new([b"kv".to_vec(), format!("k{i}").into_bytes()]));
        runtime.apply(&context(), &delta).unwrap();
    }
    let deltas: Vec<CausalDelta> = (0..10_000u64)
        .map(|i| {
            one_action_delta(&remote, 10_000 + i, Path::new([b"kv".to_vec(), format!("k{}", i % 1_000).into_bytes()]))
        })
        .collect();
    let mut next = 0;
    let mut group = c.benchmark_group("runtime/remote_merge");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_action_delta_1k_keys", |b| {
        b.iter(|| {
            let delta = &deltas[next % deltas.len()];
            next += 1;
            runtime.apply(&context(), black_box(delta)).unwrap();
        })
    });
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime/instantiate_pre");
    for (name, pooling) in [("on_demand_allocator", false), ("pooling_allocator", true)] {
        let (runtime, _) = runtime(pooling);
        let app = runtime.app_of(&context()).unwrap();
        group.bench_function(name, |b| b.iter(|| runtime.instantiate_probe(black_box(&app)).unwrap()));
    }
    group.finish();
}

/// One register write merged into a store of `size` keys: state slot read, join, Merkle update.
fn set_by_state_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime/one_set_by_state_size");
    group.sample_size(20);
    let author = Keypair::from_secret_bytes([3; 32]).author_key();
    for size in [1_000u64, 100_000, 1_000_000] {
        let mut store = StateStore::new(MemoryBackend::default());
        let mut batch = rhizome_runtime::state::StagedWrites::new();
        for i in 0..size {
            let path = Path::new([b"kv".to_vec(), i.to_le_bytes().to_vec()]);
            let slot = rhizome_runtime::crdt::Slot {
                register: Some(rhizome_runtime::crdt::LwwRegister {
                    value: Some(b"v".to_vec()),
                    stamp: Stamp::default(),
                }),
                ..Default::default()
            };
            batch.insert(rhizome_runtime::merge::value_key_of(&path), Some(slot.encode()));
        }
        store.commit(batch, Default::default()).unwrap();
        let mut n = 0u64;
        group.bench_function(format!("{size}_keys"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let path = Path::new([b"kv".to_vec(), (n % size).to_le_bytes().to_vec()]);
                    let stamp = Stamp { hlc: hlc(n), author, index: 0 };
                    (path, stamp)
                },
                |(path, stamp)| {
                    let mut txn = rhizome_runtime::state::Txn::new(&store);
                    let action = Action::RegisterSet { path, value: b"w".to_vec() };
                    rhizome_runtime::merge::apply_action(&mut txn, &action, stamp).unwrap();
                    let writes = txn.into_writes();
                    store.commit(writes, Default::default()).unwrap();
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, local_set, remote_merge, instantiate, set_by_state_size);
criterion_main!(benches);
