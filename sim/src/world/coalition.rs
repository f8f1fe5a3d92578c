//! The byzantine members' attack while they are still members: the forced-snapshot attack
//! with a fake head, and a forged snapshot to go with it.
//!
//! Early in the run the coalition freezes one member's real snapshot (asked of its own node
//! loop) and makes up a head `F` on top of it: a header with the real heads as parents, a
//! correct id and no valid signature. From then on, until its replica holds its removal, every
//! byzantine member
//! - publishes signed (V2) heartbeats naming heads `[F]` and the frozen state's root (it holds
//!   its key, so its attestations verify; every member of the coalition names the same pair,
//!   so they vouch for each other's snapshot);
//! - answers every sync request a node outside the coalition sends it in place of its node
//!   loop (the network's [`Interceptor`] hook): `Heads` with `[F]`; a first `DeltasSince` page with
//!   `SnapshotRequired` or with an empty page claiming a gap far over the snapshot threshold
//!   (the two ways a peer can ask for a snapshot), later pages with `SnapshotRequired`;
//!   `SnapshotBegin` with the forged checkpoint (heads `[F]`, the real entries plus `F`, the
//!   frozen root); `SnapshotPage` with the frozen pages, `F` added to the last.
//!
//! The state matches the root, so the checkpoint's signed-header check is what stands between
//! an honest node and adopting `F`. Requests from coalition members go to the node loop as
//! usual. Every draw comes from a seeded RNG; the tasks are madsim tasks.

use super::boot::EPOCH_MS;
use super::cluster::Cluster;
use crate::checks::adversaries::{AttackTally, Victim};
use crate::network::{Interceptor, Net};
use crate::record::SharedRecorder;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rhizome_core::attestation::Attestation;
use rhizome_core::wire::{
    GossipMessage, GossipV2, SignedHeartbeat, SnapshotCheckpoint, SnapshotPage, SyncErrorCode, SyncRequest,
    SyncRequestV1, SyncResponse, SyncResponseV1,
};
use rhizome_core::{CausalDelta, ContextId, DeltaId, Hlc, Keypair, Limits, PeerId, RootHash, Signature};
use rhizome_node::NodeHandle;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The gap a lying first page claims: far over any snapshot threshold.
const CLAIMED_GAP: u64 = 1_000_000;
/// How far ahead of the wall clock the coalition's heartbeat sequences run, so that its
/// members' own (honest) heartbeats, sequenced by the wall clock, count as replays and never
/// replace the fake statement.
const SEQUENCE_LEAD: u64 = 1_000_000_000;
/// How long the coalition waits for its own node loop's snapshot.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// The forged snapshot every coalition member serves.
struct Forged {
    fake_head: DeltaId,
    root: RootHash,
    checkpoint: SnapshotCheckpoint,
    pages: Vec<SnapshotPage>,
}

struct State {
    /// Byzantine members now answering in their nodes' place.
    armed: BTreeSet<usize>,
    forged: Option<Arc<Forged>>,
    tally: AttackTally,
    rng: ChaCha8Rng,
}

/// The byzantine coalition: its shared state, and the network hook that answers for it.
#[derive(Clone)]
pub(super) struct Coalition {
    state: Arc<Mutex<State>>,
    /// Node index of every peer, to tell honest requesters from coalition members.
    nodes: Arc<BTreeMap<PeerId, usize>>,
    members: Arc<Vec<usize>>,
    /// Every node's boot count, to tell a restarted victim's counters from its old ones.
    boots: Arc<Vec<Arc<AtomicI64>>>,
    context: ContextId,
    limits: Limits,
}

impl Coalition {
    /// Installs the coalition's hook in the network and spawns its task, if the scenario has
    /// byzantine members.
    pub(super) fn spawn(
        cluster: &Cluster,
        seed: u64,
        removals: Arc<Mutex<BTreeMap<usize, DeltaId>>>,
        stop: Arc<std::sync::atomic::AtomicBool>,
        recorder: &SharedRecorder,
    ) -> Option<Self> {
        if cluster.roles.byzantine.is_empty() {
            return None;
        }
        let nodes = (0..cluster.slots.len()).map(|index| (cluster.keypair(index).peer_id(), index)).collect();
        let coalition = Self {
            state: Arc::new(Mutex::new(State {
                armed: BTreeSet::new(),
                forged: None,
                tally: AttackTally::default(),
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x636f_616c_6974_696f),
            })),
            nodes: Arc::new(nodes),
            members: Arc::new(cluster.roles.byzantine.clone()),
            boots: Arc::new(cluster.boot_counters()),
            context: cluster.shared.context,
            limits: cluster.shared.config.core.limits.clone(),
        };
        cluster.shared.net.set_interceptor(Arc::new(coalition.clone()));
        let task = Task {
            coalition: coalition.clone(),
            keypairs: cluster.roles.byzantine.iter().map(|index| (*index, cluster.keypair(*index).clone())).collect(),
            handles: cluster.handle_slots(),
            net: cluster.shared.net.clone(),
            every: Duration::from_secs_f64(cluster.roles.forge_every_s),
            start: cluster.shared.start,
            recorder: recorder.clone(),
            removals,
            stop,
        };
        tokio::spawn(task.run());
        Some(coalition)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the coalition did so far.
    pub(super) fn tally(&self) -> AttackTally {
        self.lock().tally.clone()
    }

