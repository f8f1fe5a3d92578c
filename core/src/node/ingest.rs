//! Taking in deltas from peers: dedupe first (cheap), then verify (id, signature, membership,
//! clock), then hand to the DAG; act on the outcome.

use super::{Event, GossipVerdict, Node, Output};
use crate::applier::Applier;
use crate::attestation::{AttestationError, SignedAttestation};
use crate::dag::AddOutcome;
use crate::delta::{CausalDelta, DeltaRef};
use crate::heartbeat::{self, HeartbeatVerdict};
use crate::hlc::check_drift;
use crate::ids::{ContextId, DeltaId, PeerId};
use crate::reject::RejectReason;
use crate::signature_batch::verify_records;
use crate::sync::{SyncMode, SyncReason};
use crate::wire::{Gossip, GossipMessage, Heartbeat};

/// How a remote delta reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    /// Published on the topic; buffered while a snapshot of its context runs.
    Gossip,
    /// In a response to our request.
    Fetch,
    /// Released from the snapshot buffer.
    Replay,
}

impl Node {
    pub(super) fn on_gossip(&mut self, app: &mut dyn Applier, from: PeerId, bytes: &[u8]) -> GossipVerdict {
        self.metrics.gossip_received += 1;
        match GossipMessage::decode(bytes, &self.config.limits) {
            Ok(Gossip::Delta(delta)) => self.ingest_remote(app, from, delta, Via::Gossip),
            Ok(Gossip::Heartbeat(heartbeat)) => self.on_heartbeat(app, from, heartbeat, None),
            Ok(Gossip::SignedHeartbeat(signed)) => {
                let heartbeat = signed.heartbeat();
                self.on_heartbeat(app, from, heartbeat, Some(signed.attestation))
            }
            Err(error) => {
                self.metrics.count_decode_error(error.label());
                GossipVerdict::Reject { reason: error.label() }
            }
        }
    }

    pub(super) fn ingest_remote(
        &mut self,
        app: &mut dyn Applier,
        from: PeerId,
        delta: DeltaRef,
        via: Via,
    ) -> GossipVerdict {
        self.ingest_checked(app, from, delta, via, None)
    }

    /// For each of `deltas`, which arrived together, the answer of its `verify_with`, the
    /// signatures checked in batches ([`crate::signature_batch`]): hand each to
    /// [`Self::ingest_checked`]. Deltas the node knows already get none (ingest skips them
    /// before checking).
    pub(super) fn verify_together(&self, deltas: &[DeltaRef]) -> Vec<Option<Result<(), RejectReason>>> {
        let is_new = |delta: &DeltaRef| {
            self.replicas.get(&delta.context).is_some_and(|replica| !replica.dag.is_known(&delta.id))
        };
        let new: Vec<usize> = (0..deltas.len()).filter(|&index| is_new(&deltas[index])).collect();
        let records: Vec<&CausalDelta> = new.iter().map(|&index| &*deltas[index]).collect();
        let mut verdicts = vec![None; deltas.len()];
        let checked = verify_records(&records, &self.config.limits, self.signature_memo.as_ref());
        for (index, verdict) in new.into_iter().zip(checked) {
            verdicts[index] = Some(verdict);
        }
        verdicts
    }

    /// [`Self::ingest_remote`], with the answer of `delta.verify_with` when
    /// [`Self::verify_together`] already has it. The verdict says whether a gossiped delta
    /// should be relayed (callers of fetched deltas ignore it).
    pub(super) fn ingest_checked(
        &mut self,
        app: &mut dyn Applier,
        from: PeerId,
        delta: DeltaRef,
        via: Via,
        verified: Option<Result<(), RejectReason>>,
    ) -> GossipVerdict {
        self.metrics.deltas_received += 1;
        let now = self.now;
        let max_peers = self.config.limits.max_peers_per_context;
        let Some(replica) = self.replicas.get(&delta.context) else {
            self.reject(RejectReason::UnknownContext);
            return GossipVerdict::Ignore;
        };
        if replica.dag.is_known(&delta.id) {
            if delta.author == self.author {
                self.metrics.echoes_skipped += 1;
            } else {
                self.metrics.duplicates += 1;
            }
            return GossipVerdict::Ignore;
        }
        if let Err(reason) = self.check_remote(&delta, verified) {
            let verdict = GossipVerdict::of_refusal(&reason);
            self.reject(reason);
            self.metrics.count_refusal_from(from);
            return verdict;
        }
        let context = delta.context;
        // Only a member that delivered a valid delta becomes a preferred sync peer.
        let replica = self.replicas.get_mut(&context).expect("context checked above");
        if replica.is_member_peer(&from) {
            replica.note_peer(from, now, max_peers);
        }
        if via == Via::Gossip && replica.snapshot_running() {
            let max = self.config.limits.max_snapshot_buffer_deltas;
            // Verified either way: a delta our full buffer drops is still one for the others.
            if replica.buffer.push(from, delta, max) {
                self.metrics.snapshot_buffered += 1;
            } else {
                self.metrics.snapshot_buffer_dropped += 1;
            }
            return GossipVerdict::Accept;
        }
        match self.add_verified(app, Some(from), delta) {
            Some(reason) => GossipVerdict::Reject { reason },
            None => GossipVerdict::Accept,
        }
    }

