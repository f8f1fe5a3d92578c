//! The ledger's folds against concurrent membership changes: the contest rule (see the
//! [`super::super::view`] module docs), the member cap, and that every replica folds alike.

use super::*;
use crate::membership::{Genesis, MembershipChange, MAX_MEMBERS};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn key(n: u8) -> AuthorKey {
    AuthorKey::from_bytes([n; 32])
}

/// One delta as the DAG would hold it, with the height it gets.
#[derive(Debug, Clone)]
struct Made {
    id: DeltaId,
    author: AuthorKey,
    parents: Vec<DeltaId>,
    hlc: Hlc,
    kind: DeltaKind,
    height: u64,
}

impl Made {
    fn judged(&self) -> Judged<'_> {
        // Payload epochs are the DAG's concern (`node/tests/sealing.rs`), not the fold's.
        let sealed_key = super::SealedKey::NotShown;
        Judged {
            id: &self.id,
            author: &self.author,
            parents: &self.parents,
            hlc: &self.hlc,
            kind: &self.kind,
            sealed_key,
        }
    }
}

/// One replica's ledger and the view of every delta it applied.
struct Replica {
    context: ContextId,
    ledger: MembershipLedger,
    views: BTreeMap<DeltaId, SharedView>,
}

impl Replica {
    fn new(context: ContextId) -> Self {
        Self { context, ledger: MembershipLedger::default(), views: BTreeMap::new() }
    }

    /// Admits and records `made` as the DAG does.
    fn apply(&mut self, made: &Made) -> Result<SharedView, RejectReason> {
        let parents: Vec<&SharedView> = made.parents.iter().map(|parent| &self.views[parent]).collect();
        let past = self.ledger.merge(&parents);
        let view = self.ledger.admit(&self.context, made.judged(), &past, made.height)?;
        self.ledger.record(made.judged(), made.height, &view);
        self.views.insert(made.id, view.clone());
        Ok(view)
    }

    /// The view of a causal past whose heads are `heads`.
    fn view_at(&self, heads: &[DeltaId]) -> SharedView {
        let views: Vec<&SharedView> = heads.iter().map(|head| &self.views[head]).collect();
        self.ledger.merge(&views)
    }
}

/// Makes deltas over one genesis and applies them to a first replica as they are made.
struct Builder {
    made: Vec<Made>,
    heights: BTreeMap<DeltaId, u64>,
    replica: Replica,
}

impl Builder {
    /// A context created by key 1, with `members` besides it.
    fn new(members: Vec<(AuthorKey, Role)>) -> Self {
        // Admission checks a genesis's recipients, never its wraps' cryptography: stand-ins do.
        let mut recipients: Vec<AuthorKey> = members.iter().map(|(member, _)| *member).chain([key(1)]).collect();
        recipients.sort_unstable();
        recipients.dedup();
        let wraps = recipients
            .into_iter()
            .map(|recipient| crate::seal::WrappedKey {
                recipient,
                epoch: crate::seal::KeyEpoch(0),
                nonce: [0; 24],
                ciphertext: [0; 48],
            })
            .collect();
        let keys = super::KeyShare { epoch: crate::seal::KeyEpoch(0), key_id: crate::seal::KeyId::default(), wraps };
        let genesis = Genesis { nonce: [7; 32], members, keys };
        let context = genesis_context_id(&key(1), &Hlc::default(), &genesis);
        let made = Made {
            id: DeltaId::hash_of(b"genesis"),
            author: key(1),
            parents: Vec::new(),
            hlc: Hlc::default(),
            kind: DeltaKind::Genesis(genesis),
            height: 1,
        };
        let mut builder = Self { made: Vec::new(), heights: BTreeMap::new(), replica: Replica::new(context) };
        builder.push(made).expect("the genesis is admitted");
        builder
    }

    fn genesis(&self) -> DeltaId {
        self.made[0].id
    }

    fn push(&mut self, made: Made) -> Result<DeltaId, RejectReason> {
        self.replica.apply(&made)?;
        self.heights.insert(made.id, made.height);
        let id = made.id;
        self.made.push(made);
        Ok(id)
    }

    fn make(&mut self, author: u8, parents: &[DeltaId], kind: DeltaKind) -> Result<DeltaId, RejectReason> {
        let mut parents = parents.to_vec();
        parents.sort_unstable();
        parents.dedup();
        let height = 1 + parents.iter().map(|parent| self.heights[parent]).max().unwrap_or(0);
        let id = DeltaId::hash_of(&(self.made.len() as u64).to_le_bytes());
        self.push(Made { id, author: key(author), parents, hlc: Hlc::default(), kind, height })
    }

