//! The adversary checks, judged in the simulated world at the end of a run: the admin's
//! membership changes were made; outsiders read nothing; a removed member reads nothing
//! written after its removal and nothing of its own descends from it; and every forged delta
//! was refused by every honest node, whose refusal counters show it; and the byzantine
//! members' forced-snapshot attack (fake head, forged snapshot) made no honest node adopt
//! anything, while the honest nodes counted their refusals.

use crate::outcome::{CheckName, CheckResult};
use crate::record::Ack;
use crate::roles::Roles;
use rhizome_core::seal::InvitationError;
use rhizome_core::{ContextId, DeltaId, PeerId, RootHash};
use rhizome_node::{ApiError, NodeHandle};
use std::collections::BTreeMap;

/// The snapshot demands one node was sent since it last booted (a restart resets its
/// counters, so only demands to its running boot are judged).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Victim {
    /// Its boot count when it was last sent one.
    pub(crate) boot: u64,
    /// Demands sent to it in that boot.
    pub(crate) demands: u64,
}

/// An invited node's join by invitation (`world/members.rs`).
#[derive(Debug, Clone)]
pub(crate) struct InvitationTrial {
    /// The invited node.
    pub(crate) node: usize,
    /// What each step answered, or why the steps could not run.
    pub(crate) steps: Result<InvitationSteps, String>,
}

/// The answers to an invited node's three presentations.
#[derive(Debug, Clone)]
pub(crate) struct InvitationSteps {
    /// A copy of its token with the role raised to admin, unsigned by anyone.
    pub(crate) forged: Result<(), ApiError>,
    /// Whether the node held the context after the forged copy was refused.
    pub(crate) joined_after_forged: bool,
    /// The token the admin issued.
    pub(crate) genuine: Result<(), ApiError>,
    /// The same token again, once joined by it.
    pub(crate) replayed: Result<(), ApiError>,
}

