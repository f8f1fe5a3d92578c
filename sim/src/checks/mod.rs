//! The invariants a run must keep. A failure names the node, the context and, where there is
//! one, the first divergent or missing delta.

pub(crate) mod adversaries;
mod bounded;

pub(crate) use bounded::QueueBounds;

use crate::outcome::{CheckName, CheckResult};
use crate::record::Ack;
use crate::scenario::Scenario;
use rhizome_core::{AuthorKey, ContextId, DeltaId};
use rhizome_node::NodeHandle;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) struct Inputs<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) context: ContextId,
    pub(crate) live: &'a [(usize, NodeHandle)],
    pub(crate) acks: &'a [Ack],
    pub(crate) converged_at: Option<Duration>,
    pub(crate) storage_failures: &'a [String],
    /// The queues seen in every status read during the run.
    pub(crate) bounds: &'a QueueBounds,
    pub(crate) limits: &'a rhizome_core::Limits,
}

pub(crate) async fn evaluate(inputs: Inputs<'_>) -> Vec<CheckResult> {
    let Inputs { scenario, context, live, acks, converged_at, storage_failures, bounds, limits } = inputs;
    let mut results = Vec::new();
    let checks = &scenario.checks;
    results.push(CheckResult::new(
        CheckName::Storage,
        storage_failures.is_empty(),
        if storage_failures.is_empty() {
            "every node opened its database and committed".to_owned()
        } else {
            storage_failures.join("; ")
        },
    ));
    let mut statuses = BTreeMap::new();
    for (index, handle) in live {
        if let Ok(status) = handle.status().await {
            if let Some(state) = status.contexts.into_iter().find(|state| state.context == context) {
                statuses.insert(*index, state);
            }
        }
    }
    if checks.convergence {
        results.push(match converged_at {
            Some(at) => CheckResult::new(
                CheckName::Convergence,
                true,
                format!(
                    "{} live nodes agree on root and heads {:.3} s into the liveness phase",
                    live.len(),
                    at.as_secs_f64()
                ),
            ),
            None => CheckResult::new(CheckName::Convergence, false, divergence_detail(context, live, &statuses).await),
        });
    }
    if checks.no_lost_writes {
        let ids: Vec<DeltaId> = acks.iter().map(|ack| ack.delta).collect();
        let mut failure = None;
        for (index, handle) in live {
            match handle.missing(context, ids.clone()).await {
                Ok(missing) if missing.is_empty() => {}
                Ok(missing) => {
                    let first = missing[0];
                    let writer = acks.iter().find(|ack| ack.delta == first).map_or(0, |ack| ack.node);
                    failure = Some(format!(
                        "n{index} lacks {} acknowledged writes in context {context}; first: {first} (acknowledged by n{writer})",
                        missing.len()
                    ));
                    break;
                }
                Err(error) => {
                    failure = Some(format!("n{index}: {error}"));
                    break;
                }
            }
        }
        let deltas = ids.iter().collect::<std::collections::BTreeSet<_>>().len();
        results.push(match failure {
            None => CheckResult::new(
                CheckName::NoLostWrites,
                true,
                format!("{} acknowledged writes ({deltas} deltas) on all {} live nodes", acks.len(), live.len()),
            ),
            Some(detail) => CheckResult::new(CheckName::NoLostWrites, false, detail),
        });
    }
    if checks.handlers_exactly_once && scenario.workload.app.has_event_handlers() {
        results.push(handler_check(context, live, acks).await);
    }
    if checks.bounded {
        results.push(bounds.verdict(limits));
    }
    results
}

async fn divergence_detail(
    context: ContextId,
    live: &[(usize, NodeHandle)],
    statuses: &BTreeMap<usize, rhizome_node::ContextStatus>,
) -> String {
    let mut groups: BTreeMap<(rhizome_core::RootHash, Vec<DeltaId>), Vec<usize>> = BTreeMap::new();
    for (index, state) in statuses {
        groups.entry((state.root, state.heads.clone())).or_default().push(*index);
    }
    let Some(((_, majority_heads), majority)) = groups.iter().max_by_key(|(_, nodes)| nodes.len()) else {
        return format!("no live node answered for context {context}");
    };
    let handles: BTreeMap<usize, &NodeHandle> = live.iter().map(|(index, handle)| (*index, handle)).collect();
    for (index, state) in statuses {
        if majority.contains(index) {
            continue;
        }
        let mut first = None;
        if let Some(handle) = handles.get(index) {
            if let Ok(missing) = handle.missing(context, majority_heads.clone()).await {
                first = missing.first().copied();
            }
        }
        if first.is_none() {
            if let Some(handle) = handles.get(&majority[0]) {
                if let Ok(missing) = handle.missing(context, state.heads.clone()).await {
                    first = missing.first().copied();
                }
            }
        }
        let delta = first.map_or_else(|| "none (same heads, different roots)".to_owned(), |id| id.to_string());
        return format!(
            "n{index} differs from the {} nodes of the majority in context {context} (pending {}, handler jobs {}); first divergent delta: {delta}",
            majority.len(),
            state.pending,
            state.handler_jobs
        );
    }
    let missing = live
        .iter()
        .filter(|(index, _)| !statuses.contains_key(index))
        .map(|(index, _)| format!("n{index}"))
        .collect::<Vec<_>>();
    format!("nodes that did not answer in context {context}: {}", missing.join(", "))
}

async fn handler_check(context: ContextId, live: &[(usize, NodeHandle)], acks: &[Ack]) -> CheckResult {
    let authors: BTreeMap<usize, AuthorKey> =
        live.iter().map(|(index, handle)| (*index, handle.author_key())).collect();
    for (index, handle) in live {
        let expected = acks.iter().filter(|ack| ack.node != *index).count() as i64;
        let key = *authors[index].as_bytes();
        let seen = match handle.query(context, "seen_count", borsh::to_vec(&key).expect("encode")).await {
            Ok(bytes) => borsh::from_slice::<i64>(&bytes).unwrap_or(-1),
            Err(error) => return CheckResult::new(CheckName::HandlersExactlyOnce, false, format!("n{index}: {error}")),
        };
        if seen != expected {
            // The counters cover the node's current incarnation only (they restart with it).
            let counters = match handle.status().await {
                Ok(status) => format!(
                    "since its last start: {} jobs queued, {} runs, {} errors, {} abandoned, {} dropped, {} failed in the app",
                    status.runtime.handler_jobs_queued,
                    status.driver.handler_runs,
                    status.driver.handler_errors,
                    status.driver.handler_jobs_abandoned + status.runtime.handler_jobs_abandoned,
                    status.runtime.handler_jobs_dropped,
                    status.runtime.handler_failures,
                ),
                Err(error) => format!("status unavailable: {error}"),
            };
            return CheckResult::new(
                CheckName::HandlersExactlyOnce,
                false,
                format!(
                    "n{index} handled {seen} Added events from other nodes in context {context}, expected {expected} ({counters})"
                ),
            );
        }
    }
    CheckResult::new(
        CheckName::HandlersExactlyOnce,
        true,
        format!("every node handled each of the others' {} adds once", acks.len()),
    )
}
