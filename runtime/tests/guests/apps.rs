//! The runtime against the real app modules built from apps/.

use rhizome_core::Applier;

/// Whether a call error is the one a hostile method should produce.
type Expectation = fn(&CallError) -> bool;
use crate::support::*;
use rhizome_runtime::{AppPayload, CallError, HandlerStep, RuntimeLimits};

fn events(outcome: &rhizome_runtime::CallOutcome) -> Vec<(String, Vec<u8>)> {
    let AppPayload::V1 { events, .. } = &outcome.payload;
    events.iter().map(|event| (event.kind.clone(), event.data.clone())).collect()
}

#[test]
fn kv_store_calls_queries_and_events() {
    let mut a = Replica::new(1, &module("kv_store"));
    let set = |r: &mut Replica, k: &str, v: &str| {
        r.call_raw("set", borsh::to_vec(&(k.to_owned(), v.to_owned())).unwrap()).unwrap()
    };
    assert_eq!(events(&set(&mut a, "color", "red")), vec![("Inserted".to_owned(), b"color".to_vec())]);
    assert_eq!(events(&set(&mut a, "color", "blue")), vec![("Updated".to_owned(), b"color".to_vec())]);
    set(&mut a, "shape", "round");
    assert_eq!(a.call::<_, Option<String>>("get", &"color".to_owned()).unwrap(), Some("blue".to_owned()));
    let list: Vec<(String, String)> = a.call("list", &()).unwrap();
    assert_eq!(list, vec![("color".into(), "blue".into()), ("shape".into(), "round".into())]);
    let removed = a.call_raw("remove", borsh::to_vec(&"color".to_owned()).unwrap()).unwrap();
    assert_eq!(events(&removed), vec![("Removed".to_owned(), b"color".to_vec())]);
    assert_eq!(a.call::<_, Option<String>>("get", &"color".to_owned()).unwrap(), None);
    assert!(!a.call::<_, bool>("remove", &"color".to_owned()).unwrap(), "removing twice finds nothing");
    assert_eq!(a.call::<_, u64>("clear", &()).unwrap(), 1);
    assert!(a.call::<_, Vec<(String, String)>>("list", &()).unwrap().is_empty());
    // A read-only call makes no delta.
    let deltas = a.deltas.len();
    a.call::<_, Option<String>>("get", &"shape".to_owned()).unwrap();
    assert_eq!(a.deltas.len(), deltas);
}

#[test]
fn counter_adds_up_increments_from_both_replicas() {
    let mut a = Replica::new(1, &module("counter"));
    let mut b = Replica::new(2, &module("counter"));
    assert_eq!(a.call::<_, i64>("increment", &5i64).unwrap(), 5);
    assert_eq!(b.call::<_, i64>("increment", &-2i64).unwrap(), -2);
    assert_eq!(b.call::<_, i64>("increment", &10i64).unwrap(), 8);
    exchange(&mut a, &mut b);
    assert_eq!(a.call::<_, i64>("get", &()).unwrap(), 13);
    assert_eq!(b.call::<_, i64>("get", &()).unwrap(), 13);
    assert_eq!(a.root(), b.root());
}

#[test]
fn concurrent_kv_writes_on_two_replicas_converge_to_equal_roots() {
    let mut a = Replica::new(1, &module("kv_store"));
    let mut b = Replica::new(2, &module("kv_store"));
    for i in 0..20 {
        a.call::<_, ()>("set", &(format!("k{}", i % 7), format!("a{i}"))).unwrap();
        b.call::<_, ()>("set", &(format!("k{}", i % 5), format!("b{i}"))).unwrap();
        if i % 6 == 0 {
            b.call::<_, bool>("remove", &format!("k{}", i % 3)).unwrap();
        }
    }
    assert_ne!(a.root(), b.root());
    exchange(&mut a, &mut b);
    assert_eq!(a.root(), b.root(), "same deltas, same root");
    let list_a: Vec<(String, String)> = a.call("list", &()).unwrap();
    let list_b: Vec<(String, String)> = b.call("list", &()).unwrap();
    assert_eq!(list_a, list_b);
    assert!(!list_a.is_empty());
}

#[test]
fn the_same_call_on_two_fresh_runtimes_gives_identical_deltas_and_roots() {
    let run = || {
        let mut replica = Replica::new(1, &module("todo"));
        replica.call::<_, String>("add", &"write the ABI doc".to_owned()).unwrap();
        (replica.outbox.clone(), replica.root())
    };
    let (first_delta, first_root) = run();
    let (second_delta, second_root) = run();
    assert_eq!(first_delta, second_delta, "byte-identical delta, random id included");
    assert_eq!(first_root, second_root);
}

