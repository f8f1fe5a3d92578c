//! One simulated run, in phases: build the world (network and node slots), boot the nodes,
//! run the workload and the fault schedule, lift the faults and wait for agreement, check
//! the invariants, and gather the outcome.

mod adversary;
mod boot;
mod cluster;
mod coalition;
mod liveness;
mod members;
mod sampler;
mod schedule;
mod setup;
mod workload;

use crate::checks::{self, QueueBounds};
use crate::figures::{figures, RunTotals};
use crate::outcome::{CheckName, RunOutcome};
use crate::record::SharedRecorder;
use crate::scenario::Scenario;
use adversary::Adversaries;
use cluster::Cluster;
use liveness::{run_liveness, Liveness};
use sampler::Sampler;
use schedule::{run_faults, FaultLog};
use workload::Workload;

/// Runs a scenario with a seed; must be called inside a madsim runtime.
pub(crate) async fn run(scenario: Scenario, seed: u64, trace: bool) -> RunOutcome {
    let start = tokio::time::Instant::now();
    let recorder = SharedRecorder::new(trace);
    let mut cluster = match Cluster::build(&scenario, seed, start, &recorder) {
        Ok(cluster) => cluster,
        Err(error) => return RunOutcome::setup_failure(CheckName::Setup, error),
    };
    cluster.boot_initial(scenario.nodes);
    let workload = Workload::spawn(&scenario, seed, &cluster.handle_slots(), cluster.shared.context, start, &recorder);
    let adversaries = Adversaries::spawn(&cluster, seed, &recorder);
    let limits = cluster.shared.config.core.limits.clone();
    let mut sampler = Sampler::new(cluster.shared.context, start, &recorder, limits);
    let mut log = run_faults(&scenario, &mut cluster, &workload, &adversaries, &mut sampler, &recorder).await;
    let liveness = run_liveness(&scenario, &mut cluster, &mut log, &mut sampler, &recorder).await;
    let ended = Ended { log, liveness, bounds: sampler.bounds };
    finish(&scenario, &cluster, &workload, &adversaries, ended, &recorder).await
}

/// What the phases found.
struct Ended {
    log: FaultLog,
    liveness: Liveness,
    bounds: QueueBounds,
}

/// Checks the invariants on the live nodes and gathers the outcome.
async fn finish(
    scenario: &Scenario,
    cluster: &Cluster,
    workload: &Workload,
    adversaries: &Adversaries,
    ended: Ended,
    recorder: &SharedRecorder,
) -> RunOutcome {
    let Ended { log, liveness, mut bounds } = ended;
    if let Some(breach) = recorder.lock().pending_breach.take() {
        bounds.note_breach(breach);
    }
    // The honest nodes are judged; the adversaries' own writes may rightly be refused.
    let acks: Vec<_> = workload.acks().into_iter().filter(|ack| cluster.roles.is_honest(ack.node)).collect();
    let live = cluster.honest_live();
    let mut check_results = checks::evaluate(checks::Inputs {
        scenario,
        context: cluster.shared.context,
        live: &live,
        acks: &acks,
        converged_at: liveness.converged_at,
        storage_failures: &cluster.storage_failures(),
        bounds: &bounds,
        limits: &cluster.shared.config.core.limits,
    })
    .await;
    if scenario.roles.forgers().next().is_some() || !scenario.membership.is_empty() {
        let everyone: Vec<_> = cluster.live();
        let attack = adversaries.attack();
        let snapshot_syncs = recorder.lock().snapshot_syncs.clone();
        let peers = cluster.peers();
        let invitations = adversaries.invitations();
        let boots = cluster.boots();
        check_results.extend(
            checks::adversaries::evaluate(checks::adversaries::Inputs {
                context: cluster.shared.context,
                genesis: cluster.shared.genesis.id,
                roles: &scenario.roles,
                honest: &live,
                everyone: &everyone,
                adversary_acks: &workload
                    .acks()
                    .into_iter()
                    .filter(|ack| !cluster.roles.is_honest(ack.node))
                    .collect::<Vec<_>>(),
                forged: &adversaries.forged(),
                removals: &adversaries.removals(),
                events: &adversaries.events(),
                attack: attack.as_ref(),
                snapshot_syncs: &snapshot_syncs,
                peers: &peers,
                invitations: &invitations,
                boots: &boots,
            })
            .await,
        );
    }
    let network = cluster.shared.net.stats();
    let figures = figures(RunTotals {
        recorder,
        cuts: &log.cuts,
        network: &network,
        per_node_convergence: &liveness.per_node_convergence,
        converged_at: liveness.converged_at,
        writes: acks.len(),
        simulated: cluster.shared.start.elapsed(),
        live_nodes: live.len(),
    });
    let (samples, trace_lines) = {
        let mut recorder = recorder.lock();
        (std::mem::take(&mut recorder.samples), recorder.trace_lines.take().unwrap_or_default())
    };
    RunOutcome {
        checks: check_results,
        figures,
        samples,
        faults: log.applied,
        trace_hash: recorder.trace_hash(),
        trace_lines,
    }
}