    fn is_member(&self, peer: &PeerId) -> bool {
        self.nodes.get(peer).is_some_and(|index| self.members.contains(index))
    }
}

impl Interceptor for Coalition {
    fn answer(&self, to: usize, from: PeerId, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.is_member(&from) {
            return None;
        }
        let mut state = self.lock();
        if !state.armed.contains(&to) {
            return None;
        }
        let forged = state.forged.clone()?;
        let request = SyncRequest::decode(bytes, &self.limits).ok()?;
        let response = match request {
            SyncRequestV1::Heads { context } => {
                state.tally.heads += 1;
                let applied_count = forged.checkpoint.entry_count;
                SyncResponseV1::Heads { context, heads: vec![forged.fake_head], root: forged.root, applied_count }
            }
            SyncRequestV1::DeltasSince { context, after, .. } => {
                let claim_gap = after.is_none() && state.rng.next_u32().is_multiple_of(2);
                if let Some(victim) = self.nodes.get(&from) {
                    let boot = self.boots[*victim].load(Ordering::Relaxed) as u64;
                    let entry = state.tally.victims.entry(*victim).or_default();
                    if entry.boot != boot {
                        *entry = Victim { boot, demands: 0 };
                    }
                    entry.demands += 1;
                }
                if claim_gap {
                    state.tally.gap_claims += 1;
                    SyncResponseV1::Deltas { context, deltas: Vec::new(), next: None, gap_total: CLAIMED_GAP }
                } else {
                    state.tally.demands += 1;
                    SyncResponseV1::Error(SyncErrorCode::SnapshotRequired)
                }
            }
            SyncRequestV1::SnapshotBegin { .. } => {
                state.tally.checkpoints += 1;
                SyncResponseV1::SnapshotCheckpoint(forged.checkpoint.clone())
            }
            SyncRequestV1::SnapshotPage { snapshot_id, page, .. } => {
                let found = forged.pages.get(page as usize).filter(|_| snapshot_id == forged.checkpoint.snapshot_id);
                match found {
                    Some(found) => {
                        state.tally.pages += 1;
                        if page + 1 == forged.checkpoint.page_count {
                            state.tally.complete += 1;
                        }
                        SyncResponseV1::SnapshotPage(found.clone())
                    }
                    None => SyncResponseV1::Error(SyncErrorCode::SnapshotUnavailable),
                }
            }
        };
        Some(SyncResponse::encode_v1(response))
    }
}