#[test]
fn a_handlers_writes_become_deltas_of_the_handling_node() {
    let mut a = Replica::new(1, &module("todo"));
    let mut b = Replica::new(2, &module("todo"));
    let id: String = a.call("add", &"buy milk".to_owned()).unwrap();
    exchange(&mut a, &mut b);
    // b saw a's "Added" event and counted it with a delta of its own, which reached a.
    let b_key = *key(2).author_key().as_bytes();
    assert_eq!(b.call::<_, i64>("seen_count", &b_key).unwrap(), 1);
    assert_eq!(a.call::<_, i64>("seen_count", &b_key).unwrap(), 1);
    assert_eq!(b.deltas.len(), 1, "exactly one handler delta");
    assert_eq!(a.root(), b.root());
    // a's own event is not handled by a.
    let a_key = *key(1).author_key().as_bytes();
    assert_eq!(a.call::<_, i64>("seen_count", &a_key).unwrap(), 0);
    let todos: Vec<(String, String, bool)> = b.call("list", &()).unwrap();
    assert_eq!(todos, vec![(id, "buy milk".to_owned(), false)]);
}

#[test]
fn handlers_run_exactly_once_across_restarts() {
    let module = module("todo");
    let mut a = Replica::new(1, &module);
    a.call::<_, String>("add", &"one".to_owned()).unwrap();
    let delta_bytes = a.outbox.remove(0);
    let rhizome_core::wire::Gossip::Delta(delta) =
        rhizome_core::wire::GossipMessage::decode(&delta_bytes, &Default::default()).unwrap()
    else {
        panic!("a delta")
    };
    let delta = opened(&delta);
    let b_author = key(2).author_key();
    let fresh = |parts| {
        let mut runtime = runtime_for(b_author, RuntimeLimits::default());
        let app = runtime.install_app(&module).unwrap();
        match parts {
            None => runtime.create_context(context(), app).unwrap(),
            Some(parts) => runtime.restore_context(context(), parts).unwrap(),
        }
        runtime
    };
    let restart = |runtime: rhizome_runtime::Runtime| {
        let mut parts = runtime.into_parts();
        fresh(Some(parts.remove(&context()).unwrap()))
    };
    // b applies a's delta: the job is recorded with the state change.
    let mut runtime = fresh(None);
    runtime.apply(&context(), &delta).unwrap();
    assert_eq!(runtime.pending_handler_jobs(&context()), 1);
    // Crash before running it: the job survives.
    runtime = restart(runtime);
    assert_eq!(runtime.pending_handler_jobs(&context()), 1);
    // Run it, crash before its delta is applied: it must run again.
    let hlc = rhizome_core::Hlc { physical_ms: T0.as_millis() + 10, logical: 0, node: 2 };
    assert!(matches!(runtime.run_next_handler(context(), hlc), Ok(HandlerStep::NeedsDelta(_))));
    runtime = restart(runtime);
    assert_eq!(runtime.pending_handler_jobs(&context()), 1);
    // Run it and apply its delta: done, for good.
    let Ok(HandlerStep::NeedsDelta(payload)) = runtime.run_next_handler(context(), hlc) else {
        panic!("handler writes")
    };
    let handler_delta =
        rhizome_core::CausalDelta::new_signed(&key(2), context(), vec![delta.id], hlc, payload.encode());
    runtime.apply(&context(), &handler_delta).unwrap();
    assert_eq!(runtime.pending_handler_jobs(&context()), 0);
    runtime = restart(runtime);
    assert_eq!(runtime.pending_handler_jobs(&context()), 0);
    assert!(matches!(runtime.run_next_handler(context(), hlc), Ok(HandlerStep::Idle)));
    // The count is 1, not 2.
    let outcome = runtime.call(context(), "seen_count", borsh::to_vec(b_author.as_bytes()).unwrap(), hlc).unwrap();
    assert_eq!(borsh::from_slice::<i64>(&outcome.return_value).unwrap(), 1);
}

#[test]
fn an_app_abort_fails_the_call_and_changes_nothing() {
    let mut a = Replica::new(1, &module("todo"));
    let root = a.root();
    let error = a.call::<_, ()>("complete", &"nope".to_owned()).unwrap_err();
    assert_eq!(error, CallError::Aborted("no to-do nope".to_owned()));
    assert_eq!(a.root(), root);
    assert!(a.deltas.is_empty());
    assert_eq!(a.call::<_, i64>("seen_count", &[0u8; 32]).unwrap(), 0, "the runtime keeps working");
}