    fn change(&mut self, author: u8, parents: &[DeltaId], ops: Vec<MemberOp>) -> Result<DeltaId, RejectReason> {
        self.make(author, parents, DeltaKind::Membership(MembershipChange { ops, ..Default::default() }))
    }

    /// A chain of `length` application deltas by `author` on `from`: it raises the height.
    fn chain(&mut self, author: u8, from: DeltaId, length: usize) -> DeltaId {
        (0..length).fold(from, |tip, _| self.make(author, &[tip], DeltaKind::App).expect("a member writes"))
    }

    /// A fresh replica that applies the same deltas in `order` (indices into what was made).
    fn replay(&self, order: impl IntoIterator<Item = usize>) -> Replica {
        let mut replica = Replica::new(self.replica.context);
        for index in order {
            let view = replica.apply(&self.made[index]).expect("what one replica admits, every replica does");
            assert_eq!(view, self.replica.views[&self.made[index].id], "a delta's view depends on its past alone");
        }
        replica
    }

    /// Replicas that applied every delta in generation order and in the order the delta ids
    /// in `late` come last (each must have no children).
    fn both_orders(&self, late: &[DeltaId]) -> [Replica; 2] {
        let early = (0..self.made.len()).filter(|index| !late.contains(&self.made[*index].id));
        let last = late.iter().map(|id| self.made.iter().position(|made| made.id == *id).unwrap());
        [self.replay(0..self.made.len()), self.replay(early.chain(last.rev()))]
    }
}

fn remove(n: u8) -> MemberOp {
    MemberOp::Remove(key(n))
}

fn add(n: u8, role: Role) -> MemberOp {
    MemberOp::Add(key(n), role)
}

/// Asserts that every replica's members at its heads, and the merge of `heads`, are `check`ed.
fn everywhere(replicas: &[Replica], heads: &[DeltaId], check: impl Fn(&MembershipView)) {
    for replica in replicas {
        check(replica.ledger.current());
        check(&replica.view_at(heads));
    }
    assert_eq!(replicas[0].ledger.current(), replicas[1].ledger.current());
}

/// The attack: admin 1 removes admin 2 at height 100; 2 then signs a change on the genesis,
/// when it was still admin, which is admitted everywhere and folds first.
#[test]
fn a_backdated_change_by_a_removed_admin_is_void() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Member)]);
    let genesis = dag.genesis();
    let tip = dag.chain(3, genesis, 98);
    let removal = dag.change(1, &[tip], vec![remove(2)]).unwrap();
    assert_eq!(dag.heights[&removal], 100);
    let backdated = dag.change(2, &[genesis], vec![add(4, Role::Admin), remove(3)]).expect("2 was admin there");
    // What 4 does on the backdated change is judged normally: 4 is no admin in the fold.
    let by_four = dag.change(4, &[backdated], vec![add(5, Role::Member)]).expect("4 was admin there");
    let replicas = dag.both_orders(&[by_four, backdated]);
    everywhere(&replicas, &[removal, by_four], |view| {
        assert_eq!(view.role(&key(1)), Some(Role::Admin));
        assert!(!view.contains(&key(2)), "2 stays removed");
        assert!(view.contains(&key(3)));
        assert!(!view.contains(&key(4)) && !view.contains(&key(5)));
    });
    // On top of both, 2 is no member and its change counts for nothing.
    let refused = dag.change(2, &[removal, by_four], vec![add(6, Role::Member)]);
    assert_eq!(refused, Err(RejectReason::NotMember));
}

#[test]
fn a_backdated_change_by_a_demoted_admin_is_void() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin)]);
    let genesis = dag.genesis();
    let tip = dag.chain(1, genesis, 10);
    let demotion = dag.change(1, &[tip], vec![add(2, Role::Member)]).unwrap();
    let backdated = dag.change(2, &[genesis], vec![add(4, Role::Admin), add(2, Role::Admin)]).unwrap();
    let replicas = dag.both_orders(&[backdated]);
    everywhere(&replicas, &[demotion, backdated], |view| {
        assert_eq!(view.role(&key(2)), Some(Role::Member));
        assert!(!view.contains(&key(4)));
    });
}

/// A void change contests nothing: a removed admin cannot void an innocent admin's changes by
/// backdating a removal of it.
#[test]
fn a_removed_admin_cannot_void_others_changes_by_backdating_their_removal() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Admin)]);
    let genesis = dag.genesis();
    let removal = dag.change(1, &[genesis], vec![remove(2)]).unwrap();
    let by_three = dag.change(3, &[removal], vec![add(4, Role::Member)]).unwrap();
    let backdated = dag.change(2, &[genesis], vec![remove(3)]).unwrap();
    let replicas = dag.both_orders(&[backdated]);
    everywhere(&replicas, &[by_three, backdated], |view| {
        assert!(!view.contains(&key(2)));
        assert_eq!(view.role(&key(3)), Some(Role::Admin));
        assert!(view.contains(&key(4)));
    });
}

