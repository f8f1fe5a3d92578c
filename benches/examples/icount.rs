//! Fixed-iteration workloads for instruction counting under callgrind, whose counts the machine's
//! load does not change (criterion's wall-clock medians on a noisy 2-core machine cannot tell a few
//! per cent apart). Build with `cargo build --release -p rhizome-benches --example icount` (and
//! the apps with `cargo xtask apps`), run
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount MODE`
//! for each MODE and subtract its setup's count:
//!
//! | MODE | workload | subtract |
//! |---|---|---|
//! | `insert` | 50 times a 1,000-delta chain into a fresh store | `setup` |
//! | `encode`, `decode` | 100,000 times one gossip delta with a 128-byte payload | `setup` |
//! | `branch_merge` | 500 times a root, 200 children and their merge (the `branch_merge/200` bench) into a fresh store | `setup` |
//! | `kv_set` | 2,000 kv `set` calls on the on-demand allocator, each discarded (`runtime/local_kv_set`) | `runtime_setup` |
//! | `instantiate` | 2,000 instantiations through `InstancePre`, on-demand allocator (`runtime/instantiate_pre`) | `runtime_setup` |
use rhizome_benches::{bench_factory, fan_out_merge, new_store};
use rhizome_core::testing::NoopApplier;
use rhizome_core::wire::{GossipMessage, GossipV1};
use rhizome_core::{ContextId, DeltaRef, Hlc, Keypair, Timestamp};
use rhizome_runtime::{EngineOptions, Runtime, RuntimeLimits, RuntimeOptions};
use std::hint::black_box;

const RUNTIME_CALLS: u64 = 2_000;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut factory = bench_factory();
    let chain = factory.chain(1_000);
    let delta = factory.make(&[chain[999].id], vec![7; 128]);
    let bytes = GossipMessage::encode_v1(GossipV1::Delta(delta.clone()));
    let fan_out = fan_out_merge(&mut factory, 200);
    match mode.as_str() {
        "insert" => {
            for _ in 0..50 {
                insert_all(&chain);
            }
        }
        "encode" => {
            for _ in 0..100_000 {
                black_box(GossipMessage::encode_v1(GossipV1::Delta(black_box(delta.clone()))));
            }
        }
        "decode" => {
            for _ in 0..100_000 {
                let _ = black_box(GossipMessage::decode(black_box(&bytes), &Default::default()));
            }
        }
        "branch_merge" => {
            for _ in 0..500 {
                insert_all(&fan_out);
            }
        }
        "runtime_setup" => {
            black_box(kv_runtime());
        }
        "kv_set" => {
            let mut runtime = kv_runtime();
            let input = borsh::to_vec(&("key-1".to_owned(), "value".to_owned())).expect("encodes");
            for n in 1..=RUNTIME_CALLS {
                let outcome = runtime.call(context(), "set", input.clone(), hlc(n)).expect("set runs");
                runtime.discard_uncommitted();
                black_box(outcome.payload);
            }
        }
        "instantiate" => {
            let runtime = kv_runtime();
            let app = runtime.app_of(&context()).expect("bound");
            for _ in 0..RUNTIME_CALLS {
                runtime.instantiate_probe(black_box(&app)).expect("instantiates");
            }
        }
        _ => {}
    }
}

fn insert_all(deltas: &[DeltaRef]) {
    let mut store = new_store();
    let mut applier = NoopApplier;
    for d in deltas.iter().cloned() {
        black_box(store.add(Timestamp::from_secs(1), d, &mut applier));
    }
    black_box(store);
}

fn context() -> ContextId {
    ContextId::hash_of(b"runtime-bench")
}

fn hlc(n: u64) -> Hlc {
    Hlc { physical_ms: 1_700_000_000_000 + n, logical: 0, node: 1 }
}

/// The runtime bench's runtime: the kv app on the on-demand allocator, one context bound.
fn kv_runtime() -> Runtime {
    let key = Keypair::from_secret_bytes([1; 32]);
    let engine = EngineOptions { pooling_allocator: false, ..EngineOptions::default() };
    let options = RuntimeOptions { engine, limits: RuntimeLimits::default(), local_author: key.author_key() };
    let mut runtime = Runtime::new(options).expect("runtime");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm/kv_store.wasm");
    let module =
        std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}; run `cargo xtask apps`", path.display()));
    let app = runtime.install_app(&module).expect("installs");
    runtime.create_context(context(), app).expect("binds");
    runtime
}
