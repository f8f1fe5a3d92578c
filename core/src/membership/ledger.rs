//! The membership deltas one replica has applied, and the views they give.
//!
//! Every applied delta carries the view of its causal past plus itself (see
//! [`MembershipView`]); nearly all deltas share their parent's view, so a view is an [`Arc`]
//! and most deltas cost one pointer. A delta whose parents hold different views (concurrent
//! membership changes meet) gets a new view folded from the union of their membership deltas.
//! Each record keeps its delta's view, whose `folded` list is the delta's causal past among
//! membership deltas: that is what tells whether two changes are concurrent (see
//! [`super::contest`]).

use super::contest::{self, Entry, Standing};
use super::{genesis_context_id, MembershipView, SharedView};
use crate::delta::{CausalDelta, DeltaHeader, DeltaKind};
use crate::hlc::Hlc;
use crate::ids::{AuthorKey, ContextId, DeltaId, IdMap};
use crate::membership::{KeyHandout, KeyShare, MemberOp, Role};
use crate::reject::RejectReason;
use crate::seal::{KeyEpoch, KeyId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The fields of a delta that membership is judged by, borrowed from a whole delta or from a
/// header alike (a delta's header costs a hash of its payload, which judging never needs).
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    /// The delta's id.
    pub id: &'a DeltaId,
    /// Its author.
    pub author: &'a AuthorKey,
    /// Its parents.
    pub parents: &'a [DeltaId],
    /// Its HLC.
    pub hlc: &'a Hlc,
    /// What it does.
    pub kind: &'a DeltaKind,
    /// The key its payload is sealed under, as far as the judged fields show it.
    pub sealed_key: SealedKey,
}

/// What the judged fields show of the key an application payload is sealed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKey {
    /// The payload names this key (epoch and id).
    Of(KeyEpoch, KeyId),
    /// The payload is too short to be sealed.
    NotSealed,
    /// Only the header is judged (a snapshot's history): the payload is not there to show it.
    /// Such a delta is never applied here, so its epoch decides nothing.
    NotShown,
}

impl<'a> From<&'a CausalDelta> for Judged<'a> {
    fn from(delta: &'a CausalDelta) -> Self {
        let sealed_key = match crate::seal::SealedPayload::key_of(&delta.payload) {
            Some((epoch, key_id)) => SealedKey::Of(epoch, key_id),
            None => SealedKey::NotSealed,
        };
        Self {
            id: &delta.id,
            author: &delta.author,
            parents: &delta.parents,
            hlc: &delta.hlc,
            kind: &delta.kind,
            sealed_key,
        }
    }
}

impl<'a> From<&'a DeltaHeader> for Judged<'a> {
    fn from(header: &'a DeltaHeader) -> Self {
        Self {
            id: &header.id,
            author: &header.author,
            parents: &header.parents,
            hlc: &header.hlc,
            kind: &header.kind,
            sealed_key: SealedKey::NotShown,
        }
    }
}

/// What one applied membership delta did, kept to fold views from.
#[derive(Debug, Clone)]
enum Effect {
    Genesis { members: Vec<(AuthorKey, Role)>, keys: KeyHandout },
    Change { ops: Vec<MemberOp>, rotation: Option<KeyHandout>, grants: Vec<KeyHandout> },
}

#[derive(Debug, Clone)]
struct Record {
    author: AuthorKey,
    effect: Effect,
    /// The view [`MembershipLedger::admit`] gave the delta: its `folded` list is the delta's
    /// membership past and itself.
    view: SharedView,
}

/// The membership deltas of one context and the view after all of them.
#[derive(Debug, Clone, Default)]
pub struct MembershipLedger {
    records: IdMap<DeltaId, Record>,
    genesis: Option<DeltaId>,
    /// The fold of every applied membership delta: the members at our heads.
    current: SharedView,
    /// Every key any applied membership delta ever made a member: a delta by anyone else
    /// cannot become valid by waiting for parents we have, so ingest refuses it at once.
    ever_members: BTreeSet<AuthorKey>,
    /// Who each key handed out by an applied delta was wrapped to: a writer seals only under a
    /// key every current member holds (see [`Self::recipients`]).
    key_recipients: BTreeMap<(KeyEpoch, KeyId), BTreeSet<AuthorKey>>,
}

impl MembershipLedger {
    /// The members at our heads.
    pub fn current(&self) -> &SharedView {
        &self.current
    }

    /// The genesis, once applied.
    pub fn genesis(&self) -> Option<&DeltaId> {
        self.genesis.as_ref()
    }

