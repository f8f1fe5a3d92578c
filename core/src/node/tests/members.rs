//! Replicated membership at the node: who may write is judged against each delta's causal
//! past, on every path, and refusals are counted.

use super::*;
use crate::dag::EvictionCause;
use crate::membership::{MemberOp, Role};
use crate::testing::TestNode;
use crate::{CausalDelta, Event, Handled, Hlc, NodeError};
use std::sync::Arc;

fn evictions(outputs: &[Output]) -> Vec<(Vec<crate::DeltaId>, EvictionCause)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Event(Event::PendingEvicted { ids, cause, .. }) => Some((ids.clone(), *cause)),
            _ => None,
        })
        .collect()
}

fn rejected(node: &TestNode<KvCounterApplier>, label: &str) -> u64 {
    node.metrics().rejected.get(label).copied().unwrap_or(0)
}

#[test]
fn local_calls_are_refused_with_typed_errors() {
    let mut outsider = TestNode::new(Config::default(), key(9), 9, KvCounterApplier::default(), T0);
    outsider.join_context(&genesis()).unwrap();
    assert_eq!(outsider.local_delta(T0, context(), vec![]), Err(NodeError::NotMember(context())));
    let other = ContextId::hash_of(b"nope");
    assert_eq!(outsider.local_delta(T0, other, vec![]), Err(NodeError::UnknownContext(other)));
    let mut a = node(1, Config::default());
    let big = vec![0; Config::default().limits.max_payload_bytes + 1];
    assert!(matches!(a.local_delta(T0, context(), big), Err(NodeError::PayloadTooLarge { .. })));
    assert_eq!(a.change_members(context(), vec![]), Err(NodeError::NoMembershipOps));
    // Key 2 is a member, not an admin: it may leave, not remove others.
    let mut b = node(2, Config::default());
    let removal = vec![MemberOp::Remove(key(3).author_key())];
    assert_eq!(b.change_members(context(), removal), Err(NodeError::NotPermitted(context())));
    assert_eq!(
        a.change_members(context(), vec![MemberOp::Remove(key(1).author_key())]),
        Err(NodeError::NotPermitted(context())),
        "the last admin"
    );
    assert!(b.change_members(context(), vec![MemberOp::Remove(key(2).author_key())]).is_ok());
    assert_eq!(b.local_delta(T0, context(), set("k", "v")), Err(NodeError::NotMember(context())), "it left");
}

/// Local commands enter through `handle_input` and answer there: a second join, a genesis that
/// does not create the context, a leave of an unknown context are refused and change nothing.
#[test]
fn local_commands_answer_through_handle_input() {
    let mut a = node(1, Config::default());
    let other_genesis = crate::testing::genesis_of(&key(2), [key(1).author_key()], 7);
    let other = other_genesis.context;
    assert_eq!(
        a.handle_input(T0, Input::Join { context: context(), genesis: None, bootstrap: Vec::new(), keys: Vec::new() }),
        Handled::Refused(NodeError::AlreadyJoined(context()))
    );
    assert_eq!(a.handle_input(T0, Input::Leave { context: other }), Handled::Refused(NodeError::UnknownContext(other)));
    let wrong = Input::Join { context: other, genesis: Some(genesis()), bootstrap: Vec::new(), keys: Vec::new() };
    assert!(matches!(a.handle_input(T0, wrong), Handled::Refused(NodeError::BadGenesis { .. })));
    let mut forged = CausalDelta::clone(&other_genesis);
    forged.signature = key(1).sign_delta(&forged.id);
    let forged =
        Input::Join { context: other, genesis: Some(Arc::new(forged)), bootstrap: Vec::new(), keys: Vec::new() };
    assert!(matches!(a.handle_input(T0, forged), Handled::Refused(NodeError::BadGenesis { .. })));
    assert_eq!(a.context_ids(), vec![context()], "nothing joined by a refused join");
    let join =
        Input::Join { context: other, genesis: Some(other_genesis.clone()), bootstrap: Vec::new(), keys: Vec::new() };
    assert_eq!(a.handle_input(T0, join), Handled::Joined);
    assert!(a.dag(&other).unwrap().is_applied(&other_genesis.id));
    assert_eq!(a.handle_input(T0, Input::RetryQuarantined { context: other }), Handled::Retried(Vec::new()));
    assert_eq!(a.handle_input(T0, Input::Leave { context: other }), Handled::Left);
    assert_eq!(a.context_ids(), vec![context()]);
    assert_eq!(a.handle_input(T0, Input::Timeout), Handled::Taken);
    // Created here: this node is its only admin.
    let created =
        a.handle_input(T0, Input::Create { nonce: [3; 32], members: vec![(key(2).author_key(), Role::Member)] });
    let Handled::Created(mine) = created else { panic!("created: {created:?}") };
    let members = a.dag(&mine).unwrap().members().clone();
    assert_eq!(members.role(&key(1).author_key()), Some(Role::Admin));
    assert_eq!(members.role(&key(2).author_key()), Some(Role::Member));
    assert_eq!(members.len(), 2);
}

