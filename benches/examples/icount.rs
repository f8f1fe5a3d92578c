//! Fixed-iteration workloads for instruction counting under callgrind, whose counts the machine's
//! load does not change (criterion's wall-clock medians on a noisy 2-core machine cannot tell a few
//! per cent apart). Build with `cargo build --release -p rhizome-benches --example icount`, run
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/icount MODE`
//! for MODE = setup, insert, encode and decode, and subtract the setup count. `insert` is 50 times
//! a 1,000-delta chain into a fresh store; `encode` and `decode` are 100,000 times one gossip delta
//! with a 128-byte payload.
use rhizome_benches::{bench_factory, new_store};
use rhizome_core::testing::NoopApplier;
use rhizome_core::wire::{GossipMessage, GossipV1};
use rhizome_core::Timestamp;
use std::hint::black_box;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut factory = bench_factory();
    let chain = factory.chain(1_000);
    let delta = factory.make(&[chain[999].id], vec![7; 128]);
    let bytes = GossipMessage::encode_v1(GossipV1::Delta(delta.clone()));
    match mode.as_str() {
        "insert" => {
            for _ in 0..50 {
                let mut store = new_store();
                let mut applier = NoopApplier;
                for d in chain.iter().cloned() {
                    black_box(store.add(Timestamp::from_secs(1), d, &mut applier));
                }
                black_box(store);
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
        _ => {}
    }
}
