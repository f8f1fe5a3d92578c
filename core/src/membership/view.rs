//! Who belongs to a context at one causal point.
//!
//! The membership at a point is a pure function of the set of membership deltas in its causal
//! past, computed alike by every replica in two steps:
//!
//! 1. **Contest** ([`super::contest`]). A change *takes rights from* key `K` if one of its ops
//!    is `Remove(K)` or `Add(K, Member)`. Change `R` *contests* change `C` if `R` takes rights
//!    from `C`'s author and the two are concurrent (neither is in the other's causal past).
//!    Over the set, a change **stands** if every change contesting it is void (so one nobody
//!    contests stands), and is **void** if some change contesting it stands: the least
//!    fixpoint (the grounded labelling), unique and independent of any order. What is left,
//!    changes that contest each other in a cycle (two admins removing each other), is a
//!    **mutual removal**.
//! 2. **Fold**, in order of (height, id), a linear extension of the DAG. A standing change's ops
//!    take effect only if its author may make them at that moment of the fold (the ops of one
//!    change in order). A void change has no membership effect. Of a change in a mutual
//!    removal, only the ops that take rights from an author of another change of the cycle
//!    that it contests take effect (a removal removes, a demotion demotes a current member),
//!    whatever its author's standing and even if that leaves no admin; its other ops are void.
//!    An `Add` of a key that a removal concurrent with it removes (a standing change's, or a
//!    mutual one's of a key it targets) has no effect: remove wins, whatever the order.
//!
//! Why: a change is admitted if its author had the right in its own causal past, and the
//! (height, id) order is the author's to choose (old parents give a low height, a chain of its
//! own deltas a high one). Without step 1, an admin removed at height 100 could sign a change
//! on parents from height 3, when it was still admin, that removes its remover and folds
//! first. With it, a change by a key that is concurrently removed or demoted has no effect
//! wherever the removal is folded too, so a removed admin cannot undo its removal by choosing
//! parents; a change made on top of the removal is judged normally (its author is no admin
//! there). A backdated counter-removal cannot be told from two admins genuinely removing each
//! other, so both are one rule: both removals take effect. Letting the last-admin guard decide
//! between them would hand the context to whichever the order favours, which the attacker
//! picks, so a mutual removal may leave a context without an admin.
//!
//! An add that would make more than [`MAX_MEMBERS`] members is not allowed (void in the fold,
//! refused when admitted): every replica must fold with the same bound, so it is a protocol
//! constant, not a configured limit.
//!
//! **Keys.** A view also keeps who each key of its epoch was handed to by the deltas it folds
//! (a genesis, a rotation, grants; a void change hands out nothing, a mutual removal only its
//! rotation). An application delta on the view must be sealed under one of them that was
//! handed to exactly the view's members: every member can open it and nobody else can. Up to
//! [`MAX_KEYS_PER_EPOCH`] keys of one epoch are kept, the first ones folded.

use super::{KeyHandout, MemberOp, Role};
use crate::ids::{AuthorKey, DeltaId};
use crate::seal::{KeyEpoch, KeyId};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The most members a context can have. Part of the protocol, not of a node's configuration:
/// it decides which adds take effect in the fold, and every replica must fold alike.
pub const MAX_MEMBERS: usize = 4_096;

/// The most keys of one epoch a view keeps recipients of. Part of the protocol for the same
/// reason as [`MAX_MEMBERS`]: it decides which keys application deltas may be sealed under.
/// Honest nodes make more than one key of an epoch only by rotating concurrently; a member
/// handing out junk keys of the epoch fills it, and writers then rotate to the next epoch.
pub const MAX_KEYS_PER_EPOCH: usize = 64;