/// What the byzantine coalition did (`world/coalition.rs`), for the checks.
#[derive(Debug, Clone, Default)]
pub(crate) struct AttackTally {
    /// The fabricated head, once made.
    pub(crate) fake_head: Option<DeltaId>,
    /// The root announced with it (the frozen state's).
    pub(crate) root: Option<RootHash>,
    /// Entries of the forged checkpoint (the real ones and `F`).
    pub(crate) entries: u64,
    /// Signed heartbeats naming `[F]`, by byzantine member.
    pub(crate) heartbeats: BTreeMap<usize, u64>,
    /// `Heads` answered with `[F]`.
    pub(crate) heads: u64,
    /// `DeltasSince` answered `SnapshotRequired`.
    pub(crate) demands: u64,
    /// First pages answered with an empty page claiming a gap over the threshold.
    pub(crate) gap_claims: u64,
    /// `SnapshotBegin` answered with the forged checkpoint.
    pub(crate) checkpoints: u64,
    /// Forged pages served.
    pub(crate) pages: u64,
    /// Last pages served: a whole forged snapshot reached its requester.
    pub(crate) complete: u64,
    /// Nodes outside the coalition sent a snapshot demand (`SnapshotRequired` or a gap claim),
    /// with how many.
    pub(crate) victims: BTreeMap<usize, Victim>,
    /// When each byzantine member stopped attacking (its replica held its removal), in seconds.
    pub(crate) stopped_at_s: BTreeMap<usize, f64>,
}

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
    /// The byzantine coalition's attack, if the scenario has byzantine members.
    pub(crate) attack: Option<&'a AttackTally>,
    /// Every completed snapshot sync: (node, serving peer).
    pub(crate) snapshot_syncs: &'a [(usize, PeerId)],
    /// Every node's peer id, by index.
    pub(crate) peers: &'a [PeerId],
    /// How each invited node's join by invitation went.
    pub(crate) invitations: &'a [InvitationTrial],
    /// Every node's boot count now.
    pub(crate) boots: &'a [u64],
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
    if let Some(attack) = inputs.attack {
        results.push(forced_snapshots(&inputs, attack).await);
    }
    if !inputs.roles.invited.is_empty() {
        results.push(invitations(&inputs));
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

/// The byzantine members attacked (fake heads announced, snapshot demands and forged
/// snapshots served); no honest node applied the fake head or completed a snapshot sync with a
/// byzantine member; and every honest node sent a demand counted refusals of it.
async fn forced_snapshots(inputs: &Inputs<'_>, attack: &AttackTally) -> CheckResult {
    let name = CheckName::ForcedSnapshotsRefused;
    let Some(fake_head) = attack.fake_head else {
        return CheckResult::new(name, false, "the byzantine members never made a fake head".to_owned());
    };
    let announced: u64 = attack.heartbeats.values().sum();
    let demanded = attack.demands + attack.gap_claims;
    if announced == 0 || demanded == 0 {
        return CheckResult::new(
            name,
            false,
            format!("the attack did not run: {announced} fake heartbeats, {demanded} snapshot demands answered"),
        );
    }
    let byzantine: Vec<PeerId> =
        inputs.roles.byzantine.iter().filter_map(|node| inputs.peers.get(*node)).copied().collect();
    if let Some((node, peer)) =
        inputs.snapshot_syncs.iter().find(|(node, peer)| inputs.roles.is_honest(*node) && byzantine.contains(peer))
    {
        return CheckResult::new(name, false, format!("n{node} completed a snapshot sync served by byzantine {peer}"));
    }
    let mut totals = Refusals::default();
    // Verified attestations recorded, and attestations refused (by any reason).
    let mut attestations = (0u64, 0u64);
    for (index, handle) in inputs.honest {
        match handle.missing(inputs.context, vec![fake_head]).await {
            Ok(missing) if missing == [fake_head] => {}
            Ok(_) => return CheckResult::new(name, false, format!("n{index} applied the fake head {fake_head}")),
            Err(error) => return CheckResult::new(name, false, format!("n{index}: {error}")),
        }
        let metrics = match handle.status().await {
            Ok(status) => status.metrics,
            Err(error) => return CheckResult::new(name, false, format!("n{index}: {error}")),
        };
        attestations.0 += metrics.attestations_taken;
        attestations.1 += metrics.attestations_refused.values().sum::<u64>();
        let refusals = Refusals {
            demands: metrics.snapshot_demands_refused.values().sum(),
            unvouched: metrics.snapshots_unvouched,
            checkpoints: metrics.sync_failures.get("snapshot_checkpoint").copied().unwrap_or(0),
        };
        let current = inputs.boots.get(*index).copied();
        let victim = attack.victims.get(index).filter(|victim| Some(victim.boot) == current);
        let sent = victim.map_or(0, |victim| victim.demands);
        if sent > 0 && refusals.total() == 0 {
            return CheckResult::new(
                name,
                false,
                format!("n{index} was sent {sent} snapshot demands by byzantine members since it booted and counted no refusal"),
            );
        }
        totals.add(&refusals);
    }
    // Two members vouch for each other's snapshot (the default `snapshot_vouchers`), so the
    // forged pages must have been fetched and the checkpoint's signed-header check reached:
    // otherwise the scenario no longer tests it.
    let colluding = inputs.roles.byzantine.len() >= 2;
    if (attack.complete > 0 || colluding) && totals.checkpoints == 0 {
        return CheckResult::new(
            name,
            false,
            format!(
                "{} forged snapshots were fetched whole by {} colluding members, and no honest node refused a checkpoint",
                attack.complete,
                inputs.roles.byzantine.len()
            ),
        );
    }
    let stopped: Vec<String> = attack.stopped_at_s.iter().map(|(node, at)| format!("n{node} at {at:.1} s")).collect();
    CheckResult::new(
        name,
        true,
        format!(
            "fake head F {} (root {}) in {announced} signed heartbeats; answered {} heads, {} SnapshotRequired, {} gap claims, {} forged checkpoints ({} entries), {} pages ({} whole snapshots), {} honest nodes sent demands; none applied F or took a byzantine snapshot; honest refusals: {} demands, {} unvouched, {} checkpoints; attestations taken {}, refused {}; stopped lying: {}",
            short(&fake_head.to_string()),
            attack.root.map(|root| short(&root.to_string())).unwrap_or_default(),
            attack.heads,
            attack.demands,
            attack.gap_claims,
            attack.checkpoints,
            attack.entries,
            attack.pages,
            attack.complete,
            attack.victims.keys().filter(|node| inputs.roles.is_honest(**node)).count(),
            totals.demands,
            totals.unvouched,
            totals.checkpoints,
            attestations.0,
            attestations.1,
            if stopped.is_empty() { "never".to_owned() } else { stopped.join(", ") },
        ),
    )
}

/// The first 12 hex digits of an id, as the core's debug output shows them.
fn short(hex: &str) -> String {
    hex.chars().take(12).collect()
}

/// An honest node's refusals of the forced-snapshot attack, by layer.
#[derive(Default)]
struct Refusals {
    /// `SnapshotRequired` / `GapTooLarge` not followed (`snapshot_demands_refused`).
    demands: u64,
    /// Checkpoints too few members vouched for (`snapshots_unvouched`).
    unvouched: u64,
    /// Sessions failed on the checkpoint's entries, `F` unsigned (`sync_failures`,
    /// `snapshot_checkpoint`).
    checkpoints: u64,
}

impl Refusals {
    fn total(&self) -> u64 {
        self.demands + self.unvouched + self.checkpoints
    }

    fn add(&mut self, other: &Self) {
        self.demands += other.demands;
        self.unvouched += other.unvouched;
        self.checkpoints += other.checkpoints;
    }
}

/// Every invited node was handed its invitation; the forged copy was refused as forged and left
/// it outside the context, the token let it join, and the replay was refused as a replay.
fn invitations(inputs: &Inputs<'_>) -> CheckResult {
    let name = CheckName::InvitationsRefused;
    let mut details = Vec::new();
    for node in &inputs.roles.invited {
        let Some(trial) = inputs.invitations.iter().find(|trial| trial.node == *node) else {
            return CheckResult::new(
                name,
                false,
                format!("n{node} was never invited (no add_member event ran for it)"),
            );
        };
        let steps = match &trial.steps {
            Ok(steps) => steps,
            Err(error) => return CheckResult::new(name, false, format!("n{node}: {error}")),
        };
        let forged_refused = steps.forged == Err(ApiError::Invitation(InvitationError::Forged));
        let replay_refused = steps.replayed == Err(ApiError::Invitation(InvitationError::Replayed));
        if !forged_refused || steps.joined_after_forged || steps.genuine.is_err() || !replay_refused {
            return CheckResult::new(
                name,
                false,
                format!(
                    "n{node}: forged copy {:?} (joined after it: {}), token {:?}, replay {:?}",
                    steps.forged, steps.joined_after_forged, steps.genuine, steps.replayed
                ),
            );
        }
        details.push(format!(
            "n{node}: forged copy (role raised to admin) refused as {}, the token joined it, its replay refused as {}",
            InvitationError::Forged.label(),
            InvitationError::Replayed.label()
        ));
    }
    CheckResult::new(name, true, details.join("; "))
}
