//! Who belongs to a context at one causal point.
//!
//! The membership at a point is a pure function of the membership deltas in its causal past:
//! they are folded in order of (height, id), a linear extension of the DAG that every replica
//! computes alike, and each op takes effect only if its author holds the right to it at that
//! moment of the fold. So two replicas that applied the same deltas see the same members, and
//! of two concurrent changes that conflict (two admins removing each other) the one earlier in
//! the order wins and the other has no effect.

use super::{MemberOp, Role};
use crate::ids::{AuthorKey, DeltaId};
use crate::seal::KeyEpoch;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The member list at one causal point, and the membership deltas it was folded from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipView {
    members: BTreeMap<AuthorKey, Role>,
    /// The highest key epoch any folded delta introduced: application deltas on this view
    /// are sealed under a key of this epoch.
    epoch: KeyEpoch,
    /// The membership deltas folded in, by (height, id).
    folded: Vec<(u64, DeltaId)>,
}

/// A view shared between the many deltas that have it.
pub type SharedView = Arc<MembershipView>;

impl MembershipView {
    /// The role of `key`, if it is a member.
    pub fn role(&self, key: &AuthorKey) -> Option<Role> {
        self.members.get(key).copied()
    }

    /// True if `key` is a member.
    pub fn contains(&self, key: &AuthorKey) -> bool {
        self.members.contains_key(key)
    }

    /// Members and their roles, by key.
    pub fn members(&self) -> &BTreeMap<AuthorKey, Role> {
        &self.members
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True before the genesis.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The key epoch application deltas on this view are sealed under.
    pub fn epoch(&self) -> KeyEpoch {
        self.epoch
    }

    /// The membership deltas this view folds, by (height, id).
    pub fn folded(&self) -> &[(u64, DeltaId)] {
        &self.folded
    }

    /// The view right after a genesis by `creator`.
    pub(crate) fn genesis(creator: AuthorKey, members: &[(AuthorKey, Role)], at: (u64, DeltaId)) -> Self {
        let mut view = Self::default();
        view.members.extend(members.iter().copied());
        view.members.insert(creator, Role::Admin);
        view.folded.push(at);
        view
    }

    /// Whether `author`, as things stand in this view, may apply `op`.
    pub fn allows(&self, author: &AuthorKey, op: &MemberOp) -> bool {
        let admin = self.role(author) == Some(Role::Admin);
        let permitted = match op {
            MemberOp::Add(..) => admin,
            MemberOp::Remove(subject) => admin || (subject == author && self.contains(author)),
        };
        permitted && !self.leaves_no_admin(op)
    }

    /// True if `op` would leave the context without an admin, which nobody could repair.
    fn leaves_no_admin(&self, op: &MemberOp) -> bool {
        let subject = op.subject();
        let demotes = match op {
            MemberOp::Add(_, role) => *role != Role::Admin,
            MemberOp::Remove(_) => true,
        };
        demotes
            && self.role(subject) == Some(Role::Admin)
            && self.members.values().filter(|role| **role == Role::Admin).count() == 1
    }

    /// Folds one membership change by `author` at `at` in: each op takes effect only if the
    /// author may make it at that point of the fold (the ops of one change in order). A
    /// rotation raises the epoch whatever its ops did: its key exists and was handed out.
    pub(crate) fn apply_change(
        &mut self,
        author: &AuthorKey,
        ops: &[MemberOp],
        rotation: Option<KeyEpoch>,
        at: (u64, DeltaId),
    ) {
        if let Some(epoch) = rotation {
            self.epoch = self.epoch.max(epoch);
        }
        for op in ops {
            if !self.allows(author, op) {
                continue;
            }
            match *op {
                MemberOp::Add(key, role) => {
                    self.members.insert(key, role);
                }
                MemberOp::Remove(key) => {
                    self.members.remove(&key);
                }
            }
        }
        let position = self.folded.partition_point(|entry| *entry < at);
        self.folded.insert(position, at);
    }

    /// Whether every op of a change by `author` is allowed, taken in order from this view:
    /// the check a membership delta must pass against its own causal past to be accepted.
    pub fn allows_all(&self, author: &AuthorKey, ops: &[MemberOp]) -> bool {
        let mut trial = self.clone();
        for op in ops {
            if !trial.allows(author, op) {
                return false;
            }
            trial.apply_change(author, std::slice::from_ref(op), None, (u64::MAX, DeltaId::default()));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> AuthorKey {
        AuthorKey::from_bytes([n; 32])
    }

    fn at(height: u64) -> (u64, DeltaId) {
        (height, DeltaId::from_bytes([height as u8; 32]))
    }

    #[test]
    fn the_creator_is_the_first_admin() {
        let view = MembershipView::genesis(key(1), &[(key(2), Role::Member)], at(1));
        assert_eq!(view.role(&key(1)), Some(Role::Admin));
        assert_eq!(view.role(&key(2)), Some(Role::Member));
        assert!(!view.contains(&key(3)));
    }

    #[test]
    fn only_admins_add_and_remove_others_but_anyone_may_leave() {
        let view = MembershipView::genesis(key(1), &[(key(2), Role::Member), (key(3), Role::Member)], at(1));
        assert!(view.allows(&key(1), &MemberOp::Add(key(4), Role::Member)));
        assert!(!view.allows(&key(2), &MemberOp::Add(key(4), Role::Member)));
        assert!(!view.allows(&key(2), &MemberOp::Remove(key(3))));
        assert!(view.allows(&key(2), &MemberOp::Remove(key(2))));
        assert!(!view.allows(&key(4), &MemberOp::Remove(key(4))), "a non-member has nothing to leave");
    }

    #[test]
    fn the_last_admin_cannot_go() {
        let view = MembershipView::genesis(key(1), &[(key(2), Role::Member)], at(1));
        assert!(!view.allows(&key(1), &MemberOp::Remove(key(1))));
        assert!(!view.allows(&key(1), &MemberOp::Add(key(1), Role::Member)));
        let mut two = view.clone();
        two.apply_change(&key(1), &[MemberOp::Add(key(2), Role::Admin)], None, at(2));
        assert!(two.allows(&key(1), &MemberOp::Remove(key(1))));
    }

    #[test]
    fn an_op_its_author_may_not_make_has_no_effect_in_the_fold() {
        let mut view = MembershipView::genesis(key(1), &[(key(2), Role::Admin)], at(1));
        // Two admins remove each other concurrently: the first in the order wins.
        view.apply_change(&key(1), &[MemberOp::Remove(key(2))], None, at(2));
        view.apply_change(&key(2), &[MemberOp::Remove(key(1))], None, at(3));
        assert_eq!(view.role(&key(1)), Some(Role::Admin));
        assert!(!view.contains(&key(2)));
        assert_eq!(view.folded(), &[at(1), at(2), at(3)]);
    }

    #[test]
    fn allows_all_takes_the_ops_in_order() {
        let view = MembershipView::genesis(key(1), &[], at(1));
        assert!(view.allows_all(&key(1), &[MemberOp::Add(key(2), Role::Admin), MemberOp::Remove(key(1))]));
        assert!(!view.allows_all(&key(1), &[MemberOp::Remove(key(1)), MemberOp::Add(key(2), Role::Admin)]));
    }
}
