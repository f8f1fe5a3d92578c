//! Regression tests for defects an independent review of the runtime found.

use crate::support::*;
use rhizome_core::{Applier, CausalDelta, Hlc};
use rhizome_runtime::{CallError, HandlerStep, RuntimeLimits};

#[test]
fn another_nodes_handler_delta_does_not_complete_this_nodes_job() {
    let module = module("todo");
    let mut a = Replica::new(1, &module);
    let mut b = Replica::new(2, &module);
    let mut c = Replica::new(3, &module);
    a.call::<_, String>("add", &"shared".to_owned()).unwrap();
    let added = a.outbox.remove(0);
    b.deliver(&a, added.clone());
    c.receive(&a, added);
    assert_eq!(c.node.applier().pending_handler_jobs(&context()), 1);
    // b's handler delta names the same (delta, event) job; it must not cancel c's.
    for bytes in std::mem::take(&mut b.outbox) {
        c.receive(&b, bytes);
    }
    assert_eq!(c.node.applier().pending_handler_jobs(&context()), 1, "c still owes its handler run");
    c.run_handlers();
    let c_key = *key(3).author_key().as_bytes();
    assert_eq!(c.call::<_, i64>("seen_count", &c_key).unwrap(), 1);
}

#[test]
fn re_applying_a_delta_does_not_queue_its_handlers_again() {
    let module = module("todo");
    let mut a = Replica::new(1, &module);
    a.call::<_, String>("add", &"once".to_owned()).unwrap();
    let rhizome_core::wire::Gossip::Delta(delta) =
        rhizome_core::wire::GossipMessage::decode(&a.outbox[0], &Default::default()).unwrap()
    else {
        panic!("a delta")
    };
    let delta = opened(&delta);
    let mut runtime = runtime_for(key(2).author_key(), RuntimeLimits::default());
    let app = runtime.install_app(&module).unwrap();
    runtime.create_context(context(), app).unwrap();
    runtime.apply(&context(), &delta).unwrap();
    let hlc = Hlc { physical_ms: T0.as_millis() + 5, logical: 0, node: 2 };
    let Ok(HandlerStep::NeedsDelta(payload)) = runtime.run_next_handler(context(), hlc) else {
        panic!("handler writes")
    };
    let handled = CausalDelta::new_signed(&key(2), context(), vec![delta.id], hlc, payload.encode());
    runtime.apply(&context(), &handled).unwrap();
    assert_eq!(runtime.pending_handler_jobs(&context()), 0);
    // A snapshot adoption re-applies deltas the snapshot lacked: no second handler run.
    runtime.apply(&context(), &delta).unwrap();
    assert_eq!(runtime.pending_handler_jobs(&context()), 0);
}

#[test]
fn payload_bounds_are_protocol_constants_not_node_settings() {
    // A node whose own calls are limited to tiny values still merges a peer's larger value.
    let tight = RuntimeLimits { max_value_bytes: 8, ..RuntimeLimits::default() };
    let mut small = Replica::with_limits(1, &module("kv_store"), tight);
    let mut big = Replica::new(2, &module("kv_store"));
    big.call::<_, ()>("set", &("k".to_owned(), "a value longer than eight bytes".to_owned())).unwrap();
    exchange(&mut big, &mut small);
    assert_eq!(small.root(), big.root());
    assert!(small.call::<_, ()>("set", &("k".to_owned(), "too long for me".to_owned())).is_err());
    // And call limits above the protocol bounds are refused outright.
    let loose = RuntimeLimits { max_value_bytes: 1 << 30, ..RuntimeLimits::default() };
    let options = rhizome_runtime::RuntimeOptions {
        engine: Default::default(),
        limits: loose,
        local_author: key(1).author_key(),
    };
    assert!(matches!(
        rhizome_runtime::Runtime::<rhizome_runtime::MemoryBackend>::new(options),
        Err(CallError::Config(_))
    ));
}

#[test]
fn a_call_whose_payload_would_be_too_large_for_a_delta_fails_as_a_call() {
    let limits = RuntimeLimits { max_payload_bytes: 1_000, ..RuntimeLimits::default() };
    let mut a = Replica::with_limits(1, &module("kv_store"), limits);
    let error = a.call::<_, ()>("set", &("k".to_owned(), "x".repeat(2_000))).unwrap_err();
    assert!(matches!(&error, CallError::LimitExceeded(message) if message.contains("payload")), "{error:?}");
    a.call::<_, ()>("set", &("k".to_owned(), "fits".to_owned())).unwrap();
}