    /// Checks a delta that is new to us: shape, id, signature, membership, clock bound.
    fn check_remote(
        &mut self,
        delta: &DeltaRef,
        verified: Option<Result<(), RejectReason>>,
    ) -> Result<(), RejectReason> {
        match verified {
            Some(verdict) => verdict?,
            None => delta.verify_with(&self.config.limits, self.signature_memo.as_ref())?,
        }
        let replica = self.replicas.get(&delta.context).ok_or(RejectReason::UnknownContext)?;
        match &delta.kind {
            // Anyone may send the genesis, so it must prove itself here, before its key share
            // is looked at: a self-signed fake would otherwise hand us keys (or fill the ring).
            crate::delta::DeltaKind::Genesis(genesis) => {
                let creates_this = crate::membership::genesis_context_id(&delta.author, &delta.hlc, genesis)
                    == delta.context
                    && delta.parents.is_empty();
                if !creates_this || replica.dag.membership().genesis().is_some_and(|known| *known != delta.id) {
                    return Err(RejectReason::BadGenesis);
                }
            }
            _ if !replica.may_author(&delta.author) => return Err(RejectReason::NotMember),
            _ => {}
        }
        let now_ms = self.wall_ms;
        let max_drift_ms = self.config.limits.max_hlc_drift_ms;
        check_drift(delta.hlc, now_ms, max_drift_ms).map_err(RejectReason::Clock)?;
        self.clock.observe(delta.hlc, now_ms, max_drift_ms).map_err(RejectReason::Clock)
    }

