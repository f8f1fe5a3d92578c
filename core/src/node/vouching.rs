//! Who vouches for a snapshot: taking members' attestations in, counting them for a
//! checkpoint's (heads, root), and repairing a state adopted on one member's word once another
//! member contradicts it. The rule and its limits: docs/SECURITY.md, "Snapshots: who vouches".

use super::{Node, Output};
use crate::applier::Applier;
use crate::attestation::{Attestation, AttestationError, SignedAttestation};
use crate::ids::{AuthorKey, ContextId, DeltaId, PeerId, RootHash};
use crate::sync::vouches::Recorded;
use crate::sync::{Judgement, SingleVoucherAdoption, SyncMode, SyncReason};
use crate::wire::{GossipMessage, GossipV2, SignedHeartbeat};

/// Vouchers for one snapshot, against the number required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct VoucherCount {
    /// Distinct members vouching: the server, and others whose latest attestation names
    /// exactly the snapshot's heads and root.
    pub(super) vouchers: usize,
    /// How many the snapshot needs.
    pub(super) required: usize,
}

impl VoucherCount {
    pub(super) fn is_enough(&self) -> bool {
        self.vouchers >= self.required
    }
}

impl Node {
    /// Checks a signed heartbeat's attestation from `from` (its publisher) and records it.
    /// Membership and the publisher were checked by the heartbeat path; the signature is
    /// checked last, as the costliest.
    pub(super) fn take_attestation(
        &mut self,
        from: PeerId,
        signed: &SignedAttestation,
    ) -> Result<(), AttestationError> {
        let statement = &signed.attestation;
        let replica = self.replicas.get_mut(&statement.context).ok_or(AttestationError::NotMember)?;
        if !replica.is_member_peer(&from) {
            return Err(AttestationError::NotMember);
        }
        if statement.signer_peer() != from {
            return Err(AttestationError::Misattributed);
        }
        signed.verify()?;
        let max_entries = self.config.limits.max_members_per_context;
        let members = replica.dag.members().clone();
        if replica.vouches.record(statement, max_entries, |signer| members.contains(signer)) == Recorded::Kept {
            self.metrics.attestations_taken += 1;
        }
        Ok(())
    }

    /// Counts a refused attestation by reason.
    pub(super) fn refuse_attestation(&mut self, error: AttestationError) {
        tracing::debug!(%error, "refused attestation");
        self.metrics.count_attestation_refused(error.label());
    }

    /// Vouchers for `server`'s snapshot of `context` at `(heads, root)`. Required: the
    /// configured number, capped at the members other than us (so a context with one other
    /// member works on that member's word), and at least the server. A repair needs only its
    /// server: its attestation has already contradicted the single voucher it replaces.
    pub(super) fn count_vouchers(
        &self,
        context: &ContextId,
        server: PeerId,
        reason: SyncReason,
        heads: &[DeltaId],
        root: &RootHash,
    ) -> VoucherCount {
        let Some(replica) = self.replicas.get(context) else {
            return VoucherCount { vouchers: 0, required: 1 };
        };
        let required = match reason {
            SyncReason::SnapshotRepair => 1,
            _ => self.config.snapshot_vouchers.min(replica.other_member_peers()).max(1),
        };
        let server_key = AuthorKey::from_bytes(*server.as_bytes());
        let own = self.author;
        let by_server = usize::from(server_key != own && replica.is_member_peer(&server));
        let by_others = replica.vouches.count(heads, root, |signer| {
            *signer != server_key && *signer != own && replica.is_member_peer(&PeerId::from_bytes(*signer.as_bytes()))
        });
        VoucherCount { vouchers: by_server + by_others, required }
    }

    /// Remembers how a snapshot was vouched for once it is adopted: on one voucher, the
    /// replica keeps checking later attestations against it.
    pub(super) fn note_adoption(
        &mut self,
        context: ContextId,
        server: PeerId,
        reason: SyncReason,
        heads: Vec<DeltaId>,
        root: RootHash,
        count: VoucherCount,
    ) {
        let Some(replica) = self.replicas.get_mut(&context) else { return };
        if count.vouchers >= 2 {
            replica.single_voucher = None;
            return;
        }
        self.metrics.snapshots_single_voucher += 1;
        let mut chain = match (reason, replica.single_voucher.take()) {
            (SyncReason::SnapshotRepair, Some(previous)) => previous.chain,
            _ => Vec::new(),
        };
        if !chain.contains(&server) {
            chain.push(server);
        }
        replica.single_voucher = Some(SingleVoucherAdoption { heads, root, chain });
    }

    /// After a verified attestation: if the replica's state was adopted on one voucher, a
    /// second member agreeing confirms it, and one contradicting it (same heads, another
    /// root) starts a snapshot sync from that member. A member already in the adoption's chain
    /// (it served this state or a repair of it) is only counted, so two members that
    /// contradict each other cannot make us swap states without end.
    pub(super) fn check_adopted_state(&mut self, app: &dyn Applier, statement: &Attestation) {
        let context = statement.context;
        let signer = statement.signer_peer();
        let Some(replica) = self.replicas.get_mut(&context) else { return };
        let Some(adoption) = &replica.single_voucher else { return };
        if signer == self.peer_id {
            return;
        }
        let judgement = adoption.judge(statement, &replica.dag.heads_vec(), &app.root_hash(&context));
        let in_chain = adoption.chain.contains(&signer);
        match judgement {
            Judgement::Silent => {}
            Judgement::Agrees if in_chain => {}
            Judgement::Agrees => {
                replica.single_voucher = None;
                self.metrics.snapshots_confirmed += 1;
            }
            Judgement::Disagrees if in_chain => self.metrics.snapshot_disputes += 1,
            Judgement::Disagrees => {
                tracing::warn!(%context, peer = %signer, "a member contradicts the state adopted on one voucher: repairing");
                self.outputs.push_back(Output::Event(super::Event::Divergence {
                    context,
                    peer: signer,
                    our_root: app.root_hash(&context),
                    peer_root: statement.root,
                }));
                if replica.track.may_force()
                    && self.start_sync(context, signer, SyncReason::SnapshotRepair, SyncMode::Snapshot)
                {
                    self.metrics.snapshot_repairs += 1;
                }
            }
        }
    }

    /// Publishes `context`'s heartbeat as a signed attestation of our heads and root.
    pub(super) fn publish_signed_heartbeat(&mut self, context: ContextId, statement: Attestation, applied_count: u64) {
        let attestation = statement.sign(&self.keypair);
        let heartbeat = SignedHeartbeat { attestation, applied_count };
        self.metrics.gossip_sent += 1;
        self.outputs
            .push_back(Output::Broadcast { context, bytes: GossipMessage::encode_v2(GossipV2::Heartbeat(heartbeat)) });
    }
}