#[test]
fn a_removed_member_is_refused_from_its_removal_on_but_not_before() {
    let mut a = node(1, Config::default());
    let before = author(3).make(&[], set("k", "3 before"));
    let removal = a.change_members(context(), vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    drain(&mut a);
    assert!(!a.dag(&context()).unwrap().members().contains(&key(3).author_key()));
    // On top of its removal: refused.
    let after = author(3).make(&[removal], set("k", "3 after"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&after) });
    assert!(!a.dag(&context()).unwrap().is_known(&after.id));
    assert_eq!(rejected(&a, "not_member"), 1);
    // Concurrent with its removal (it had not seen it): accepted, the rule every replica
    // applies alike (docs/SECURITY.md).
    a.handle_input(T0, Input::Gossip { from: key(3).peer_id(), bytes: gossip(&before) });
    assert!(a.dag(&context()).unwrap().is_applied(&before.id));
}

#[test]
fn a_waiting_delta_is_judged_at_its_causal_point_when_its_parents_arrive() {
    let mut admin = node(1, Config::default());
    let removal_id = admin.change_members(context(), vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    let removal = admin.dag(&context()).unwrap().get(&removal_id).unwrap().clone();
    let mut a = node(2, Config::default());
    // Key 3 writes on top of its removal, and key 4 on top of that: both wait for the removal.
    let from_three = author(3).make(&[removal.id], set("k", "3"));
    let on_top = author(4).make(&[from_three.id], set("k", "4"));
    // The removal rotated the key: a delta on it is sealed under the new one.
    let mut four = author(4);
    four.seal_with(admin.current_key(&context()));
    let from_four = four.make(&[removal.id], set("k", "4 alone"));
    for (n, delta) in [(3, &from_three), (4, &on_top), (4, &from_four)] {
        a.handle_input(T0, Input::Gossip { from: key(n).peer_id(), bytes: gossip(delta) });
    }
    drain(&mut a);
    assert_eq!(a.dag(&context()).unwrap().pending_len(), 3);
    a.handle_input(T0, Input::Gossip { from: key(1).peer_id(), bytes: gossip(&removal) });
    let outputs = drain(&mut a);
    let evicted = evictions(&outputs);
    assert!(evicted.contains(&(vec![from_three.id], EvictionCause::NotMember)), "{evicted:?}");
    assert!(evicted.contains(&(vec![on_top.id], EvictionCause::NotMember)), "{evicted:?}");
    let dag = a.dag(&context()).unwrap();
    assert_eq!(dag.pending_len(), 0);
    assert!(dag.is_applied(&from_four.id));
    assert!(!dag.is_known(&from_three.id) && !dag.is_known(&on_top.id));
    assert_eq!(rejected(&a, "not_member"), 1);
}

#[test]
fn a_non_member_is_refused_on_arrival_and_a_new_member_once_added() {
    let mut a = node(1, Config::default());
    let newcomer = DeltaFactory::signed_on(&genesis(), [7; 32]).make(&[], set("k", "7"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&newcomer) });
    assert_eq!(rejected(&a, "not_member"), 1);
    assert_eq!(a.dag(&context()).unwrap().pending_len(), 0, "never a member: not even held");
    let added = a.change_members(context(), vec![MemberOp::Add(key(7).author_key(), Role::Member)]).unwrap();
    // Written on the genesis, before its author was added: still not a member there.
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&newcomer) });
    assert_eq!(rejected(&a, "not_member"), 2);
    let on_add = DeltaFactory::signed_on(&genesis(), [7; 32]).make(&[added], set("k", "7"));
    a.handle_input(T0, Input::Gossip { from: key(7).peer_id(), bytes: gossip(&on_add) });
    assert!(a.dag(&context()).unwrap().is_applied(&on_add.id));
}

/// Two admins change the member list concurrently, in conflict: one removes the other while
/// that one adds a member. Whatever order the two nodes see them in, they end with the same
/// members: the add is concurrent with its author's removal, so it is void.
#[test]
fn concurrent_conflicting_changes_resolve_alike_on_every_node() {
    let admins = vec![(key(2).author_key(), Role::Admin), (key(3).author_key(), Role::Member)];
    let genesis = Arc::new(
        CausalDelta::genesis(&key(1), Hlc::default(), [5; 32], admins, &crate::testing::test_context_key()).unwrap(),
    );
    let context = genesis.context;
    let mut a = TestNode::new(Config::default(), key(1), 1, KvCounterApplier::default(), T0);
    let mut b = TestNode::new(Config::default(), key(2), 2, KvCounterApplier::default(), T0);
    a.join_context(&genesis).unwrap();
    b.join_context(&genesis).unwrap();
    let removes_b = a.change_members(context, vec![MemberOp::Remove(key(2).author_key())]).unwrap();
    let adds_five = b.change_members(context, vec![MemberOp::Add(key(5).author_key(), Role::Admin)]).unwrap();
    let removal = a.dag(&context).unwrap().get(&removes_b).unwrap().clone();
    let addition = b.dag(&context).unwrap().get(&adds_five).unwrap().clone();
    drain(&mut a);
    drain(&mut b);
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&addition) });
    b.handle_input(T0, Input::Gossip { from: key(1).peer_id(), bytes: gossip(&removal) });
    let (at_a, at_b) = (a.dag(&context).unwrap().members().clone(), b.dag(&context).unwrap().members().clone());
    assert_eq!(at_a.members(), at_b.members());
    assert!(!at_a.contains(&key(2).author_key()));
    // Both changes sit at height 2, so either may fold first; the add is void either way.
    assert!(!at_a.contains(&key(5).author_key()));
    // Whoever key 2 is now, a write of its on top of both is refused on both nodes.
    let mut two = DeltaFactory::signed_on(&genesis, [2; 32]);
    let late = two.make(&[removes_b, adds_five], set("k", "2"));
    for node in [&mut a, &mut b] {
        node.handle_input(T0, Input::Gossip { from: key(3).peer_id(), bytes: gossip(&late) });
        assert!(!node.dag(&context).unwrap().is_known(&late.id));
    }
}