    /// Adds a verified delta to its DAG and acts on the outcome. `from` is asked for missing
    /// parents at once. Returns the label of the refusal if the DAG refused it (its author may
    /// not write it at its causal point).
    pub(super) fn add_verified(
        &mut self,
        app: &mut dyn Applier,
        from: Option<PeerId>,
        delta: DeltaRef,
    ) -> Option<&'static str> {
        let context = delta.context;
        if !self.replicas.contains_key(&context) {
            return None;
        }
        // Learned on arrival, before it waits on anything (see `keys`).
        let new_key = self.learn_keys(&context, &delta.author, &delta.kind);
        let replica = self.replicas.get_mut(&context)?;
        let outcome = replica.dag.add(self.now, delta.clone(), app);
        let refused = self.after_add(from, &delta, outcome);
        // Quarantined deltas sealed under the new key open now; after the outcome is reported,
        // so a delta this releases is reported pending first, then released.
        if new_key {
            self.retry_after_new_key(app, &context);
        }
        refused
    }

    /// Reports what adding `delta` did. The refusal's label if the DAG refused it.
    fn after_add(&mut self, from: Option<PeerId>, delta: &DeltaRef, outcome: AddOutcome) -> Option<&'static str> {
        let context = delta.context;
        self.report_evicted(context);
        match outcome {
            AddOutcome::Applied { cascade, quarantined } => {
                self.emit_applied(context, delta.id, delta.author, false);
                for id in &cascade {
                    let author = self.replicas[&context].dag.get(id).map(|d| d.author).unwrap_or_default();
                    self.emit_applied(context, *id, author, false);
                }
                for id in &quarantined {
                    self.report_quarantined(context, *id);
                }
                let released: Vec<DeltaId> = cascade.into_iter().chain(quarantined).collect();
                self.report_released(context, released);
            }
            AddOutcome::Pending { missing } => {
                self.metrics.deltas_pended += 1;
                self.outputs.push_back(Output::Event(Event::DeltaPending { context, id: delta.id }));
                if let Some(peer) = from {
                    // A context that holds nothing lacks the sender's whole history: a sync
                    // measures the gap and takes a snapshot when it is long. The pending delta
                    // waits in the queue and applies once its parents arrive either way.
                    let fresh = self.replicas.get(&context).is_some_and(|replica| replica.dag.is_fresh());
                    let source = match self.replicas.get(&context) {
                        Some(replica) if replica.is_member_peer(&peer) => Some(peer),
                        _ => self.choose_peer(&context, &[]),
                    };
                    let caught_up_by_sync = fresh
                        && (self.session_running(&context)
                            || source.is_some_and(|source| {
                                self.start_sync(context, source, SyncReason::FreshContext, SyncMode::Deltas)
                            }));
                    if !caught_up_by_sync {
                        self.fetch_parents(context, missing, Some(peer), Vec::new());
                    }
                }
            }
            AddOutcome::Duplicate => self.metrics.duplicates += 1,
            AddOutcome::Quarantined(_) => self.report_quarantined(context, delta.id),
            AddOutcome::Rejected(reason) => {
                let label = reason.label();
                self.reject(reason);
                if let Some(peer) = from {
                    self.metrics.count_refusal_from(peer);
                }
                return Some(label);
            }
        }
        None
    }

    /// Reports the pending deltas the last DAG change evicted, and those it refused when their
    /// parents arrived (their author was not a member at their causal point).
    pub(super) fn report_evicted(&mut self, context: ContextId) {
        let Some(replica) = self.replicas.get_mut(&context) else { return };
        let refused = replica.dag.take_refused();
        let evicted = replica.dag.take_evicted();
        if !refused.is_empty() {
            let ids = refused.iter().map(|(id, _)| *id).collect();
            let cause = crate::dag::EvictionCause::NotMember;
            self.outputs.push_back(Output::Event(Event::PendingEvicted { context, ids, cause }));
            for (_, reason) in refused {
                self.reject(reason);
            }
        }
        let mut evicted = evicted.into_iter().peekable();
        // One event per run of one cause, in eviction order.
        while let Some((first, cause)) = evicted.next() {
            let mut ids = vec![first];
            while let Some((id, _)) = evicted.next_if(|(_, next)| *next == cause) {
                ids.push(id);
            }
            self.outputs.push_back(Output::Event(Event::PendingEvicted { context, ids, cause }));
        }
    }

    /// Reports deltas that left the pending queue (applied, quarantined or taken in).
    pub(super) fn report_released(&mut self, context: ContextId, ids: Vec<DeltaId>) {
        if !ids.is_empty() {
            self.outputs.push_back(Output::Event(Event::PendingReleased { context, ids }));
        }
    }

    pub(super) fn report_quarantined(&mut self, context: ContextId, id: crate::ids::DeltaId) {
        self.metrics.quarantined += 1;
        let error = self.replicas[&context].dag.quarantined(&id).map(|entry| entry.error.clone());
        if let Some(error) = error {
            self.outputs.push_back(Output::Event(Event::DeltaQuarantined { context, id, error }));
        }
    }

    /// Whether to replace our state with `peer`'s after a divergence. Peers whose last
    /// heartbeat had our heads vote with their root (we vote for ours). We adopt only if more
    /// of them hold the peer's root than ours; on a tie, only in a two-replica context, where
    /// the greater peer id adopts so that exactly one side does. Otherwise we wait for more
    /// heartbeats: copying state on thin evidence would spread corruption, not repair it.
    fn should_adopt_on_divergence(
        &self,
        context: &ContextId,
        peer: PeerId,
        our_heads: &[crate::ids::DeltaId],
        our_root: &crate::ids::RootHash,
        peer_root: &crate::ids::RootHash,
    ) -> bool {
        let Some(replica) = self.replicas.get(context) else { return false };
        let (mut ours, mut theirs) = (1usize, 0usize);
        for view in replica.peers.values().filter(|view| view.heads == our_heads) {
            match view.root {
                Some(root) if root == *our_root => ours += 1,
                Some(root) if root == *peer_root => theirs += 1,
                _ => {}
            }
        }
        theirs > ours || (theirs == ours && replica.peers.len() == 1 && self.peer_id > peer)
    }

    pub(super) fn reject(&mut self, reason: RejectReason) {
        tracing::debug!(%reason, "rejected delta");
        self.metrics.count_rejection(reason.label());
    }

    /// A heartbeat, unsigned (V1) or carrying its sender's signed attestation (V2), which is
    /// checked and recorded before anything of the heartbeat is taken.
    fn on_heartbeat(
        &mut self,
        app: &dyn Applier,
        from: PeerId,
        heartbeat: Heartbeat,
        attestation: Option<SignedAttestation>,
    ) -> GossipVerdict {
        self.metrics.heartbeats_received += 1;
        let now = self.now;
        let context = heartbeat.context;
        let max_peers = self.config.limits.max_peers_per_context;
        let Some(replica) = self.replicas.get_mut(&context) else {
            return GossipVerdict::Ignore;
        };
        if !replica.is_member_peer(&from) {
            self.metrics.non_member_messages += 1;
            self.metrics.count_refusal_from(from);
            if attestation.is_some() {
                self.refuse_attestation(AttestationError::NotMember);
            }
            return GossipVerdict::Reject { reason: "heartbeat_not_member" };
        }
        if heartbeat.sender != from {
            // Relayed gossip names its publisher; a heartbeat naming someone else is forged
            // or mangled, and must not speak for either peer.
            self.metrics.heartbeats_misattributed += 1;
            if attestation.is_some() {
                self.refuse_attestation(AttestationError::Misattributed);
            }
            return GossipVerdict::Reject { reason: "heartbeat_misattributed" };
        }
        if replica.peers.get(&from).is_some_and(|view| heartbeat.sequence <= view.heartbeat_sequence) {
            // An honest relay may pass on a heartbeat that a newer one overtook: not relayed,
            // not penalised.
            self.metrics.heartbeats_replayed += 1;
            return GossipVerdict::Ignore;
        }
        if let Some(signed) = &attestation {
            // A heartbeat whose signature fails speaks for nobody: none of it is taken.
            if let Err(error) = self.take_attestation(from, signed) {
                self.refuse_attestation(error);
                return GossipVerdict::Reject { reason: "heartbeat_bad_attestation" };
            }
        }
        let Some(replica) = self.replicas.get_mut(&context) else { return GossipVerdict::Ignore };
        let view = replica.note_peer(from, now, max_peers);
        view.heartbeat_sequence = heartbeat.sequence;
        view.heads.clone_from(&heartbeat.heads);
        view.root = Some(heartbeat.root);
        let our_heads = replica.dag.heads_vec();
        let our_root = app.root_hash(&context);
        let dag = &replica.dag;
        let verdict = heartbeat::compare(&our_heads, &our_root, &heartbeat.heads, &heartbeat.root, |id| {
            dag.is_applied(id) || dag.quarantined(id).is_some()
        });
        if let Some(signed) = &attestation {
            // Before the divergence vote below: a state taken on one member's word is repaired
            // from the member that contradicts it, not left to a vote it may lose.
            self.check_adopted_state(app, &signed.attestation);
        }
        match verdict {
            // Not at once: heads we lack are often deltas still in flight to us by gossip. The
            // evidence is looked at again after the evidence interval, and acted on only if
            // the peer is still ahead then.
            HeartbeatVerdict::PeerAhead { .. } => self.defer_evidence(context),
            HeartbeatVerdict::Diverged => {
                self.metrics.divergences_detected += 1;
                tracing::warn!(%context, peer = %from, "silent divergence: equal heads, different roots");
                self.outputs.push_back(Output::Event(Event::Divergence {
                    context,
                    peer: from,
                    our_root,
                    peer_root: heartbeat.root,
                }));
                if self.should_adopt_on_divergence(&context, from, &our_heads, &our_root, &heartbeat.root)
                    && self.replicas.get(&context).is_some_and(|replica| replica.track.may_force())
                {
                    self.start_sync(context, from, SyncReason::Divergence, SyncMode::Snapshot);
                }
            }
            HeartbeatVerdict::InSync | HeartbeatVerdict::PeerBehind => {}
        }
        GossipVerdict::Accept
    }
}