#[test]
fn a_second_writing_call_waits_for_the_first_ones_delta() {
    let mut runtime = runtime_for(key(1).author_key(), RuntimeLimits::default());
    let app = runtime.install_app(&module("counter")).unwrap();
    runtime.create_context(context(), app).unwrap();
    let hlc = Hlc { physical_ms: T0.as_millis(), logical: 0, node: 1 };
    let first = runtime.call(context(), "increment", borsh::to_vec(&1i64).unwrap(), hlc).unwrap();
    assert!(first.needs_delta());
    assert_eq!(runtime.call(context(), "get", vec![], hlc).unwrap_err(), CallError::Uncommitted);
    // Committing the delta (applying it) releases the guard.
    let delta = CausalDelta::new_signed(&key(1), context(), vec![], hlc, first.payload.encode());
    runtime.apply(&context(), &delta).unwrap();
    let next = Hlc { logical: 1, ..hlc };
    let second = runtime.call(context(), "increment", borsh::to_vec(&1i64).unwrap(), next).unwrap();
    assert_eq!(borsh::from_slice::<i64>(&second.return_value).unwrap(), 2, "both increments count");
    runtime.discard_uncommitted();
    assert!(runtime.call(context(), "get", vec![], next).is_ok());
}

#[test]
fn host_work_is_paid_for_in_fuel() {
    let mut a = Replica::new(1, &module("kv_store"));
    let small = a.call_raw("set", borsh::to_vec(&("k".to_owned(), "v".to_owned())).unwrap()).unwrap().fuel_used;
    let large = a.call_raw("set", borsh::to_vec(&("k".to_owned(), "v".repeat(100_000))).unwrap()).unwrap().fuel_used;
    assert!(large > small + 200_000, "moving 100 KB in and writing it costs fuel: {small} vs {large}");
}

#[test]
fn a_snapshot_whose_state_holds_a_stamp_from_the_future_is_refused_and_changes_nothing() {
    // A peer's state where one write carries an HLC ten days ahead: its root is honest (the
    // peer hashed what it sent), but the write would outrank every honest write to its key for
    // ten days. The drift bound refuses such a delta; an import must refuse such state too.
    let module = module("kv_store");
    let context = context();
    let mut sender = runtime_for(key(1).author_key(), RuntimeLimits::default());
    let app = sender.install_app(&module).unwrap();
    sender.create_context(context, app).unwrap();
    let ten_days_ms = 10 * 24 * 3_600 * 1_000;
    let future = Hlc { physical_ms: T0.as_millis() + ten_days_ms, logical: 0, node: 1 };
    let payload = rhizome_runtime::AppPayload::V1 {
        actions: vec![rhizome_runtime::Action::RegisterSet {
            path: rhizome_runtime::Path::new([b"kv".to_vec(), b"k".to_vec()]),
            value: b"mine forever".to_vec(),
        }],
        events: vec![],
        handled: None,
    };
    sender.apply(&context, &CausalDelta::new_signed(&key(1), context, vec![], future, payload.encode())).unwrap();
    let state = sender.export_state(&context, usize::MAX).unwrap();
    let root = sender.root_hash(&context);

    let mut receiver = runtime_for(key(2).author_key(), RuntimeLimits::default());
    let app = receiver.install_app(&module).unwrap();
    receiver.create_context(context, app).unwrap();
    let before = receiver.root_hash(&context);
    let bound_ms = T0.as_millis() + rhizome_core::Limits::default().max_hlc_drift_ms;
    match receiver.import_state(&context, &state, &root, bound_ms) {
        Err(rhizome_core::ApplyError::InvalidSnapshotEntry {
            fault: rhizome_core::SnapshotEntryFault::StampAhead { ahead_ms, .. },
            ..
        }) => assert_eq!(ahead_ms, T0.as_millis() + ten_days_ms - bound_ms),
        other => panic!("expected a stamp-ahead refusal, got {other:?}"),
    }
    assert_eq!(receiver.root_hash(&context), before, "a refused import changes nothing");
    // Ten days on, the same state is ordinary and imports.
    receiver.import_state(&context, &state, &root, future.physical_ms).unwrap();
    assert_eq!(receiver.root_hash(&context), root);
}
