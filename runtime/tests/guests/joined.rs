//! Several calls in one delta (`Runtime::call_joining`): each call reads the writes of the
//! calls before it, replicas end up where the calls' callers saw them, and a delta never
//! breaks a bound replicas check.

use crate::support::*;
use rhizome_core::Hlc;
use rhizome_runtime::{AppPayload, CallError, CallOutcome, RuntimeLimits};

fn encoded<T: borsh::BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).unwrap()
}

fn returned<T: borsh::BorshDeserialize>(outcome: &Result<CallOutcome, CallError>) -> T {
    borsh::from_slice(&outcome.as_ref().expect("the call succeeds").return_value).expect("return value decodes")
}

#[test]
fn joined_calls_read_the_writes_of_the_calls_before_them() {
    let mut a = Replica::new(1, &module("counter"));
    let calls: Vec<_> = (0..5).map(|_| ("increment", encoded(&2i64))).collect();
    let outcomes = a.call_joined(&calls);
    let totals: Vec<i64> = outcomes.iter().map(returned).collect();
    assert_eq!(totals, vec![2, 4, 6, 8, 10], "each increment sees the ones before it");
    assert_eq!(a.deltas.len(), 1, "five calls, one delta");
    assert_eq!(a.call::<_, i64>("get", &()).unwrap(), 10, "the delta committed every call");
}

#[test]
fn a_replica_applying_a_joined_delta_sees_what_its_callers_saw() {
    let module = module("todo");
    let mut a = Replica::new(1, &module);
    let mut b = Replica::new(2, &module);
    // Identical inputs: the calls' positions in the delta keep their random ids apart.
    let calls: Vec<_> = (0..4).map(|_| ("add", encoded(&"same title".to_owned()))).collect();
    let ids: Vec<String> = a.call_joined(&calls).iter().map(returned).collect();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "four to-dos, four ids: {ids:?}");
    assert_eq!(a.deltas.len(), 1);
    exchange(&mut a, &mut b);
    let listed = |replica: &mut Replica| -> Vec<String> {
        let todos: Vec<(String, String, bool)> = replica.call("list", &()).unwrap();
        todos.into_iter().map(|(id, _, _)| id).collect()
    };
    assert_eq!(listed(&mut a), ids, "the list is in call order");
    assert_eq!(listed(&mut b), ids, "and the same on the replica that applied the delta");
    assert_eq!(a.root(), b.root());
}

#[test]
fn a_failed_call_leaves_the_open_delta_as_it_was() {
    let mut a = Replica::new(1, &module("kv_store"));
    let outcomes = a.call_joined(&[
        ("set", encoded(&("k".to_owned(), "first".to_owned()))),
        ("set", vec![0xff]),
        ("no_such_method", Vec::new()),
        ("set", encoded(&("other".to_owned(), "second".to_owned()))),
    ]);
    assert!(outcomes[0].is_ok() && outcomes[3].is_ok());
    assert!(matches!(outcomes[1], Err(CallError::BadArgs(_))), "undecodable input: {:?}", outcomes[1]);
    assert!(matches!(outcomes[2], Err(CallError::NoSuchMethod(_))), "{:?}", outcomes[2]);
    assert_eq!(a.deltas.len(), 1);
    assert_eq!(a.call::<_, Option<String>>("get", &"k".to_owned()).unwrap().as_deref(), Some("first"));
    assert_eq!(a.call::<_, Option<String>>("get", &"other".to_owned()).unwrap().as_deref(), Some("second"));
}

#[test]
fn a_call_that_would_overfill_the_delta_is_refused_and_runs_in_the_next() {
    let bounds = rhizome_runtime::payload::PAYLOAD_BOUNDS_V1;
    let mut a = Replica::new(1, &module("kv_store"));
    // Every `set` emits one event; a delta holds at most `max_events`.
    let calls: Vec<_> =
        (0..bounds.max_events + 3).map(|n| ("set", encoded(&(format!("k{n}"), "v".to_owned())))).collect();
    let outcomes = a.call_joined(&calls);
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(a.deltas.len(), 2, "the call past the bound opened a second delta");
    let last = format!("k{}", bounds.max_events + 2);
    assert_eq!(a.call::<_, Option<String>>("get", &last).unwrap().as_deref(), Some("v"));
    // The payload bound too: a small limit fits two of these writes per delta, not three.
    let limits = RuntimeLimits { max_payload_bytes: 400, ..RuntimeLimits::default() };
    let mut small = Replica::with_limits(2, &module("kv_store"), limits);
    let value = "x".repeat(120);
    let calls: Vec<_> = (0..4).map(|n| ("set", encoded(&(format!("k{n}"), value.clone())))).collect();
    assert!(small.call_joined(&calls).iter().all(Result::is_ok));
    assert_eq!(small.deltas.len(), 2);
}

#[test]
fn only_the_open_deltas_context_and_writing_calls_join_it() {
    let mut runtime = runtime_for(key(1).author_key(), RuntimeLimits::default());
    let app = runtime.install_app(&module("counter")).unwrap();
    runtime.create_context(context(), app).unwrap();
    let other = rhizome_core::ContextId::hash_of(b"another context");
    runtime.create_context(other, app).unwrap();
    let increment = encoded(&1i64);
    assert!(matches!(runtime.call_joining(context(), "increment", increment.clone()), Err(CallError::NotJoinable(_))));
    let hlc = Hlc { physical_ms: T0.as_millis(), logical: 0, node: 1 };
    runtime.call(context(), "increment", increment.clone(), hlc).unwrap();
    assert!(matches!(runtime.call_joining(other, "increment", increment.clone()), Err(CallError::NotJoinable(_))));
    // A read joins, sees the open write, and adds nothing to the delta.
    let read = runtime.call_joining(context(), "get", Vec::new()).unwrap();
    assert_eq!(borsh::from_slice::<i64>(&read.return_value).unwrap(), 1);
    let sealed = runtime.seal_open_delta().expect("a delta is open");
    assert_eq!((sealed.context, sealed.hlc, sealed.calls), (context(), hlc, 1));
    let AppPayload::V1 { actions, .. } = &sealed.payload;
    assert_eq!(actions.len(), 1);
    assert!(runtime.seal_open_delta().is_none(), "sealed once");
    assert!(matches!(runtime.call_joining(context(), "increment", increment.clone()), Err(CallError::NotJoinable(_))));
    assert_eq!(runtime.call(context(), "increment", increment, hlc).unwrap_err(), CallError::Uncommitted);
}