    /// True if any applied membership delta ever made `key` a member.
    pub fn ever_member(&self, key: &AuthorKey) -> bool {
        self.ever_members.contains(key)
    }

    /// Who the key `(epoch, id)` was wrapped to by applied deltas, if any applied delta handed
    /// it out.
    pub fn recipients(&self, epoch: KeyEpoch, id: &KeyId) -> Option<&BTreeSet<AuthorKey>> {
        self.key_recipients.get(&(epoch, *id))
    }

    /// The keys applied deltas handed out, with their recipients, by epoch and id.
    pub fn keys_handed_out(&self) -> impl Iterator<Item = (&(KeyEpoch, KeyId), &BTreeSet<AuthorKey>)> {
        self.key_recipients.iter()
    }

    /// The view of a causal past whose maximal deltas hold `parents`' views.
    pub fn merge(&self, parents: &[&SharedView]) -> SharedView {
        let Some((first, rest)) = parents.split_first() else {
            return SharedView::default();
        };
        if rest.iter().all(|view| Arc::ptr_eq(view, first) || view.folded() == first.folded()) {
            return (*first).clone();
        }
        let mut union: Vec<(u64, DeltaId)> = parents.iter().flat_map(|view| view.folded().iter().copied()).collect();
        union.sort_unstable();
        union.dedup();
        if let Some(covering) = parents.iter().find(|view| view.folded() == union.as_slice()) {
            return (*covering).clone();
        }
        Arc::new(self.fold(&union))
    }

    /// Folds the listed membership deltas, in order, from nothing.
    fn fold(&self, ordered: &[(u64, DeltaId)]) -> MembershipView {
        let records: Vec<(&(u64, DeltaId), &Record)> =
            ordered.iter().filter_map(|at| self.records.get(&at.1).map(|record| (at, record))).collect();
        let entries: Vec<Entry<'_>> = records
            .iter()
            .map(|(at, record)| Entry {
                at: **at,
                author: &record.author,
                ops: match &record.effect {
                    Effect::Genesis { .. } => &[],
                    Effect::Change { ops, .. } => ops,
                },
                past: record.view.folded(),
            })
            .collect();
        let standings = contest::standings(&entries);
        let blocked = contest::removed_concurrently(&entries, &standings);
        let mut view = MembershipView::default();
        for (((at, record), standing), blocked) in records.iter().zip(&standings).zip(&blocked) {
            match (&record.effect, standing) {
                (Effect::Genesis { members, keys }, _) => {
                    view = MembershipView::genesis(record.author, members, keys, **at)
                }
                (Effect::Change { ops, rotation, grants }, Standing::Stands) if blocked.is_empty() => {
                    view.apply_change(&record.author, ops, rotation.as_ref(), grants, **at)
                }
                (Effect::Change { ops, rotation, grants }, Standing::Stands) => {
                    let unblocked: Vec<MemberOp> = ops
                        .iter()
                        .filter(|op| !matches!(op, MemberOp::Add(subject, _) if blocked.contains(&subject)))
                        .copied()
                        .collect();
                    view.apply_change(&record.author, &unblocked, rotation.as_ref(), grants, **at)
                }
                (Effect::Change { .. }, Standing::Void) => view.apply_void(**at),
                (Effect::Change { ops, rotation, .. }, Standing::Mutual(targets)) => {
                    // The removals take effect, so the rotation that must come with a removal
                    // does too. A void change's rotation has no effect, like the rest of it.
                    view.apply_mutual(ops, targets, **at);
                    view.raise_epoch(&record.author, rotation.as_ref());
                }
            }
        }
        view
    }

