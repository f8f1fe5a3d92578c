//! The adversary checks, judged in the simulated world at the end of a run: the admin's
//! membership changes were made; outsiders read nothing; a removed member reads nothing
//! written after its removal and nothing of its own descends from it; and every forged delta
//! was refused by every honest node, whose refusal counters show it.

use crate::outcome::{CheckName, CheckResult};
use crate::record::Ack;
use crate::roles::Roles;
use rhizome_core::{ContextId, DeltaId};
use rhizome_node::NodeHandle;
use std::collections::BTreeMap;

pub(crate) struct Inputs<'a> {
    pub(crate) context: ContextId,
    pub(crate) genesis: DeltaId,
    pub(crate) roles: &'a Roles,
    /// Live honest nodes; the first is the reference whose DAG the others are judged by.
    pub(crate) honest: &'a [(usize, NodeHandle)],
    /// Every live node.
    pub(crate) everyone: &'a [(usize, NodeHandle)],
    /// Writes the adversaries' own nodes acknowledged.
    pub(crate) adversary_acks: &'a [Ack],
    pub(crate) forged: &'a [(usize, DeltaId)],
    pub(crate) removals: &'a BTreeMap<usize, DeltaId>,
    pub(crate) events: &'a [(String, Result<DeltaId, String>)],
}

pub(crate) async fn evaluate(inputs: Inputs<'_>) -> Vec<CheckResult> {
    let mut results = vec![membership(&inputs)];
    let Some((reference_index, reference)) = inputs.honest.first() else {
        results.push(CheckResult::new(CheckName::OutsidersReadNothing, false, "no honest node is live".to_owned()));
        return results;
    };
    let reference = Reference { index: *reference_index, handle: reference };
    if !inputs.roles.outsiders.is_empty() {
        results.push(outsiders(&inputs, &reference).await);
    }
    if !inputs.removals.is_empty() {
        results.push(removed(&inputs, &reference).await);
    }
    if inputs.roles.forgers().next().is_some() {
        results.push(forgeries(&inputs).await);
    }
    results
}

struct Reference<'a> {
    index: usize,
    handle: &'a NodeHandle,
}

fn live<'a>(inputs: &Inputs<'a>, node: usize) -> Option<&'a NodeHandle> {
    inputs.everyone.iter().find(|(index, _)| *index == node).map(|(_, handle)| handle)
}

fn membership(inputs: &Inputs<'_>) -> CheckResult {
    let failed: Vec<String> = inputs
        .events
        .iter()
        .filter_map(|(label, result)| result.as_ref().err().map(|e| format!("{label}: {e}")))
        .collect();
    let passed = failed.is_empty();
    let detail = if passed {
        format!("the admin made all {} membership changes", inputs.events.len())
    } else {
        failed.join("; ")
    };
    CheckResult::new(CheckName::Membership, passed, detail)
}

/// Each live outsider holds no key, opens none of the application deltas the reference holds
/// (it was subscribed to all their gossip), and had none of its own writes acknowledged.
async fn outsiders(inputs: &Inputs<'_>, reference: &Reference<'_>) -> CheckResult {
    let name = CheckName::OutsidersReadNothing;
    let deltas = match reference.handle.app_deltas_after(inputs.context, inputs.genesis).await {
        Ok(deltas) => deltas,
        Err(error) => return CheckResult::new(name, false, format!("n{}: {error}", reference.index)),
    };
    let mut details = Vec::new();
    for outsider in &inputs.roles.outsiders {
        let Some(handle) = live(inputs, *outsider) else { continue };
        let probe = match handle.read_probe(inputs.context, deltas.clone()).await {
            Ok(probe) => probe,
            Err(error) => return CheckResult::new(name, false, format!("n{outsider}: {error}")),
        };
        let acked = inputs.adversary_acks.iter().filter(|ack| ack.node == *outsider).count();
        if probe.keys > 0 || probe.opened > 0 || acked > 0 || probe.probed == 0 {
            return CheckResult::new(
                name,
                false,
                format!(
                    "outsider n{outsider} holds {} keys, opens {} of {} application deltas of n{}, had {acked} writes acknowledged",
                    probe.keys, probe.opened, probe.probed, reference.index
                ),
            );
        }
        details.push(format!("n{outsider}: 0 keys, opens 0 of {}", probe.probed));
    }
    CheckResult::new(name, true, details.join("; "))
}

/// Each live removed node opens none of the reference's application deltas that descend from
/// its removal, and none of them is its own.
async fn removed(inputs: &Inputs<'_>, reference: &Reference<'_>) -> CheckResult {
    let name = CheckName::RemovedReadNothing;
    let mut details = Vec::new();
    for (node, removal) in inputs.removals {
        let after = match reference.handle.app_deltas_after(inputs.context, *removal).await {
            Ok(deltas) => deltas,
            Err(error) => return CheckResult::new(name, false, format!("n{}: {error}", reference.index)),
        };
        let Some(handle) = live(inputs, *node) else { continue };
        let own = handle.author_key();
        let authored = after.iter().filter(|delta| delta.author == own).count();
        let probe = match handle.read_probe(inputs.context, after).await {
            Ok(probe) => probe,
            Err(error) => return CheckResult::new(name, false, format!("n{node}: {error}")),
        };
        // With nothing written after the removal, the check would hold vacuously.
        if probe.opened > 0 || authored > 0 || probe.probed == 0 {
            return CheckResult::new(
                name,
                false,
                format!(
                    "n{node}, removed by {removal}: opens {} of the {} application deltas of n{} after its removal; {authored} of them are its own",
                    probe.opened, probe.probed, reference.index
                ),
            );
        }
        details.push(format!("n{node}: opens 0 of {} written after its removal", probe.probed));
    }
    CheckResult::new(name, true, details.join("; "))
}

/// No forged delta is applied on any honest node, every forger forged, and every honest node
/// counted refusals.
async fn forgeries(inputs: &Inputs<'_>) -> CheckResult {
    let name = CheckName::ForgeriesRefused;
    let ids: Vec<DeltaId> = inputs.forged.iter().map(|(_, id)| *id).collect();
    for forger in inputs.roles.forgers() {
        if !inputs.forged.iter().any(|(node, _)| *node == forger) {
            return CheckResult::new(name, false, format!("n{forger} never forged (was it never removed?)"));
        }
    }
    let mut least = u64::MAX;
    for (index, handle) in inputs.honest {
        match handle.missing(inputs.context, ids.clone()).await {
            Ok(missing) if missing.len() == ids.len() => {}
            Ok(missing) => {
                let applied = ids.iter().find(|id| !missing.contains(id)).copied();
                return CheckResult::new(name, false, format!("n{index} applied forged delta {applied:?}"));
            }
            Err(error) => return CheckResult::new(name, false, format!("n{index}: {error}")),
        }
        let metrics = match handle.status().await {
            Ok(status) => status.metrics,
            Err(error) => return CheckResult::new(name, false, format!("n{index}: {error}")),
        };
        let refusals = metrics.non_member_messages + metrics.rejected.values().sum::<u64>();
        if refusals == 0 {
            return CheckResult::new(name, false, format!("n{index} counted no refusal"));
        }
        least = least.min(refusals);
    }
    CheckResult::new(
        name,
        true,
        format!(
            "{} forged deltas, none applied on the {} honest nodes; each counted at least {least} refusals",
            ids.len(),
            inputs.honest.len()
        ),
    )
}
