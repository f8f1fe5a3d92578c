//! Running scenarios: one seed, a sweep over seeds on several threads, and shrinking a failure.

use crate::outcome::{CheckName, RunOutcome};
use crate::scenario::Scenario;
use crate::world;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs one scenario with one seed in a fresh madsim runtime. A panic anywhere in the world is
/// a failed check, never a crash of the simulator.
pub fn run_one(scenario: &Scenario, seed: u64, trace: bool) -> RunOutcome {
    let mut runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let limit = Duration::from_secs_f64(scenario.duration_s + scenario.liveness_s + 600.0);
    runtime.set_time_limit(limit);
    let wall = std::time::Instant::now();
    let owned = scenario.clone();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(world::run(owned, seed, trace))));
    let wall_s = wall.elapsed().as_secs_f64();
    let mut outcome = match result {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_else(|| "non-string panic".to_owned());
            RunOutcome::setup_failure(CheckName::NoPanic, format!("panic: {message}"))
        }
    };
    outcome.figures.wall_s = wall_s;
    outcome
}

/// True if every check passed.
pub fn passed(outcome: &RunOutcome) -> bool {
    outcome.checks.iter().all(|check| check.passed)
}

/// One seed's result in a sweep.
#[derive(Debug, Clone)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Passed?
    pub passed: bool,
    /// The first failing check's name and detail.
    pub failure: Option<String>,
    /// Trace hash (of the first run, with determinism checking).
    pub trace_hash: String,
    /// With determinism checking: the second run's hash differed.
    pub nondeterministic: bool,
}

/// Runs `seeds` on `jobs` threads, calling `progress(done, failing)` after each seed.
pub fn sweep(
    make: impl Fn(u64) -> Scenario + Send + Sync + 'static,
    seeds: impl IntoIterator<Item = u64>,
    jobs: usize,
    check_determinism: bool,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Vec<SeedResult> {
    let seeds: Arc<Vec<u64>> = Arc::new(seeds.into_iter().collect());
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let make = Arc::new(make);
    let progress = Arc::new(progress);
    let threads: Vec<_> = (0..jobs.max(1))
        .map(|_| {
            let (next, results, make, progress) = (next.clone(), results.clone(), make.clone(), progress.clone());
            let seeds = seeds.clone();
            std::thread::spawn(move || loop {
                let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let scenario = make(seed);
                let outcome = run_one(&scenario, seed, false);
                let nondeterministic =
                    check_determinism && run_one(&scenario, seed, false).trace_hash != outcome.trace_hash;
                let failure = outcome
                    .checks
                    .iter()
                    .find(|check| !check.passed)
                    .map(|check| format!("{}: {}", check.name, check.detail));
                let result = SeedResult {
                    seed,
                    passed: failure.is_none() && !nondeterministic,
                    failure,
                    trace_hash: outcome.trace_hash,
                    nondeterministic,
                };
                let mut results = results.lock().unwrap_or_else(|p| p.into_inner());
                results.push(result);
                let failing = results.iter().filter(|result| !result.passed).count();
                progress(results.len(), failing);
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    results.sort_by_key(|result| result.seed);
    results
}

/// Minimises a failing scenario for `seed`: drops faults one by one, then halves the write
/// rate, the duration and the node count, keeping each step only while the run still fails.
/// Returns `None` if the scenario passes. `step` reports each attempt.
pub fn shrink(scenario: &Scenario, seed: u64, step: impl Fn(&str, bool)) -> Option<Scenario> {
    let fails = |candidate: &Scenario| candidate.validate().is_ok() && !passed(&run_one(candidate, seed, false));
    if !fails(scenario) {
        return None;
    }
    let mut best = scenario.clone();
    loop {
        let mut progress = false;
        for index in (0..best.faults.len()).rev() {
            let mut candidate = best.clone();
            let removed = candidate.faults.remove(index);
            let still = fails(&candidate);
            step(&format!("without fault {}", removed.label()), still);
            if still {
                best = candidate;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    for _ in 0..6 {
        let mut candidate = best.clone();
        candidate.workload.calls_per_node_per_s /= 2.0;
        let still = fails(&candidate);
        step(&format!("write rate {}/s per node", candidate.workload.calls_per_node_per_s), still);
        if !still {
            break;
        }
        best = candidate;
    }
    for _ in 0..4 {
        let mut candidate = best.clone();
        candidate.duration_s /= 2.0;
        candidate.faults.retain(|fault| fault.at_s <= candidate.duration_s);
        if let Some(stop) = &mut candidate.workload.stop_s {
            *stop = stop.min(candidate.duration_s);
        }
        let still = fails(&candidate);
        step(&format!("duration {} s", candidate.duration_s), still);
        if !still {
            break;
        }
        best = candidate;
    }
    while best.nodes > 2 {
        let mut candidate = best.clone();
        candidate.nodes = best.nodes.div_ceil(2);
        let still = fails(&candidate);
        step(&format!("{} nodes", candidate.nodes), still);
        if !still {
            break;
        }
        best = candidate;
    }
    best.name = format!("{}-shrunk-seed{seed}", scenario.name);
    best.description = format!("Shrunk from {} for seed {seed}: still fails.", scenario.name);
    Some(best)
}