    /// Judges a delta against the view of its causal past (`past`, the merge of its parents'
    /// views) and returns the view after it. Changes nothing: [`Self::record`] does, once
    /// the delta is applied.
    pub fn admit(
        &self,
        context: &ContextId,
        header: Judged<'_>,
        past: &SharedView,
        height: u64,
    ) -> Result<SharedView, RejectReason> {
        match header.kind {
            DeltaKind::Genesis(genesis) => {
                if !header.parents.is_empty() {
                    return Err(RejectReason::BadGenesis);
                }
                if genesis_context_id(header.author, header.hlc, genesis) != *context {
                    return Err(RejectReason::BadGenesis);
                }
                if genesis.keys.epoch != KeyEpoch(0)
                    || !genesis.keys.is_for_exactly(genesis.all_members(header.author).iter())
                {
                    return Err(RejectReason::BadKeyShare);
                }
                let keys = genesis.keys.handout();
                let view = MembershipView::genesis(*header.author, &genesis.members, &keys, (height, *header.id));
                Ok(Arc::new(view))
            }
            _ if header.parents.is_empty() => Err(RejectReason::NoGenesis),
            DeltaKind::App => {
                if !past.contains(header.author) {
                    return Err(RejectReason::NotMember);
                }
                // Sealed under the epoch of its causal past: after a removal's rotation, nothing
                // new is readable with a key the removed member holds. And under a key of that
                // epoch handed to exactly its members: every member can open it (a key given to
                // only some would split the replicas) and nobody else can.
                match header.sealed_key {
                    SealedKey::Of(epoch, key_id) if epoch == past.epoch() => {
                        if past.seals_for_members(&key_id) {
                            Ok(past.clone())
                        } else {
                            Err(RejectReason::KeyNotShared { epoch: epoch.0 })
                        }
                    }
                    SealedKey::Of(epoch, _) => {
                        Err(RejectReason::WrongKeyEpoch { sealed: epoch.0, expected: past.epoch().0 })
                    }
                    SealedKey::NotSealed => Err(RejectReason::Unsealed),
                    SealedKey::NotShown => Ok(past.clone()),
                }
            }
            DeltaKind::Membership(change) => {
                if !past.contains(header.author) {
                    return Err(RejectReason::NotMember);
                }
                if !past.allows_all(header.author, &change.ops) {
                    return Err(RejectReason::NotPermitted);
                }
                let mut view = MembershipView::clone(past);
                let rotation = change.rotation.as_ref().map(KeyShare::handout);
                let grants: Vec<KeyHandout> = change.grants.iter().map(KeyShare::handout).collect();
                // The delta is above every delta of its causal past, so it folds in last.
                view.apply_change(header.author, &change.ops, rotation.as_ref(), &grants, (height, *header.id));
                if let Some(share) = &change.rotation {
                    if past.epoch().next() != Some(share.epoch) {
                        let expected = past.epoch().0.saturating_add(1);
                        return Err(RejectReason::WrongKeyEpoch { sealed: share.epoch.0, expected });
                    }
                    if !share.is_for_exactly(view.members().keys()) {
                        return Err(RejectReason::BadKeyShare);
                    }
                }
                let granted_to_members = |share: &KeyShare| {
                    share.epoch <= view.epoch() && share.recipients().all(|recipient| view.contains(recipient))
                };
                if !change.grants.iter().all(granted_to_members) {
                    return Err(RejectReason::BadKeyShare);
                }
                Ok(Arc::new(view))
            }
        }
    }

    /// Records an applied delta that [`Self::admit`] accepted at `height`, giving it `view`.
    pub fn record(&mut self, header: Judged<'_>, height: u64, view: &SharedView) {
        let effect = match header.kind {
            DeltaKind::App => return,
            DeltaKind::Genesis(genesis) => {
                self.genesis = Some(*header.id);
                self.note_recipients(&genesis.keys);
                Effect::Genesis { members: genesis.members.clone(), keys: genesis.keys.handout() }
            }
            DeltaKind::Membership(change) => {
                for share in change.shares() {
                    self.note_recipients(share);
                }
                Effect::Change {
                    ops: change.ops.clone(),
                    rotation: change.rotation.as_ref().map(KeyShare::handout),
                    grants: change.grants.iter().map(KeyShare::handout).collect(),
                }
            }
        };
        self.ever_members.insert(*header.author);
        match &effect {
            Effect::Genesis { members, .. } => self.ever_members.extend(members.iter().map(|(key, _)| *key)),
            Effect::Change { ops, .. } => self.ever_members.extend(ops.iter().filter_map(|op| match op {
                MemberOp::Add(key, _) => Some(*key),
                MemberOp::Remove(_) => None,
            })),
        }
        let record = Record { author: *header.author, effect, view: view.clone() };
        self.records.insert(*header.id, record);
        let at = (height, *header.id);
        // A delta whose membership past is everything folded so far is concurrent with none of
        // it, so it contests nothing and nothing contests it: its own view is the new fold.
        // Otherwise standings may change anywhere, so everything is folded again.
        let on_top =
            view.folded().split_last().is_some_and(|(last, past)| *last == at && past == self.current.folded());
        self.current = if on_top {
            view.clone()
        } else {
            let mut all = self.current.folded().to_vec();
            let position = all.partition_point(|entry| *entry < at);
            all.insert(position, at);
            Arc::new(self.fold(&all))
        };
    }

    fn note_recipients(&mut self, share: &KeyShare) {
        self.key_recipients.entry((share.epoch, share.key_id)).or_default().extend(share.recipients().copied());
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
