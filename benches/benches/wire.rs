//! Encode and decode costs of the wire messages, plus the signature check a received delta
//! pays before it reaches the DAG (for scale against the DAG insert cost).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rhizome_core::dag::SinceCursor;
use rhizome_core::testing::DeltaFactory;
use rhizome_core::wire::{GossipMessage, GossipV1, Heartbeat, SyncResponse, SyncResponseV1};
use rhizome_core::{ContextId, DeltaId, DeltaRef, Limits, RootHash};
use std::hint::black_box;

fn sample_deltas(count: usize, payload_bytes: usize) -> Vec<DeltaRef> {
    let mut factory = DeltaFactory::signed(ContextId::hash_of(b"wire-bench"), [7; 32]);
    let mut deltas: Vec<DeltaRef> = Vec::with_capacity(count);
    for index in 0..count {
        let parents: Vec<DeltaId> = deltas.last().map(|last| vec![last.id]).unwrap_or_default();
        let mut payload = vec![0u8; payload_bytes];
        payload[..8].copy_from_slice(&(index as u64).to_le_bytes());
        deltas.push(factory.make(&parents, payload));
    }
    deltas
}

fn gossip_delta(c: &mut Criterion) {
    let limits = Limits::default();
    let delta = sample_deltas(1, 128).remove(0);
    let message = GossipV1::Delta(delta.clone());
    let bytes = GossipMessage::encode_v1(message.clone());
    let mut group = c.benchmark_group("wire/gossip_delta_128b_payload");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter_batched(|| message.clone(), |m| black_box(GossipMessage::encode_v1(m)), BatchSize::SmallInput)
    });
    group
        .bench_function("decode", |b| b.iter(|| black_box(GossipMessage::decode(black_box(&bytes), &limits).unwrap())));
    group.bench_function("verify_id_and_signature", |b| b.iter(|| black_box(&delta).verify(&limits).unwrap()));
    group.finish();
}

fn heartbeat(c: &mut Criterion) {
    let limits = Limits::default();
    let heads: Vec<DeltaId> = (0..4u32).map(|i| DeltaId::hash_of(&i.to_le_bytes())).collect();
    let message = GossipV1::Heartbeat(Heartbeat {
        context: ContextId::hash_of(b"c"),
        sender: rhizome_core::PeerId::hash_of(b"sender"),
        sequence: 1_700_000_000_000,
        root: RootHash::hash_of(b"r"),
        heads,
        applied_count: 10_000,
    });
    let bytes = GossipMessage::encode_v1(message.clone());
    let mut group = c.benchmark_group("wire/heartbeat_4_heads");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter_batched(|| message.clone(), |m| black_box(GossipMessage::encode_v1(m)), BatchSize::SmallInput)
    });
    group
        .bench_function("decode", |b| b.iter(|| black_box(GossipMessage::decode(black_box(&bytes), &limits).unwrap())));
    group.finish();
}

fn deltas_page(c: &mut Criterion) {
    let limits = Limits::default();
    let deltas = sample_deltas(500, 128);
    let last = deltas.last().unwrap().id;
    let response = SyncResponseV1::Deltas {
        context: ContextId::hash_of(b"wire-bench"),
        deltas,
        next: Some(SinceCursor { height: 500, id: last }),
        gap_total: 2_000,
    };
    let bytes = SyncResponse::encode_v1(response.clone());
    let mut group = c.benchmark_group("wire/deltas_page_500x128b");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter_batched(|| response.clone(), |r| black_box(SyncResponse::encode_v1(r)), BatchSize::SmallInput)
    });
    group.bench_function("decode", |b| b.iter(|| black_box(SyncResponse::decode(black_box(&bytes), &limits).unwrap())));
    group.finish();
}

criterion_group!(benches, gossip_delta, heartbeat, deltas_page);
criterion_main!(benches);
