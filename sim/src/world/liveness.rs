//! The liveness phase: every fault's lasting effect is lifted, then every live node must
//! agree (root, heads, no handler jobs left) within the scenario's `liveness_s`.

use super::cluster::Cluster;
use super::sampler::{Fingerprint, Sampler};
use super::schedule::FaultLog;
use crate::faults::lift_all;
use crate::record::SharedRecorder;
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the liveness phase compares the nodes (and samples them).
const POLL_EVERY: Duration = Duration::from_millis(50);

/// When the nodes agreed.
#[derive(Debug)]
pub(super) struct Liveness {
    /// When all live nodes agreed, after the phase began; `None` if not within the bound.
    pub(super) converged_at: Option<Duration>,
    /// Per node: when its state last changed, after the phase began.
    pub(super) per_node_convergence: Vec<Duration>,
}

/// Lifts the faults, then waits for agreement within the bound.
pub(super) async fn run_liveness(
    scenario: &Scenario,
    cluster: &mut Cluster,
    log: &mut FaultLog,
    sampler: &mut Sampler,
    recorder: &SharedRecorder,
) -> Liveness {
    let start = cluster.shared.start;
    let liveness_start = start.elapsed();
    recorder.note(liveness_start, "liveness phase: faults lifted".to_owned());
    log.applied.push((liveness_start.as_secs_f64(), "liveness".to_owned()));
    log.cuts.observe(liveness_start, false);
    lift_all(cluster);
    let bound = Duration::from_secs_f64(scenario.liveness_s);
    let mut history: BTreeMap<usize, (Option<Fingerprint>, Duration)> = BTreeMap::new();
    let mut converged_at = None;
    loop {
        let now = start.elapsed();
        let states = sampler.fingerprints(&cluster.slots).await;
        for (index, state) in &states {
            let entry = history.entry(*index).or_insert((None, now));
            if entry.0.as_ref() != Some(state) {
                *entry = (Some(state.clone()), now);
            }
        }
        // Only honest nodes must agree: an outsider or a removed member cannot open what the
        // members write, so its state stays behind on purpose.
        let honest_up =
            cluster.slots.iter().enumerate().filter(|(index, slot)| slot.up && cluster.roles.is_honest(*index));
        let honest: Vec<&Fingerprint> =
            states.iter().filter(|(index, _)| cluster.roles.is_honest(**index)).map(|(_, state)| state).collect();
        let agree = honest.len() == honest_up.count()
            && honest.iter().all(|state| Some(*state) == honest.first().copied())
            && honest.iter().all(|state| state.2 == 0);
        if agree {
            converged_at = Some(now - liveness_start);
            break;
        }
        if now - liveness_start >= bound {
            break;
        }
        sampler.sample(&cluster.slots).await;
        tokio::time::sleep(POLL_EVERY).await;
    }
    sampler.sample(&cluster.slots).await;
    let per_node_convergence =
        history.values().map(|(_, changed_at)| changed_at.saturating_sub(liveness_start)).collect();
    Liveness { converged_at, per_node_convergence }
}