#[test]
fn a_restored_pending_delta_by_a_removed_member_is_dropped_not_applied() {
    let mut admin = node(1, Config::default());
    let removal_id = admin.change_members(context(), vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    let removal = admin.dag(&context()).unwrap().get(&removal_id).unwrap().clone();
    let from_three = author(3).make(&[removal.id], set("k", "3"));
    let mut a = TestNode::new(Config::default(), key(2), 2, KvCounterApplier::default(), T0);
    let applied = vec![crate::dag::RestoredEntry::Body(genesis()), crate::dag::RestoredEntry::Body(removal)];
    a.restore_context(context(), [], applied, vec![from_three.clone()]).unwrap();
    assert!(!a.dag(&context()).unwrap().is_known(&from_three.id), "its parent is applied, yet it must not apply");
    let outputs = drain(&mut a);
    assert!(evictions(&outputs).contains(&(vec![from_three.id], EvictionCause::NotMember)));
}

/// The forced-snapshot attack of issue 14: a checkpoint that lists a head nobody signed, or a
/// delta by a non-member, is refused before anything is replaced.
#[test]
fn a_checkpoint_with_an_unsigned_head_or_a_non_members_delta_is_refused() {
    let mut a = node(1, Config::default());
    let written = a.local_delta(T0, context(), set("k", "mine")).unwrap();
    let dag = a.dag(&context()).unwrap();
    let mut entries = dag.checkpoint();
    let limits = Config::default().limits;
    let mut fake = crate::testing::stub_header(crate::DeltaId::hash_of(b"F"), vec![written]);
    fake.context = context();
    fake.author = key(2).author_key();
    entries.push(fake.clone());
    let refused = dag.prepare_checkpoint(&entries, &[fake.id], &limits, None).unwrap_err();
    assert!(
        matches!(refused, crate::dag::AdoptError::Refused(id, crate::RejectReason::IdMismatch) if id == fake.id),
        "{refused:?}"
    );
    // Properly signed, but by a key that is no member.
    entries.pop();
    let stranger = DeltaFactory::signed_on(&genesis(), [8; 32]).make(&[written], set("k", "theirs"));
    entries.push(stranger.header());
    let refused = dag.prepare_checkpoint(&entries, &[stranger.id], &limits, None).unwrap_err();
    assert_eq!(refused, crate::dag::AdoptError::Refused(stranger.id, crate::RejectReason::NotMember));
    // A history that does not start at the genesis.
    let rootless = vec![author(2).make(&[crate::DeltaId::hash_of(b"x")], vec![]).header()];
    assert!(dag.prepare_checkpoint(&rootless, &[rootless[0].id], &limits, None).is_err());
}

/// An outsider that relays a member's delta to a node that holds nothing yet does not become
/// the node's sync source (it could then answer with a snapshot of its own making).
#[test]
fn an_outsider_relaying_a_members_delta_does_not_become_a_sync_source() {
    let mut fresh = TestNode::new(Config::default(), key(3), 3, KvCounterApplier::default(), T0);
    let join =
        Input::Join { context: context(), genesis: None, bootstrap: vec![key(2).author_key()], keys: Vec::new() };
    fresh.handle_input(T0, join);
    drain(&mut fresh);
    fresh.handle_input(T0, Input::PeerUp { peer: key(9).peer_id() });
    drain(&mut fresh);
    let relayed = author(2).make(&[], set("k", "v"));
    fresh.handle_input(T0, Input::Gossip { from: key(9).peer_id(), bytes: gossip(&relayed) });
    let outputs = drain(&mut fresh);
    let asked: Vec<_> = requests(&outputs).into_iter().filter(|(to, ..)| *to == key(9).peer_id()).collect();
    assert!(
        asked
            .iter()
            .all(|(_, _, request)| !matches!(request, SyncRequestV1::Heads { .. } | SyncRequestV1::DeltasSince { .. })),
        "{asked:?}"
    );
    assert!(fresh.sync_session(&context()).is_none(), "no session with the outsider");
}
