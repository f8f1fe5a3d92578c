//! A node's context keys: learning them from membership deltas, choosing the one to seal a
//! write under, and rotating when no key every current member holds exists.
//!
//! Keys are learned from a delta when it arrives, before it is applied: a key granted by a
//! delta that waits on a quarantined one (sealed under that very key) must still be learned,
//! or neither would ever apply. A key only lets us open payloads; what a payload may do is
//! decided by its delta's signature and its author's membership, as for every delta.

use super::{Node, NodeError};
use crate::applier::Applier;
use crate::delta::{CausalDelta, DeltaKind};
use crate::ids::{AuthorKey, ContextId, DeltaId};
use crate::membership::{genesis_wrap_context, KeyShare, MemberOp, MembershipChange, MembershipView};
use crate::seal::{ContextKey, KeyringOpenError};

impl Node {
    /// Hedges the keys this node makes with the driver's `entropy` (see
    /// [`crate::seal::rotation_key`]): a real node passes fresh OS randomness at every start,
    /// the simulator bytes from its seed. Without it keys still depend on the identity secret.
    pub fn set_key_entropy(&mut self, entropy: [u8; 32]) {
        self.key_entropy = entropy;
    }

    /// Keeps a context key obtained outside the DAG (an invitation's). True if it is new.
    pub(super) fn insert_key(&mut self, context: &ContextId, key: ContextKey) -> bool {
        let Some(replica) = self.replicas.get_mut(context) else { return false };
        let new = replica.dag.insert_key(key);
        if new {
            self.metrics.keys_learned += 1;
        }
        new
    }

    /// Learns the keys a delta's shares wrap to this node. True if one is new. A wrap to us
    /// that does not open is counted: its author handed us a key we cannot use.
    pub(super) fn learn_keys(&mut self, context: &ContextId, author: &AuthorKey, kind: &DeltaKind) -> bool {
        let (bound_to, shares): (ContextId, Vec<&KeyShare>) = match kind {
            DeltaKind::App => return false,
            DeltaKind::Genesis(genesis) => (genesis_wrap_context(author, &genesis.nonce), vec![&genesis.keys]),
            DeltaKind::Membership(change) => (*context, change.shares().collect()),
        };
        let mut unwrapped = Vec::new();
        for share in shares {
            match share.unwrap_for(&self.keypair, author, &bound_to) {
                None => {}
                Some(Ok(key)) => unwrapped.push(key),
                Some(Err(_)) => self.metrics.key_unwrap_failures += 1,
            }
        }
        let mut new = false;
        for key in unwrapped {
            new |= self.insert_key(context, key);
        }
        new
    }

    /// Tries the quarantined deltas of `context` again after a key was learned: those sealed
    /// under it open now.
    pub(super) fn retry_after_new_key(&mut self, app: &mut dyn Applier, context: &ContextId) {
        let waiting = self.replicas.get(context).is_some_and(|replica| replica.dag.quarantined_len() > 0);
        if waiting {
            // The context exists (checked above), so this cannot fail.
            let _ = self.retry(app, context);
        }
    }

    /// Opens an application delta's payload with the context's keys (the driver reads the
    /// events of applied deltas with it).
    pub fn open_payload(&self, context: &ContextId, delta: &CausalDelta) -> Result<Vec<u8>, KeyringOpenError> {
        let replica = self.replicas.get(context).ok_or(KeyringOpenError::NoKey(Default::default()))?;
        replica.dag.open_payload(delta)
    }

    /// The key this node would seal a write on the current heads under, if it holds one that
    /// every current member holds: what an invitation hands out.
    pub fn current_key(&self, context: &ContextId) -> Option<ContextKey> {
        let replica = self.replicas.get(context)?;
        let parents = self.write_parents(&replica.dag);
        let view = replica.dag.view_of_parents(&parents)?;
        self.good_key(context, &view).cloned()
    }

    /// A key of `view`'s epoch that this node holds and that the view's causal past handed to
    /// exactly its members: every member can open the write, and nobody else (a key of the
    /// epoch wrapped to someone no longer a member, as a void or mutual change's rotation may
    /// be, is not used). Admission checks the same rule against the same view, so a write
    /// sealed under it is accepted everywhere. The one of least fingerprint, so the choice is
    /// the same on every run.
    fn good_key(&self, context: &ContextId, view: &MembershipView) -> Option<&ContextKey> {
        let keyring = self.replicas.get(context)?.dag.keyring();
        view.member_keys().find_map(|key_id| keyring.get(view.epoch(), key_id))
    }

