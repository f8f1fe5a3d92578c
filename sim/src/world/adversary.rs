//! The adversaries' own behaviour, beside their (honest) node loops: every outsider, and every
//! byzantine member once its replica holds its removal, signs application deltas on its
//! current heads and gossips them as its node would. Its core would refuse to author them
//! (not a member), so they are built here with `CausalDelta::new_signed` and published
//! straight into the simulated network. Every honest node must refuse them all. Before their
//! removal, byzantine members attack as a coalition instead (`coalition.rs`).

use super::boot::EPOCH_MS;
use super::cluster::Cluster;
use super::coalition::Coalition;
use crate::checks::adversaries::{AttackTally, InvitationTrial};
use crate::network::Net;
use crate::record::SharedRecorder;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rhizome_core::wire::{GossipMessage, GossipV1};
use rhizome_core::{CausalDelta, ContextId, DeltaId, Hlc, Keypair};
use rhizome_node::NodeHandle;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes of a forged payload: not sealed under any context key (a forger holds none that
/// the members use), so it could never be opened even if a node let it in.
const FORGED_PAYLOAD_BYTES: usize = 64;

/// A membership event's label and the delta it made, or why it failed.
pub(super) type EventResult = (String, Result<DeltaId, String>);

/// What the adversaries did, for the checks.
#[derive(Clone, Default)]
pub(super) struct Adversaries {
    /// Every forged delta gossiped, by forger.
    pub(super) forged: Arc<Mutex<Vec<(usize, DeltaId)>>>,
    /// The membership delta that removed each removed node.
    pub(super) removals: Arc<Mutex<BTreeMap<usize, DeltaId>>>,
    /// Each membership event: its label and the delta it made, or why it failed.
    pub(super) events: Arc<Mutex<Vec<EventResult>>>,
    /// How each invited node's join by invitation went.
    pub(super) invitations: Arc<Mutex<Vec<InvitationTrial>>>,
    stop: Arc<AtomicBool>,
    /// The byzantine members' attack before their removal (`coalition.rs`), if any.
    coalition: Option<Coalition>,
}

/// One forger's fixed parts.
struct Forger {
    index: usize,
    keypair: Keypair,
    /// Whether it forges from the start (an outsider) or only once removed (a byzantine member).
    outsider: bool,
    handle: Arc<Mutex<Option<NodeHandle>>>,
    net: Net,
    context: ContextId,
    every: Duration,
    start: tokio::time::Instant,
    recorder: SharedRecorder,
}

impl Adversaries {
    /// Spawns one forger task per outsider and byzantine member, and the byzantine members'
    /// coalition.
    pub(super) fn spawn(cluster: &Cluster, seed: u64, recorder: &SharedRecorder) -> Self {
        let mut adversaries = Self::default();
        adversaries.coalition =
            Coalition::spawn(cluster, seed, adversaries.removals.clone(), adversaries.stop.clone(), recorder);
        let handles = cluster.handle_slots();
        for index in cluster.roles.forgers() {
            let forger = Forger {
                index,
                keypair: cluster.keypair(index).clone(),
                outsider: cluster.roles.outsiders.contains(&index),
                handle: handles[index].clone(),
                net: cluster.shared.net.clone(),
                context: cluster.shared.context,
                every: Duration::from_secs_f64(cluster.roles.forge_every_s),
                start: cluster.shared.start,
                recorder: recorder.clone(),
            };
            let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x666f_7267 ^ ((index as u64) << 24));
            tokio::spawn(forger.run(adversaries.clone(), rng));
        }
        adversaries
    }

    /// Stops every forger at its next turn.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The forged deltas so far.
    pub(super) fn forged(&self) -> Vec<(usize, DeltaId)> {
        self.forged.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The removals so far.
    pub(super) fn removals(&self) -> BTreeMap<usize, DeltaId> {
        self.removals.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What the byzantine coalition did, if the scenario has one.
    pub(super) fn attack(&self) -> Option<AttackTally> {
        self.coalition.as_ref().map(Coalition::tally)
    }

    /// The invited nodes' joins by invitation so far.
    pub(super) fn invitations(&self) -> Vec<InvitationTrial> {
        self.invitations.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The membership events so far.
    pub(super) fn events(&self) -> Vec<EventResult> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Forger {
    async fn run(self, adversaries: Adversaries, mut rng: ChaCha8Rng) {
        let mut sequence = 0u32;
        loop {
            tokio::time::sleep(self.every).await;
            if adversaries.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(handle) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).clone() else { continue };
            let Some(heads) = self.heads_to_forge_on(&handle, &adversaries).await else { continue };
            let mut payload = vec![0; FORGED_PAYLOAD_BYTES];
            rng.fill_bytes(&mut payload);
            let elapsed = self.start.elapsed();
            sequence = sequence.wrapping_add(1);
            // A plausible clock (the node's own time), so the refusal is for membership, not drift.
            let hlc =
                Hlc { physical_ms: EPOCH_MS + elapsed.as_millis() as u64, logical: sequence, node: self.index as u64 };
            let delta = CausalDelta::new_signed(&self.keypair, self.context, heads, hlc, payload);
            let id = delta.id;
            let bytes = GossipMessage::encode_v1(GossipV1::Delta(Arc::new(delta)));
            self.net.inject_gossip(self.index, self.context, bytes);
            adversaries.forged.lock().unwrap_or_else(|p| p.into_inner()).push((self.index, id));
            self.recorder.trace_only(elapsed, format!("n{} forged {id}", self.index));
        }
    }

    /// The heads to forge on, or `None` if this node does not forge now. A byzantine member
    /// forges only on a replica that holds its removal, so every forged delta descends from
    /// it: one concurrent with the removal would be a member's write, which honest nodes
    /// rightly accept.
    async fn heads_to_forge_on(&self, handle: &NodeHandle, adversaries: &Adversaries) -> Option<Vec<DeltaId>> {
        if !self.outsider {
            let removal = adversaries.removals.lock().unwrap_or_else(|p| p.into_inner()).get(&self.index).copied()?;
            if !handle.missing(self.context, vec![removal]).await.ok()?.is_empty() {
                return None;
            }
        }
        let status = handle.status().await.ok()?;
        let state = status.contexts.into_iter().find(|state| state.context == self.context)?;
        Some(state.heads)
    }
}
