//! Hostile guests: each limit fails the call with a typed error, leaves state unchanged, and
//! leaves the runtime working.

use crate::support::*;
use rhizome_core::Applier;
use rhizome_runtime::{CallError, RuntimeLimits};

const HOSTILE: &str = r#"
(module
  (import "rhizome" "emit" (func $emit (param i32 i32 i32 i32)))
  (import "rhizome" "register_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  ;; borsh of the path ["k"]: one segment of one byte
  (data (i32.const 0) "\01\00\00\00\01\00\00\00k")
  (data (i32.const 16) "E")
  (func (export "write") (call $set (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1)))
  (func (export "spin") (loop (br 0)))
  (func (export "bomb") (loop (drop (memory.grow (i32.const 64))) (br 0)))
  (func (export "crash") unreachable)
  (func (export "write_then_spin") (call $set (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1)) (loop (br 0)))
  (func (export "spam") (local $i i32)
    (loop
      (call $emit (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if 0 (i32.lt_u (local.get $i) (i32.const 1000)))))
  (func (export "wild_pointer") (call $set (i32.const 0) (i32.const 9) (i32.const 0x7fffffff) (i32.const 8)))
)"#;

fn hostile() -> rhizome_runtime::Runtime {
    let mut runtime =
        runtime_for(key(1).author_key(), RuntimeLimits { fuel_per_call: 5_000_000, ..RuntimeLimits::default() });
    let app = runtime.install_app(HOSTILE.as_bytes()).expect("the WAT module compiles");
    runtime.create_context(context(), app).unwrap();
    runtime
}

/// Whether a call error is the one a hostile method should produce.
type Expectation = fn(&CallError) -> bool;

fn hlc() -> rhizome_core::Hlc {
    rhizome_core::Hlc { physical_ms: T0.as_millis(), logical: 0, node: 1 }
}

#[test]
fn each_limit_fails_the_call_with_its_own_error_and_leaves_state_alone() {
    let mut runtime = hostile();
    let root = runtime.root_hash(&context());
    let cases: [(&str, Expectation); 6] = [
        ("spin", |e| *e == CallError::OutOfFuel),
        ("bomb", |e| matches!(e, CallError::OutOfMemory { .. })),
        ("spam", |e| matches!(e, CallError::LimitExceeded(message) if message.contains("events"))),
        ("crash", |e| matches!(e, CallError::Trap(_))),
        ("write_then_spin", |e| *e == CallError::OutOfFuel),
        ("wild_pointer", |e| matches!(e, CallError::BadAbi(_))),
    ];
    for (method, expected) in cases {
        let error = runtime.call(context(), method, vec![], hlc()).unwrap_err();
        assert!(expected(&error), "{method}: unexpected {error:?}");
        assert_eq!(runtime.root_hash(&context()), root, "{method} changed state");
    }
    // Still working: a normal write records its action.
    let outcome = runtime.call(context(), "write", vec![], hlc()).unwrap();
    assert!(outcome.needs_delta());
    let failures: u64 = runtime.metrics().calls_failed.values().sum();
    assert_eq!(failures, 6);
}

#[test]
fn fuel_use_is_deterministic() {
    let mut first = hostile();
    let mut second = hostile();
    let a = first.call(context(), "write", vec![], hlc()).unwrap();
    let b = second.call(context(), "write", vec![], hlc()).unwrap();
    assert_eq!(a.fuel_used, b.fuel_used);
    assert!(a.fuel_used > 0);
}
