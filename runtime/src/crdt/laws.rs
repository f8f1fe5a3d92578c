//! The CRDT laws, checked by property: join is commutative, associative and idempotent for
//! every slot type, and applying the same actions in any order gives the same store and root.

use super::*;
use crate::merge::apply_action;
use crate::path::Path;
use crate::payload::Action;
use crate::state::{MemoryBackend, StateStore, Txn};
use proptest::prelude::*;
use rhizome_core::{AuthorKey, Hlc};
use std::collections::{BTreeMap, BTreeSet};

fn stamp_strategy() -> impl Strategy<Value = Stamp> {
    (0u64..4, 0u32..3, 0u8..3, 0u32..3).prop_map(|(physical_ms, logical, author, index)| Stamp {
        hlc: Hlc { physical_ms, logical, node: u64::from(author) },
        author: AuthorKey::from_bytes([author; 32]),
        index,
    })
}

fn register_strategy() -> impl Strategy<Value = LwwRegister> {
    (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)), stamp_strategy())
        .prop_map(|(value, stamp)| LwwRegister { value, stamp })
}

fn counter_strategy() -> impl Strategy<Value = PnCounter> {
    (proptest::collection::btree_map(0u8..3, (0u64..5, 0u64..5), 0..3), stamp_strategy()).prop_map(|(totals, stamp)| {
        let totals = totals.into_iter().map(|(author, pair)| (AuthorKey::from_bytes([author; 32]), pair)).collect();
        PnCounter { totals, stamp }
    })
}

fn set_strategy() -> impl Strategy<Value = AwSet> {
    (
        proptest::collection::btree_map(0u8..3, proptest::collection::btree_set(stamp_strategy(), 0..3), 0..3),
        proptest::collection::btree_set(stamp_strategy(), 0..3),
        stamp_strategy(),
    )
        .prop_map(|(adds, removed, stamp)| {
            let adds: BTreeMap<Vec<u8>, BTreeSet<Stamp>> = adds.into_iter().map(|(e, tags)| (vec![e], tags)).collect();
            AwSet { adds, removed, stamp }
        })
}

fn list_strategy() -> impl Strategy<Value = RgaList> {
    (
        proptest::collection::btree_map(stamp_strategy(), (proptest::option::of(stamp_strategy()), 0u8..3), 0..4),
        proptest::collection::btree_set(stamp_strategy(), 0..3),
        stamp_strategy(),
    )
        .prop_map(|(nodes, removed, stamp)| {
            let nodes =
                nodes.into_iter().map(|(id, (after, value))| (id, ListNode { after, value: vec![value] })).collect();
            RgaList { nodes, removed, stamp }
        })
}

/// Registers with equal stamps but different values are generated on purpose: a faulty or
/// hostile author can reuse a stamp, and the join must still be order-independent.
fn slot_strategy() -> impl Strategy<Value = Slot> {
    (
        proptest::option::of(register_strategy()),
        proptest::option::of(counter_strategy()),
        proptest::option::of(set_strategy()),
        proptest::option::of(list_strategy()),
    )
        .prop_map(|(register, counter, set, list)| Slot { register, counter, set, list })
}

fn joined(a: &Slot, b: &Slot) -> Slot {
    let mut out = a.clone();
    out.join(b);
    out
}

fn action_strategy() -> impl Strategy<Value = Action> {
    let path = (0u8..3, proptest::option::of(0u8..2)).prop_map(|(a, b)| {
        let mut segments = vec![vec![b'k', a]];
        segments.extend(b.map(|b| vec![b'n', b]));
        Path(segments)
    });
    prop_oneof![
        (path.clone(), proptest::collection::vec(any::<u8>(), 0..3))
            .prop_map(|(path, value)| Action::RegisterSet { path, value }),
        (path.clone(), 0u64..10, 0u64..10).prop_map(|(path, increments, decrements)| Action::CounterTotals {
            path,
            increments,
            decrements
        }),
        (path.clone(), 0u8..3, proptest::collection::vec(stamp_strategy(), 0..2))
            .prop_map(|(path, e, replaces)| Action::SetAdd { path, element: vec![e], replaces }),
        (path.clone(), 0u8..3, proptest::collection::vec(stamp_strategy(), 0..3))
            .prop_map(|(path, e, observed)| Action::SetRemove { path, element: vec![e], observed }),
        (path.clone(), proptest::option::of(stamp_strategy()), 0u8..3)
            .prop_map(|(path, after, v)| Action::ListInsert { path, after, value: vec![v] }),
        (path.clone(), stamp_strategy()).prop_map(|(path, node)| Action::ListRemove { path, node }),
        path.prop_map(|path| Action::Remove { path }),
    ]
}