#[test]
fn input_an_sdk_app_cannot_decode_is_bad_args_not_an_abort() {
    let mut a = Replica::new(1, &module("kv_store"));
    let root = a.root();
    // One string where `set` takes two; then bytes that are no borsh string at all.
    let one_string = a.call::<_, ()>("set", &"k".to_owned()).unwrap_err();
    assert!(matches!(&one_string, CallError::BadArgs(message) if message.starts_with("bad input")), "{one_string:?}");
    assert_eq!(one_string.label(), "bad_args");
    assert!(one_string.is_guest_fault(), "the same input fails the same way again");
    assert!(matches!(a.call_raw("get", vec![0xff]), Err(CallError::BadArgs(_))));
    assert_eq!(a.root(), root);
    assert!(a.deltas.is_empty());
    // The app's own refusals stay aborts.
    let mut todo = Replica::new(2, &module("todo"));
    assert!(matches!(todo.call::<_, ()>("complete", &"nope".to_owned()), Err(CallError::Aborted(_))));
    a.call::<_, ()>("set", &("k".to_owned(), "v".to_owned())).unwrap();
}

#[test]
fn an_oversized_value_is_refused() {
    let mut a = Replica::new(1, &module("kv_store"));
    let root = a.root();
    let big = "x".repeat(RuntimeLimits::default().max_value_bytes + 1);
    let error = a.call::<_, ()>("set", &("k".to_owned(), big)).unwrap_err();
    assert!(matches!(error, CallError::LimitExceeded(_)), "{error:?}");
    assert_eq!(a.root(), root);
    a.call::<_, ()>("set", &("k".to_owned(), "small".to_owned())).unwrap();
}

#[test]
fn unknown_methods_and_garbage_modules_are_typed_errors() {
    let mut a = Replica::new(1, &module("counter"));
    assert_eq!(a.call::<_, ()>("nope", &()).unwrap_err(), CallError::NoSuchMethod("nope".to_owned()));
    let mut runtime = runtime_for(key(1).author_key(), RuntimeLimits::default());
    assert!(matches!(runtime.install_app(b"not wasm"), Err(CallError::InvalidModule(_))));
    let tight = RuntimeLimits { max_module_bytes: 100, ..RuntimeLimits::default() };
    let mut runtime = runtime_for(key(1).author_key(), tight);
    assert!(matches!(runtime.install_app(&module("counter")), Err(CallError::ModuleTooLarge { .. })));
}

#[test]
fn every_limit_holds_against_an_sdk_built_hostile_app() {
    let limits = RuntimeLimits { fuel_per_call: 20_000_000, ..RuntimeLimits::default() };
    let mut hostile = Replica::with_limits(1, &module("hostile"), limits);
    let root = hostile.root();
    let expectations: [(&str, Expectation); 4] = [
        ("spin", |e| *e == CallError::OutOfFuel),
        ("bomb", |e| matches!(e, CallError::OutOfMemory { .. })),
        ("spam", |e| matches!(e, CallError::LimitExceeded(m) if m.contains("events"))),
        ("oversized", |e| matches!(e, CallError::LimitExceeded(m) if m.contains("value"))),
    ];
    for (method, expected) in expectations {
        let error = hostile.call_raw(method, vec![]).unwrap_err();
        assert!(expected(&error), "{method}: unexpected {error:?}");
        assert_eq!(hostile.root(), root, "{method} left a trace in state");
        assert!(hostile.deltas.is_empty(), "{method} made a delta");
    }
    let panicked = hostile.call_raw("panics", vec![]).unwrap_err();
    assert!(matches!(&panicked, CallError::Aborted(message) if message.contains("deliberate panic")), "{panicked:?}");
    assert_eq!(hostile.call::<_, i64>("behave", &()).unwrap(), 1, "the runtime keeps working");
    let failed = &hostile.node.applier().metrics().calls_failed;
    assert_eq!(failed.values().sum::<u64>(), 5);
}

#[test]
fn concurrent_todo_additions_keep_one_order_on_every_replica() {
    let module = module("todo");
    let mut a = Replica::new(1, &module);
    let mut b = Replica::new(2, &module);
    a.call::<_, String>("add", &"first".to_owned()).unwrap();
    exchange(&mut a, &mut b);
    // Both add at the end at once; the RGA orders the two the same way everywhere.
    a.call::<_, String>("add", &"from a".to_owned()).unwrap();
    b.call::<_, String>("add", &"from b".to_owned()).unwrap();
    a.call::<_, String>("add", &"a again".to_owned()).unwrap();
    exchange(&mut a, &mut b);
    let titles = |r: &mut Replica| -> Vec<String> {
        r.call::<_, Vec<(String, String, bool)>>("list", &()).unwrap().into_iter().map(|(_, title, _)| title).collect()
    };
    let on_a = titles(&mut a);
    assert_eq!(on_a, titles(&mut b));
    assert_eq!(on_a.len(), 4);
    assert_eq!(on_a[0], "first");
    let pos = |t: &str| on_a.iter().position(|x| x == t).unwrap();
    assert!(pos("from a") < pos("a again"), "a's own inserts keep their order: {on_a:?}");
    assert_eq!(a.root(), b.root());
}