/// The member list at one causal point, and the membership deltas it was folded from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipView {
    members: BTreeMap<AuthorKey, Role>,
    /// The highest key epoch any folded delta introduced: application deltas on this view
    /// are sealed under a key of this epoch.
    epoch: KeyEpoch,
    /// Who each key of `epoch` was handed to, by key id (see the module docs).
    epoch_keys: BTreeMap<KeyId, BTreeSet<AuthorKey>>,
    /// How many of `members` are admins, kept so the last-admin check needs no scan.
    admins: usize,
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

    /// Raises the epoch to a rotation by `author` and notes who holds its key (see
    /// [`Self::apply_change`]). A rotation of an older epoch than the view's raises nothing.
    pub(crate) fn raise_epoch(&mut self, author: &AuthorKey, rotation: Option<&KeyHandout>) {
        if let Some(rotation) = rotation {
            if rotation.epoch > self.epoch {
                self.epoch = rotation.epoch;
                self.epoch_keys.clear();
            }
            self.hand_out(author, rotation);
        }
    }

    /// Notes who holds a key of the view's epoch: its recipients, and the author who handed
    /// it out (who made or holds it: a member leaving by its own removal rotates to a key it
    /// knows, which must not count as the remaining members' alone). A key of another epoch
    /// decides nothing here (application deltas are sealed under the view's epoch).
    fn hand_out(&mut self, author: &AuthorKey, handout: &KeyHandout) {
        if handout.epoch != self.epoch {
            return;
        }
        let kept = self.epoch_keys.len();
        let holders = match self.epoch_keys.entry(handout.key_id) {
            Entry::Occupied(holders) => holders.into_mut(),
            Entry::Vacant(slot) if kept < MAX_KEYS_PER_EPOCH => slot.insert(BTreeSet::new()),
            Entry::Vacant(_) => return,
        };
        holders.extend(handout.recipients.iter().copied());
        holders.insert(*author);
    }

    /// True if the key `key_id` of the view's epoch was handed to exactly its members: what an
    /// application delta on this view must be sealed under.
    pub fn seals_for_members(&self, key_id: &KeyId) -> bool {
        self.epoch_keys
            .get(key_id)
            .is_some_and(|holders| holders.len() == self.members.len() && holders.iter().eq(self.members.keys()))
    }

    /// The keys of the view's epoch handed to exactly its members, least id first.
    pub fn member_keys(&self) -> impl Iterator<Item = &KeyId> {
        self.epoch_keys.keys().filter(|key_id| self.seals_for_members(key_id))
    }

    /// True if the key `(epoch, key_id)` was handed to `member` by the deltas this view folds,
    /// as far as the view keeps (keys of its epoch).
    pub fn handed_to(&self, epoch: KeyEpoch, key_id: &KeyId, member: &AuthorKey) -> bool {
        epoch == self.epoch && self.epoch_keys.get(key_id).is_some_and(|holders| holders.contains(member))
    }

    /// The key epoch application deltas on this view are sealed under.
    pub fn epoch(&self) -> KeyEpoch {
        self.epoch
    }

    /// The membership deltas this view folds, by (height, id).
    pub fn folded(&self) -> &[(u64, DeltaId)] {
        &self.folded
    }

    /// The view right after a genesis by `creator` handing out `keys`.
    pub(crate) fn genesis(
        creator: AuthorKey,
        members: &[(AuthorKey, Role)],
        keys: &KeyHandout,
        at: (u64, DeltaId),
    ) -> Self {
        let mut view = Self::default();
        for (key, role) in members {
            view.set_role(*key, Some(*role));
        }
        view.set_role(creator, Some(Role::Admin));
        view.hand_out(&creator, keys);
        view.folded.push(at);
        view
    }

    /// Sets (or with `None` removes) the role of `key`, keeping the admin count.
    fn set_role(&mut self, key: AuthorKey, role: Option<Role>) {
        let old = match role {
            Some(role) => self.members.insert(key, role),
            None => self.members.remove(&key),
        };
        if old == Some(Role::Admin) {
            self.admins -= 1;
        }
        if role == Some(Role::Admin) {
            self.admins += 1;
        }
    }

    /// Whether `author`, as things stand in this view, may apply `op`.
    pub fn allows(&self, author: &AuthorKey, op: &MemberOp) -> bool {
        let admin = self.role(author) == Some(Role::Admin);
        let permitted = match op {
            MemberOp::Add(key, _) => admin && (self.contains(key) || self.members.len() < MAX_MEMBERS),
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
        demotes && self.role(subject) == Some(Role::Admin) && self.admins == 1
    }

    /// Folds one membership change by `author` at `at` in: each op takes effect only if the
    /// author may make it at that point of the fold (the ops of one change in order). A
    /// rotation raises the epoch whatever its ops did: its key exists and was handed out, as
    /// were the grants.
    pub(crate) fn apply_change(
        &mut self,
        author: &AuthorKey,
        ops: &[MemberOp],
        rotation: Option<&KeyHandout>,
        grants: &[KeyHandout],
        at: (u64, DeltaId),
    ) {
        self.raise_epoch(author, rotation);
        for grant in grants {
            self.hand_out(author, grant);
        }
        for op in ops {
            if !self.allows(author, op) {
                continue;
            }
            match *op {
                MemberOp::Add(key, role) => self.set_role(key, Some(role)),
                MemberOp::Remove(key) => self.set_role(key, None),
            }
        }
        self.list(at);
    }

    /// Lists `at` among the folded deltas, in order.
    fn list(&mut self, at: (u64, DeltaId)) {
        let position = self.folded.partition_point(|entry| *entry < at);
        self.folded.insert(position, at);
    }

    /// Folds in a void change (see the module docs): listed, with no membership effect. The
    /// DAG still holds it, and the views of other sets (without the change voiding it) may
    /// give it effect.
    pub(crate) fn apply_void(&mut self, at: (u64, DeltaId)) {
        self.list(at);
    }

    /// Folds in a change of a mutual removal (see the module docs): of `ops`, only those that
    /// take rights from a key in `targets` take effect, whatever the author's standing here
    /// and even if they leave no admin (the change was admitted, so its author had the right
    /// in its causal past; only the cycle it is part of took it away). A demotion only demotes
    /// a current member: it never adds one.
    pub(crate) fn apply_mutual(&mut self, ops: &[MemberOp], targets: &[AuthorKey], at: (u64, DeltaId)) {
        for op in ops {
            if !targets.contains(op.subject()) {
                continue;
            }
            match *op {
                MemberOp::Remove(key) => self.set_role(key, None),
                MemberOp::Add(key, role) if role != Role::Admin && self.contains(&key) => {
                    self.set_role(key, Some(role))
                }
                MemberOp::Add(..) => {}
            }
        }
        self.list(at);
    }

    /// How many admins.
    pub fn admin_count(&self) -> usize {
        self.admins
    }

    /// Whether every op of a change by `author` is allowed, taken in order from this view:
    /// the check a membership delta must pass against its own causal past to be accepted.
    pub fn allows_all(&self, author: &AuthorKey, ops: &[MemberOp]) -> bool {
        let mut trial = self.clone();
        for op in ops {
            if !trial.allows(author, op) {
                return false;
            }
            trial.apply_change(author, std::slice::from_ref(op), None, &[], (u64::MAX, DeltaId::default()));
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

    fn handout(epoch: u32, id: u8, recipients: &[u8]) -> KeyHandout {
        KeyHandout {
            epoch: KeyEpoch(epoch),
            key_id: KeyId([id; 16]),
            recipients: recipients.iter().map(|n| key(*n)).collect(),
        }
    }

    fn genesis(creator: u8, members: &[(u8, Role)]) -> MembershipView {
        let members: Vec<(AuthorKey, Role)> = members.iter().map(|(n, role)| (key(*n), *role)).collect();
        let mut all: Vec<u8> = members.iter().map(|(k, _)| k.as_bytes()[0]).collect();
        all.push(creator);
        all.sort_unstable();
        MembershipView::genesis(key(creator), &members, &handout(0, 0, &all), at(1))
    }

    #[test]
    fn the_creator_is_the_first_admin() {
        let view = genesis(1, &[(2, Role::Member)]);
        assert_eq!(view.role(&key(1)), Some(Role::Admin));
        assert_eq!(view.role(&key(2)), Some(Role::Member));
        assert!(!view.contains(&key(3)));
    }

    #[test]
    fn only_admins_add_and_remove_others_but_anyone_may_leave() {
        let view = genesis(1, &[(2, Role::Member), (3, Role::Member)]);
        assert!(view.allows(&key(1), &MemberOp::Add(key(4), Role::Member)));
        assert!(!view.allows(&key(2), &MemberOp::Add(key(4), Role::Member)));
        assert!(!view.allows(&key(2), &MemberOp::Remove(key(3))));
        assert!(view.allows(&key(2), &MemberOp::Remove(key(2))));
        assert!(!view.allows(&key(4), &MemberOp::Remove(key(4))), "a non-member has nothing to leave");
    }

    #[test]
    fn the_last_admin_cannot_go() {
        let view = genesis(1, &[(2, Role::Member)]);
        assert!(!view.allows(&key(1), &MemberOp::Remove(key(1))));
        assert!(!view.allows(&key(1), &MemberOp::Add(key(1), Role::Member)));
        let mut two = view.clone();
        two.apply_change(&key(1), &[MemberOp::Add(key(2), Role::Admin)], None, &[], at(2));
        assert!(two.allows(&key(1), &MemberOp::Remove(key(1))));
    }

    #[test]
    fn an_op_its_author_may_not_make_has_no_effect_in_the_fold() {
        let mut view = genesis(1, &[(2, Role::Admin)]);
        // 2's change folds after 2 lost the right, so it has no effect. (Had the two changes
        // been concurrent, the contest step would have made them a mutual removal first.)
        view.apply_change(&key(1), &[MemberOp::Remove(key(2))], None, &[], at(2));
        view.apply_change(&key(2), &[MemberOp::Remove(key(1))], None, &[], at(3));
        assert_eq!(view.role(&key(1)), Some(Role::Admin));
        assert!(!view.contains(&key(2)));
        assert_eq!(view.folded(), &[at(1), at(2), at(3)]);
    }

    #[test]
    fn allows_all_takes_the_ops_in_order() {
        let view = genesis(1, &[]);
        assert!(view.allows_all(&key(1), &[MemberOp::Add(key(2), Role::Admin), MemberOp::Remove(key(1))]));
        assert!(!view.allows_all(&key(1), &[MemberOp::Remove(key(1)), MemberOp::Add(key(2), Role::Admin)]));
    }

    #[test]
    fn only_a_key_of_the_epoch_handed_to_exactly_the_members_seals_for_them() {
        let mut view = genesis(1, &[(2, Role::Member)]);
        let genesis_key = KeyId([0; 16]);
        assert!(view.seals_for_members(&genesis_key));
        // A key of the epoch handed to only some members does not.
        view.apply_change(&key(2), &[], None, &[handout(0, 9, &[2])], at(2));
        assert!(!view.seals_for_members(&KeyId([9; 16])));
        assert_eq!(view.member_keys().collect::<Vec<_>>(), vec![&genesis_key]);
        // An add without a grant: the genesis key no longer covers the members; a grant heals it.
        view.apply_change(&key(1), &[MemberOp::Add(key(3), Role::Member)], None, &[], at(3));
        assert!(!view.seals_for_members(&genesis_key));
        view.apply_change(&key(1), &[], None, &[handout(0, 0, &[3])], at(4));
        assert!(view.seals_for_members(&genesis_key));
        assert!(view.handed_to(KeyEpoch(0), &genesis_key, &key(3)));
        // A rotation starts the next epoch with only its own key.
        view.apply_change(&key(1), &[MemberOp::Remove(key(3))], Some(&handout(1, 5, &[1, 2])), &[], at(5));
        assert_eq!(view.epoch(), KeyEpoch(1));
        assert!(!view.seals_for_members(&genesis_key));
        assert!(view.seals_for_members(&KeyId([5; 16])));
        // Grants of an older epoch are not this epoch's keys.
        view.apply_change(&key(1), &[], None, &[handout(0, 7, &[1, 2])], at(6));
        assert!(!view.seals_for_members(&KeyId([7; 16])));
    }

    #[test]
    fn a_key_made_by_a_member_who_leaves_does_not_seal_for_those_who_stay() {
        let mut view = genesis(1, &[(2, Role::Member), (3, Role::Member)]);
        // 3 leaves, rotating to a key wrapped to 1 and 2: 3 made it, so it is not theirs alone.
        view.apply_change(&key(3), &[MemberOp::Remove(key(3))], Some(&handout(1, 5, &[1, 2])), &[], at(2));
        assert!(!view.contains(&key(3)));
        assert!(!view.seals_for_members(&KeyId([5; 16])));
        assert_eq!(view.member_keys().count(), 0, "the next writer rotates");
        view.apply_change(&key(1), &[], Some(&handout(2, 6, &[1, 2])), &[], at(3));
        assert!(view.seals_for_members(&KeyId([6; 16])));
    }

    #[test]
    fn at_most_max_keys_per_epoch_keys_of_one_epoch_are_kept() {
        let mut view = genesis(1, &[]);
        for id in 1..=MAX_KEYS_PER_EPOCH as u8 {
            view.apply_change(&key(1), &[], None, &[handout(0, id, &[1])], at(1 + u64::from(id)));
        }
        assert_eq!(view.member_keys().count(), MAX_KEYS_PER_EPOCH, "the genesis key and the first ones");
        assert!(!view.seals_for_members(&KeyId([MAX_KEYS_PER_EPOCH as u8; 16])));
    }
}
