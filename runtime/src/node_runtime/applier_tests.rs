//! What the applier refuses from peers: a snapshot whose entries deltas could not have made
//! (changing nothing), and a delta whose actions refer to stamps not earlier than their own.

use super::{Runtime, RuntimeOptions};
use crate::crdt::{LwwRegister, Slot};
use crate::path::Path;
use crate::payload::{Action, AppPayload};
use crate::stamp::Stamp;
use crate::state::{MemoryBackend, StateStore};
use rhizome_core::{
    Applier, ApplyError, CausalDelta, ContextId, Hlc, Keypair, RootHash, SnapshotEntryFault, StateRecord,
};

/// The smallest module the runtime installs: a memory export and nothing else. These tests
/// merge natively and never call it.
const MEMORY_ONLY_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, at least one page
    0x07, 0x0a, 0x01, 0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // export "memory"
];

const NOW_MS: u64 = 1_700_000_000_000;
const BOUND_MS: u64 = NOW_MS + 5_000;

fn author() -> Keypair {
    Keypair::from_secret_bytes([3; 32])
}

fn context() -> ContextId {
    ContextId::from_bytes([9; 32])
}

fn runtime() -> Runtime {
    let options = RuntimeOptions {
        engine: Default::default(),
        limits: Default::default(),
        local_author: Keypair::from_secret_bytes([1; 32]).author_key(),
    };
    let mut runtime = Runtime::new(options).expect("engine builds");
    let app = runtime.install_app(MEMORY_ONLY_MODULE).expect("a memory-only module installs");
    runtime.create_context(context(), app).unwrap();
    runtime
}

fn hlc(physical_ms: u64) -> Hlc {
    Hlc { physical_ms, logical: 0, node: 7 }
}

fn delta(at: Hlc, actions: Vec<Action>) -> CausalDelta {
    let payload = AppPayload::V1 { actions, events: vec![], handled: None };
    CausalDelta::new_signed(&author(), context(), vec![], at, payload.encode())
}

fn path(key: &str) -> Path {
    Path::new([b"kv".to_vec(), key.as_bytes().to_vec()])
}

fn set(key: &str, value: &str) -> Action {
    Action::RegisterSet { path: path(key), value: value.as_bytes().to_vec() }
}

/// A runtime holding one write, and its root.
fn holding_state() -> (Runtime, RootHash) {
    let mut runtime = runtime();
    runtime.apply(&context(), &delta(hlc(NOW_MS - 1_000), vec![set("mine", "kept")])).unwrap();
    let root = runtime.root_hash(&context());
    (runtime, root)
}

/// Encodes `entries` as a snapshot's state with the root they honestly hash to: the sender
/// hashed what it sent, so only the entry checks stand between it and our state.
fn snapshot(entries: Vec<(Vec<u8>, Vec<u8>)>) -> (Vec<u8>, RootHash) {
    let mut store = StateStore::new(MemoryBackend::default());
    store.replace_all(entries.clone()).unwrap();
    (rhizome_core::wire::encode(&entries), store.root())
}

fn register_at(physical_ms: u64) -> Vec<u8> {
    let stamp = Stamp { hlc: hlc(physical_ms), ..Stamp::default() };
    Slot { register: Some(LwwRegister { value: Some(b"theirs".to_vec()), stamp }), ..Slot::default() }.encode()
}

#[test]
fn a_snapshot_with_a_value_that_does_not_decode_is_refused_and_nothing_is_replaced() {
    let (mut runtime, before) = holding_state();
    let (state, root) =
        snapshot(vec![(path("a").value_key(), register_at(NOW_MS)), (path("b").value_key(), vec![0xff; 5])]);
    assert_eq!(
        runtime.import_state(&context(), &state, &root, BOUND_MS),
        Err(ApplyError::InvalidSnapshotEntry { index: 1, fault: SnapshotEntryFault::Undecodable(StateRecord::Slot) })
    );
    assert_eq!(runtime.root_hash(&context()), before, "our state is untouched");
}

#[test]
fn a_snapshot_stamped_at_the_end_of_time_is_refused_and_nothing_is_replaced() {
    let (mut runtime, before) = holding_state();
    let (state, root) = snapshot(vec![(path("mine").value_key(), register_at(u64::MAX))]);
    match runtime.import_state(&context(), &state, &root, BOUND_MS) {
        Err(ApplyError::InvalidSnapshotEntry { index: 0, fault: SnapshotEntryFault::StampAhead { ahead_ms, .. } }) => {
            assert_eq!(ahead_ms, u64::MAX - BOUND_MS);
        }
        other => panic!("expected a stamp-ahead refusal, got {other:?}"),
    }
    assert_eq!(runtime.root_hash(&context()), before, "our state is untouched");
}

#[test]
fn a_valid_snapshot_replaces_the_state_and_reports_its_latest_stamp() {
    let (mut runtime, _) = holding_state();
    let (state, root) = snapshot(vec![
        (path("a").value_key(), register_at(NOW_MS + 4_000)),
        (path("b").value_key(), register_at(NOW_MS - 9_000)),
    ]);
    assert_eq!(runtime.import_state(&context(), &state, &root, BOUND_MS), Ok(Some(hlc(NOW_MS + 4_000))));
    assert_eq!(runtime.root_hash(&context()), root);
}

#[test]
fn an_action_referring_to_a_stamp_after_its_delta_is_refused_counted_and_changes_nothing() {
    let (mut runtime, before) = holding_state();
    let at = hlc(NOW_MS);
    let future_tag = Stamp { hlc: hlc(NOW_MS + 1), author: author().author_key(), index: 0 };
    let remove = Action::SetRemove { path: path("s"), element: b"e".to_vec(), observed: vec![future_tag] };
    let refused = delta(at, vec![set("x", "staged first"), remove]);
    assert_eq!(runtime.apply(&context(), &refused), Err(ApplyError::ReferenceNotEarlier { action: 1 }));
    assert_eq!(runtime.root_hash(&context()), before, "not even the first action landed");
    assert_eq!(runtime.metrics().deltas_refused.get("reference_not_earlier"), Some(&1));
    // Naming an earlier action of the same delta is what a call that reads its own writes does.
    let own_tag = Stamp { hlc: at, author: author().author_key(), index: 0 };
    let add = Action::SetAdd { path: path("s"), element: b"e".to_vec(), replaces: vec![] };
    let remove = Action::SetRemove { path: path("s"), element: b"e".to_vec(), observed: vec![own_tag] };
    runtime.apply(&context(), &delta(at, vec![add, remove])).unwrap();
    assert_eq!(runtime.metrics().deltas_merged, 2);
}
