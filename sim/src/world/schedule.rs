//! The fault phase: runs until the scenario's duration (and its last fault) while the
//! workload writes, applying each fault at its time, stopping writes at `stop_s` and sampling
//! every node every [`SAMPLE_EVERY`].

use super::adversary::Adversaries;
use super::cluster::Cluster;
use super::sampler::Sampler;
use super::workload::Workload;
use crate::faults::TimedFault;
use crate::figures::CutWindows;
use crate::record::SharedRecorder;
use crate::scenario::Scenario;
use std::time::Duration;

/// How often the world samples every node during the fault phase.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// The faults applied, for the reports, and when the network was cut, for the figures.
#[derive(Debug, Default)]
pub(super) struct FaultLog {
    /// (seconds, label) of every fault applied, and of the start of the liveness phase.
    pub(super) applied: Vec<(f64, String)>,
    /// When some link was cut or a node clogged.
    pub(super) cuts: CutWindows,
}

/// Runs the fault phase.
pub(super) async fn run_faults(
    scenario: &Scenario,
    cluster: &mut Cluster,
    workload: &Workload,
    adversaries: &Adversaries,
    sampler: &mut Sampler,
    recorder: &SharedRecorder,
) -> FaultLog {
    let start = cluster.shared.start;
    let mut faults: Vec<TimedFault> = scenario.faults.clone();
    faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut log = FaultLog::default();
    let mut next_sample = Duration::ZERO;
    let mut fault_iter = faults.into_iter().peekable();
    let mut events = scenario.membership.clone();
    events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut event_iter = events.into_iter().peekable();
    let event_due = |event: &crate::roles::MemberEvent| Duration::from_secs_f64(event.at_s);
    let due = |fault: &TimedFault| Duration::from_secs_f64(fault.at_s);
    let duration = Duration::from_secs_f64(scenario.duration_s);
    let writes_stop = Duration::from_secs_f64(scenario.writes_stop_s());
    loop {
        let now = start.elapsed();
        let mut wake = next_sample.min(duration);
        if let Some(at) = fault_iter.peek().map(due) {
            wake = wake.min(at);
        }
        if let Some(at) = event_iter.peek().map(event_due) {
            wake = wake.min(at);
        }
        if !workload.stopped() {
            wake = wake.min(writes_stop);
        }
        if wake > now {
            tokio::time::sleep(wake - now).await;
        }
        let now = start.elapsed();
        if now >= writes_stop {
            workload.stop();
        }
        while let Some(fault) = fault_iter.next_if(|fault| due(fault) <= now) {
            recorder.note(now, format!("fault: {}", fault.label()));
            log.applied.push((now.as_secs_f64(), fault.label()));
            fault.kind.apply(cluster);
            log.cuts.observe(now, cluster.shared.net.is_cut());
        }
        // After the faults due at the same instant, so a change "during a partition" is one.
        while let Some(event) = event_iter.next_if(|event| event_due(event) <= now) {
            log.applied.push((now.as_secs_f64(), event.label()));
            super::members::apply(&event, cluster, adversaries, recorder).await;
        }
        if now >= next_sample {
            sampler.sample(&cluster.slots).await;
            next_sample = now + SAMPLE_EVERY;
        }
        if now >= duration && fault_iter.peek().is_none() && event_iter.peek().is_none() {
            break;
        }
    }
    workload.stop();
    adversaries.stop();
    log
}