    /// The key to seal a write on `parents` under, or `None` if a rotation must come first.
    pub(super) fn writer_key(&self, context: &ContextId, parents: &[DeltaId]) -> Option<ContextKey> {
        let view = self.replicas.get(context)?.dag.view_of_parents(parents)?;
        self.good_key(context, &view).cloned()
    }

    /// True if a write on the current heads needs a rotation first.
    pub(super) fn needs_rotation(&self, context: &ContextId) -> bool {
        let Some(replica) = self.replicas.get(context) else { return false };
        let parents = self.write_parents(&replica.dag);
        self.writer_key(context, &parents).is_none()
    }

    /// The rotation and grants a membership change with `ops` by this node on `parents`
    /// carries: a new key if `rotate` (or an op removes someone), wrapped to exactly the
    /// members after the ops; and every key held that a member after the ops lacks, granted to
    /// it, newest epochs first, within [`crate::Limits::max_key_wraps_per_change`].
    pub(super) fn key_shares(
        &self,
        context: &ContextId,
        parents: &[DeltaId],
        ops: Vec<MemberOp>,
        rotate: bool,
    ) -> Result<MembershipChange, NodeError> {
        let replica = self.replicas.get(context).ok_or(NodeError::UnknownContext(*context))?;
        let past = replica.dag.view_of_parents(parents).ok_or(NodeError::NotMember(*context))?;
        let mut after = MembershipView::clone(&past);
        after.apply_change(&self.author, &ops, None, &[], (u64::MAX, DeltaId::default()));
        let members: Vec<AuthorKey> = after.members().keys().copied().collect();
        let mut change = MembershipChange { ops, rotation: None, grants: Vec::new() };
        let max_wraps = self.config.limits.max_key_wraps_per_change;
        let mut wraps = 0;
        if rotate || change.removes() {
            let epoch = past.epoch().next().ok_or(NodeError::KeyEpochsExhausted(*context))?;
            let key = crate::seal::rotation_key(&self.keypair, &self.key_entropy, context, epoch, parents, &members);
            let share = KeyShare::wrap(&self.keypair, context, &key, members.iter().copied())
                .map_err(|_| NodeError::BadMemberKey(*context))?;
            wraps += share.wraps.len();
            change.rotation = Some(share);
        }
        let dag = &replica.dag;
        let keys: Vec<&ContextKey> = dag.keyring().iter().collect();
        for key in keys.into_iter().rev() {
            // Only keys an applied delta handed out: a key learned from a delta that is not
            // applied (still waiting, or refused) may be one a removal's rotation made, or junk,
            // and must never be passed on.
            let Some(recipients) = dag.membership().recipients(key.epoch(), &key.id()) else { continue };
            let lacking: Vec<AuthorKey> =
                members.iter().filter(|member| !recipients.contains(member)).copied().collect();
            if lacking.is_empty() || key.epoch() > after.epoch() {
                continue;
            }
            if wraps + lacking.len() > max_wraps {
                // Members who lack the oldest keys cannot apply history sealed under them and
                // need a snapshot for it (docs/SECURITY.md, "Key rotation").
                tracing::warn!(%context, "key grants cut at the wrap bound");
                break;
            }
            let share =
                KeyShare::wrap(&self.keypair, context, key, lacking).map_err(|_| NodeError::BadMemberKey(*context))?;
            wraps += share.wraps.len();
            change.grants.push(share);
        }
        Ok(change)
    }

    /// Authors a rotation with no ops (and the grants current members lack), so that a write
    /// can be sealed under a key every member holds.
    pub(super) fn rotate_for_write(&mut self, app: &mut dyn Applier, context: ContextId) -> Result<DeltaId, NodeError> {
        let replica = self.replicas.get(&context).ok_or(NodeError::UnknownContext(context))?;
        let parents = self.write_parents(&replica.dag);
        let change = self.key_shares(&context, &parents, Vec::new(), true)?;
        self.metrics.key_rotations += 1;
        self.author_delta(app, context, DeltaKind::Membership(change), Vec::new())
    }

    /// Seals `plaintext` for a write by this node on `parents` (sorted) at `hlc`.
    pub(super) fn seal_write(
        &self,
        context: &ContextId,
        parents: &[DeltaId],
        hlc: &crate::hlc::Hlc,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let key = self.writer_key(context, parents).ok_or(NodeError::KeyRotationNeeded(*context))?;
        let header = crate::seal::SealHeader { context, author: &self.author, parents, hlc };
        Ok(crate::seal::seal_payload_encoded(&key, &header, &self.key_entropy, plaintext))
    }
}
