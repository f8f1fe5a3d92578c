//! Proof that the tools work: with the test-only bug compiled in (every 10th sync response a
//! node sends is dropped), a sweep finds failing seeds, a replay of one reproduces the same
//! failure and trace, and shrinking yields a smaller scenario that still fails. Without the
//! bug, the same seeds pass.
//!
//! Runs in the simulator build with the feature: `cargo xtask test` does that.

#![cfg(madsim)]

use rhizome_sim::runner::{passed, run_one};
#[cfg(feature = "inject-drop-sync-response")]
use rhizome_sim::runner::{shrink, sweep};
use rhizome_sim::scenario::Scenario;
use std::path::Path;

fn bug_hunt() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bug-hunt.toml")).expect("scenario")
}

#[cfg(feature = "inject-drop-sync-response")]
#[test]
fn a_sweep_finds_the_injected_bug_replay_reproduces_it_and_shrink_reduces_it() {
    let scenario = bug_hunt();
    let base = scenario.clone();
    let results = sweep(move |_| base.clone(), 1..9, 2, false, |_, _| {});
    let failing: Vec<_> = results.iter().filter(|result| !result.passed).collect();
    assert!(!failing.is_empty(), "the sweep found no failing seed: {results:?}");
    let seed = failing[0].seed;

    let replay = run_one(&scenario, seed, true);
    assert!(!passed(&replay), "the replay fails too");
    assert_eq!(replay.trace_hash, failing[0].trace_hash, "the replay is the same run");
    assert_eq!(
        replay.checks.iter().find(|check| !check.passed).map(|check| format!("{}: {}", check.name, check.detail)),
        failing[0].failure,
        "with the same failure"
    );
    assert!(replay.trace_lines.iter().any(|line| line.contains("fault: partition")), "the trace is readable");

    let smaller = shrink(&scenario, seed, |_, _| {}).expect("a failing seed shrinks");
    assert!(!passed(&run_one(&smaller, seed, false)), "the shrunk scenario still fails");
    let size = |s: &Scenario| {
        (s.faults.len(), s.nodes, (s.duration_s * 1000.0) as u64, (s.workload.calls_per_node_per_s * 1000.0) as u64)
    };
    assert!(
        size(&smaller) < size(&scenario) || smaller.faults.len() < scenario.faults.len(),
        "shrink reduced something: {:?} -> {:?}",
        size(&scenario),
        size(&smaller)
    );
}

#[cfg(not(feature = "inject-drop-sync-response"))]
#[test]
fn without_the_injected_bug_the_bug_hunt_seeds_pass() {
    let scenario = bug_hunt();
    for seed in 1..5 {
        let outcome = run_one(&scenario, seed, false);
        assert!(passed(&outcome), "seed {seed}: {:?}", outcome.checks);
    }
}