/// The coalition's task: freeze, then announce `[F]` from every member until it is removed.
struct Task {
    coalition: Coalition,
    keypairs: Vec<(usize, Keypair)>,
    handles: Vec<Arc<Mutex<Option<NodeHandle>>>>,
    net: Net,
    every: Duration,
    start: tokio::time::Instant,
    recorder: SharedRecorder,
    removals: Arc<Mutex<BTreeMap<usize, DeltaId>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Task {
    async fn run(self) {
        let context = self.coalition.context;
        // Freeze a snapshot of the first member whose node loop serves one.
        let forged = loop {
            tokio::time::sleep(self.every).await;
            if self.stopped() {
                return;
            }
            let mut found = None;
            for (index, keypair) in &self.keypairs {
                if let Some(forged) = self.freeze(*index, keypair).await {
                    found = Some(forged);
                    break;
                }
            }
            if let Some(forged) = found {
                break forged;
            }
        };
        let (fake_head, root) = (forged.fake_head, forged.root);
        {
            let mut state = self.coalition.lock();
            state.tally.fake_head = Some(fake_head);
            state.tally.root = Some(root);
            state.tally.entries = forged.checkpoint.entry_count;
            state.forged = Some(Arc::new(forged));
            state.armed = self.keypairs.iter().map(|(index, _)| *index).collect();
        }
        let elapsed = self.start.elapsed();
        self.recorder.note(elapsed, format!("coalition: fake head {fake_head}, root {root}"));
        let mut sent = BTreeMap::new();
        loop {
            if self.stopped() {
                self.coalition.lock().armed.clear();
                return;
            }
            let armed: Vec<usize> = self.coalition.lock().armed.iter().copied().collect();
            if armed.is_empty() {
                return;
            }
            for index in armed {
                if self.holds_its_removal(index).await {
                    let at = self.start.elapsed();
                    let mut state = self.coalition.lock();
                    state.armed.remove(&index);
                    state.tally.stopped_at_s.insert(index, at.as_secs_f64());
                    drop(state);
                    self.recorder.note(at, format!("coalition: n{index} holds its removal, stops lying"));
                    continue;
                }
                let Some((_, keypair)) = self.keypairs.iter().find(|(member, _)| *member == index) else { continue };
                let elapsed_ms = self.start.elapsed().as_millis() as u64;
                let count = sent.entry(index).or_insert(0u64);
                *count += 1;
                let statement = Attestation {
                    context,
                    signer: keypair.author_key(),
                    sequence: EPOCH_MS + elapsed_ms + SEQUENCE_LEAD + *count,
                    heads: vec![fake_head],
                    root,
                };
                let heartbeat = SignedHeartbeat { attestation: statement.sign(keypair), applied_count: 0 };
                self.net.inject_gossip(index, context, GossipMessage::encode_v2(GossipV2::Heartbeat(heartbeat)));
                *self.coalition.lock().tally.heartbeats.entry(index).or_default() += 1;
            }
            tokio::time::sleep(self.every).await;
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn handle(&self, index: usize) -> Option<NodeHandle> {
        self.handles[index].lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `index`'s replica holds the delta that removed it (it then forges instead).
    async fn holds_its_removal(&self, index: usize) -> bool {
        let Some(removal) = self.removals.lock().unwrap_or_else(|p| p.into_inner()).get(&index).copied() else {
            return false;
        };
        let Some(handle) = self.handle(index) else { return false };
        handle.missing(self.coalition.context, vec![removal]).await.is_ok_and(|missing| missing.is_empty())
    }

    /// Asks `index`'s own node loop for a snapshot and forges one from it, or `None` if it
    /// serves none now.
    async fn freeze(&self, index: usize, keypair: &Keypair) -> Option<Forged> {
        let context = self.coalition.context;
        self.handle(index)?;
        let begin = SyncRequest::encode_v1(SyncRequestV1::SnapshotBegin { context });
        let SyncResponseV1::SnapshotCheckpoint(real) = self.ask(index, begin).await? else { return None };
        let mut pages = Vec::with_capacity(real.page_count as usize);
        for page in 0..real.page_count {
            let request = SyncRequestV1::SnapshotPage { context, snapshot_id: real.snapshot_id, page };
            let SyncResponseV1::SnapshotPage(page) = self.ask(index, SyncRequest::encode_v1(request)).await? else {
                return None;
            };
            pages.push(page);
        }
        // `F`: a header on the real heads with a correct id, by this member, signed by nobody.
        let elapsed_ms = self.start.elapsed().as_millis() as u64;
        let hlc = Hlc { physical_ms: EPOCH_MS + elapsed_ms, logical: 0, node: index as u64 };
        let mut payload = vec![0; 32];
        self.coalition.lock().rng.fill_bytes(&mut payload);
        let mut fake = CausalDelta::new_signed(keypair, context, real.heads.clone(), hlc, payload).header();
        fake.signature = Signature([0; 64]);
        let fake_head = fake.id;
        let room = self.coalition.limits.max_snapshot_ids_per_page;
        let mut checkpoint = real.clone();
        match pages.last_mut() {
            Some(last) if last.entries.len() < room => last.entries.push(fake),
            _ => {
                let page = checkpoint.page_count;
                pages.push(SnapshotPage {
                    context,
                    snapshot_id: real.snapshot_id,
                    page,
                    state_chunk: Vec::new(),
                    entries: vec![fake],
                });
                checkpoint.page_count += 1;
            }
        }
        checkpoint.heads = vec![fake_head];
        checkpoint.entry_count += 1;
        Some(Forged { fake_head, root: real.root, checkpoint, pages })
    }

    async fn ask(&self, index: usize, request: Vec<u8>) -> Option<SyncResponseV1> {
        let bytes = self.net.ask_own_loop(index, request, FREEZE_TIMEOUT).await.ok()?;
        SyncResponse::decode(&bytes, &self.coalition.limits).ok()
    }
}