#[test]
fn two_admins_adding_different_members_concurrently_both_take_effect() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin)]);
    let genesis = dag.genesis();
    let one = dag.change(1, &[genesis], vec![add(4, Role::Member)]).unwrap();
    let two = dag.change(2, &[genesis], vec![add(5, Role::Admin)]).unwrap();
    let replicas = dag.both_orders(&[one]);
    everywhere(&replicas, &[one, two], |view| {
        assert_eq!(view.role(&key(4)), Some(Role::Member));
        assert_eq!(view.role(&key(5)), Some(Role::Admin));
    });
}

/// Two admins remove each other concurrently: both removals take effect, and nothing else
/// either change does.
#[test]
fn a_mutual_removal_removes_both() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Admin)]);
    let genesis = dag.genesis();
    let one = dag.change(1, &[genesis], vec![remove(2), add(4, Role::Member)]).unwrap();
    let tip = dag.chain(2, genesis, 5);
    let two = dag.change(2, &[tip], vec![add(5, Role::Member), remove(1)]).unwrap();
    let replicas = dag.both_orders(&[one]);
    everywhere(&replicas, &[one, two], |view| {
        assert!(!view.contains(&key(1)) && !view.contains(&key(2)));
        assert!(!view.contains(&key(4)) && !view.contains(&key(5)));
        assert_eq!(view.role(&key(3)), Some(Role::Admin));
    });
}

/// The last-admin guard does not pick a winner: whichever the (height, id) order favoured,
/// both sides of the attack choose it.
#[test]
fn a_mutual_removal_of_the_last_two_admins_leaves_no_admin() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Member)]);
    let genesis = dag.genesis();
    let tip = dag.chain(3, genesis, 20);
    let removal = dag.change(1, &[tip], vec![remove(2)]).unwrap();
    let backdated = dag.change(2, &[genesis], vec![remove(1)]).unwrap();
    let replicas = dag.both_orders(&[backdated]);
    everywhere(&replicas, &[removal, backdated], |view| {
        assert!(!view.contains(&key(1)) && !view.contains(&key(2)), "2 never regains what 1 took");
        assert_eq!(view.role(&key(3)), Some(Role::Member));
        assert_eq!(view.admin_count(), 0);
    });
    let refused = dag.change(3, &[removal, backdated], vec![add(4, Role::Member)]);
    assert_eq!(refused, Err(RejectReason::NotPermitted));
}

/// Demotions contest like removals, and a demotion in a mutual removal never re-adds.
#[test]
fn a_mutual_demotion_demotes_both() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Admin)]);
    let genesis = dag.genesis();
    let one = dag.change(1, &[genesis], vec![add(2, Role::Member)]).unwrap();
    let two = dag.change(2, &[genesis], vec![add(1, Role::Member)]).unwrap();
    let replicas = dag.both_orders(&[one]);
    everywhere(&replicas, &[one, two], |view| {
        assert_eq!(view.role(&key(1)), Some(Role::Member));
        assert_eq!(view.role(&key(2)), Some(Role::Member));
        assert_eq!(view.admin_count(), 1);
    });
}

#[test]
fn an_add_past_the_member_cap_is_void_in_the_fold() {
    // Key 1 and MAX_MEMBERS - 2 others: room for one more.
    let members: Vec<(AuthorKey, Role)> = (0..MAX_MEMBERS - 2)
        .map(|n| {
            let mut bytes = [0xee; 32];
            bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
            (AuthorKey::from_bytes(bytes), if n == 0 { Role::Admin } else { Role::Member })
        })
        .collect();
    let other_admin = members[0].0;
    let mut dag = Builder::new(members);
    assert_eq!(dag.replica.ledger.current().len(), MAX_MEMBERS - 1);
    let genesis = dag.genesis();
    let one = dag.change(1, &[genesis], vec![add(4, Role::Member)]).unwrap();
    let two = Made {
        id: DeltaId::hash_of(b"two"),
        author: other_admin,
        parents: vec![genesis],
        hlc: Hlc::default(),
        kind: DeltaKind::Membership(MembershipChange { ops: vec![add(5, Role::Member)], ..Default::default() }),
        height: 2,
    };
    let two = dag.push(two).unwrap();
    let replicas = dag.both_orders(&[one]);
    let first = dag.made.iter().filter(|made| made.height == 2).map(|made| made.id).min().unwrap();
    everywhere(&replicas, &[one, two], |view| {
        assert_eq!(view.len(), MAX_MEMBERS);
        assert_eq!(view.contains(&key(4)), first == one, "the first add in the order fills the last place");
        assert_eq!(view.contains(&key(5)), first == two);
    });
    // At the cap, a role change still may be made, an add not.
    assert!(dag.change(1, &[one, two], vec![add(3, Role::Member)]).is_err());
    dag.change(1, &[one, two], vec![MemberOp::Add(other_admin, Role::Member)]).unwrap();
}