/// Applies `(stamp, action)` pairs in the given order, one transaction each.
fn apply_all(actions: &[(Stamp, Action)]) -> StateStore<MemoryBackend> {
    let mut store = StateStore::new(MemoryBackend::default());
    for (stamp, action) in actions {
        let mut txn = Txn::new(&store);
        apply_action(&mut txn, action, *stamp).unwrap();
        let writes = txn.into_writes();
        store.commit(writes, crate::state::StagedWrites::new()).unwrap();
    }
    store
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn join_is_commutative(a in slot_strategy(), b in slot_strategy()) {
        prop_assert_eq!(joined(&a, &b), joined(&b, &a));
    }

    #[test]
    fn join_is_associative(a in slot_strategy(), b in slot_strategy(), c in slot_strategy()) {
        prop_assert_eq!(joined(&joined(&a, &b), &c), joined(&a, &joined(&b, &c)));
    }

    #[test]
    fn join_is_idempotent(a in slot_strategy(), b in slot_strategy()) {
        prop_assert_eq!(joined(&a, &a), a.clone());
        let once = joined(&a, &b);
        prop_assert_eq!(joined(&once, &b), once);
    }

    #[test]
    fn any_order_of_the_same_actions_gives_the_same_state_and_root(
        actions in proptest::collection::vec(action_strategy(), 1..24),
        seed in any::<u64>(),
        duplicates in proptest::collection::vec(0usize..24, 0..6),
    ) {
        // Each action gets a distinct stamp, as it would in distinct deltas or positions.
        let stamped: Vec<(Stamp, Action)> = actions.into_iter().enumerate().map(|(i, action)| {
            let author = (i % 3) as u8;
            let stamp = Stamp { hlc: Hlc { physical_ms: (i / 3) as u64, logical: 0, node: u64::from(author) }, author: AuthorKey::from_bytes([author; 32]), index: i as u32 };
            (stamp, action)
        }).collect();
        let reference = apply_all(&stamped);
        let mut shuffled = stamped.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        // Re-applying some actions (a duplicate delivery) changes nothing either.
        for index in duplicates {
            if let Some(pair) = stamped.get(index) {
                shuffled.push(pair.clone());
            }
        }
        let other = apply_all(&shuffled);
        prop_assert_eq!(other.root(), reference.root());
        prop_assert_eq!(other.entries(), reference.entries());
    }
}

#[test]
fn concurrent_add_wins_over_a_remove_that_did_not_see_it() {
    let tag = |n: u32| Stamp {
        hlc: Hlc { physical_ms: u64::from(n), logical: 0, node: 0 },
        author: AuthorKey::default(),
        index: 0,
    };
    let mut set = AwSet::default();
    set.join(&AwSet { adds: BTreeMap::from([(b"x".to_vec(), BTreeSet::from([tag(1)]))]), ..AwSet::default() });
    // A remove that observed tag 1, and a concurrent add with tag 2.
    let remove = AwSet { removed: BTreeSet::from([tag(1)]), ..AwSet::default() };
    let concurrent_add =
        AwSet { adds: BTreeMap::from([(b"x".to_vec(), BTreeSet::from([tag(2)]))]), ..AwSet::default() };
    let mut one = set.clone();
    one.join(&remove);
    one.join(&concurrent_add);
    let mut two = set.clone();
    two.join(&concurrent_add);
    two.join(&remove);
    assert_eq!(one, two);
    assert_eq!(one.members_after(None), vec![b"x".to_vec()]);
    one.join(&AwSet { removed: BTreeSet::from([tag(2)]), ..AwSet::default() });
    assert!(one.members_after(None).is_empty());
}

#[test]
fn pn_counter_sums_every_author_and_counts_a_repeated_write_once() {
    let stamp = Stamp::default();
    let mut counter = PnCounter::default();
    counter.join(&PnCounter { totals: BTreeMap::from([(AuthorKey::from_bytes([1; 32]), (5, 1))]), stamp });
    counter.join(&PnCounter { totals: BTreeMap::from([(AuthorKey::from_bytes([2; 32]), (3, 0))]), stamp });
    counter.join(&PnCounter { totals: BTreeMap::from([(AuthorKey::from_bytes([1; 32]), (5, 1))]), stamp });
    assert_eq!(counter.value(), 7);
}