/// One generated delta: author, parents as indices of earlier deltas, and ops (none for an
/// application delta).
type Step = (u8, Vec<prop::sample::Index>, Vec<(u8, u8, bool)>);

fn step() -> impl Strategy<Value = Step> {
    (
        1u8..=5,
        prop::collection::vec(any::<prop::sample::Index>(), 1..=3),
        prop::collection::vec((0u8..3, 1u8..=5, any::<bool>()), 0..=2),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random DAGs of membership changes (old parents too, so removals, backdated changes and
    /// mutual removals meet): any replica that applies the same deltas, in any causal order,
    /// admits the same ones with the same views and ends with the same members; the members
    /// at the heads are the fold of everything; the admin count and the cap hold.
    #[test]
    fn every_delivery_order_folds_alike(steps in prop::collection::vec(step(), 1..24), seed in any::<u64>()) {
        let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Member)]);
        for (author, parents, ops) in steps {
            let parents: Vec<DeltaId> = parents.iter().map(|index| dag.made[index.index(dag.made.len())].id).collect();
            let kind = if ops.is_empty() {
                DeltaKind::App
            } else {
                let ops = ops.iter().map(|(kind, subject, admin)| match kind {
                    0 => remove(*subject),
                    _ => add(*subject, if *admin { Role::Admin } else { Role::Member }),
                });
                DeltaKind::Membership(MembershipChange { ops: ops.collect(), ..Default::default() })
            };
            let _ = dag.make(author, &parents, kind);
        }
        // A random causal order: repeatedly take a pseudo-random delta whose parents are in.
        let mut state = seed | 1;
        let mut done = vec![false; dag.made.len()];
        let mut order = Vec::new();
        while order.len() < dag.made.len() {
            let ready: Vec<usize> = (0..dag.made.len())
                .filter(|index| !done[*index])
                .filter(|index| dag.made[*index].parents.iter().all(|parent| order.iter().any(|o: &usize| dag.made[*o].id == *parent)))
                .collect();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let next = ready[(state % ready.len() as u64) as usize];
            done[next] = true;
            order.push(next);
        }
        let replica = dag.replay(order);
        prop_assert_eq!(replica.ledger.current(), dag.replica.ledger.current());
        let all: Vec<DeltaId> = dag.made.iter().map(|made| made.id).collect();
        prop_assert_eq!(&replica.view_at(&all), replica.ledger.current());
        for view in dag.replica.views.values() {
            let admins = view.members().values().filter(|role| **role == Role::Admin).count();
            prop_assert_eq!(view.admin_count(), admins);
            prop_assert!(view.len() <= MAX_MEMBERS);
        }
    }
}

/// Admin 1 removes member 3 while admin 2, concurrently, adds it (as admin) on a higher branch,
/// so the add folds later. Remove wins: 3 is out on every replica, in every order, and a later
/// add on top of the removal brings it back.
#[test]
fn an_add_concurrent_with_a_removal_of_the_same_key_does_not_undo_it() {
    let mut dag = Builder::new(vec![(key(2), Role::Admin), (key(3), Role::Member)]);
    let genesis = dag.genesis();
    let removal = dag.change(1, &[genesis], vec![remove(3)]).unwrap();
    let tip = dag.chain(2, genesis, 5);
    let stale_add = dag.change(2, &[tip], vec![add(3, Role::Admin), add(4, Role::Member)]).unwrap();
    assert!(dag.heights[&stale_add] > dag.heights[&removal], "the add folds after the removal");
    let replicas = dag.both_orders(&[removal]);
    everywhere(&replicas, &[removal, stale_add], |view| {
        assert!(!view.contains(&key(3)), "the removal stands");
        assert_eq!(view.role(&key(4)), Some(Role::Member), "the change's other ops take effect");
    });
    let readd = dag.change(2, &[removal, stale_add], vec![add(3, Role::Member)]).unwrap();
    assert_eq!(dag.replica.view_at(&[readd]).role(&key(3)), Some(Role::Member));
}
