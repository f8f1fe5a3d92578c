//! Sealed payloads and key rotation: what members, removed members and outsiders can read.

use super::*;
use crate::membership::{MemberOp, Role};
use crate::seal::{KeyEpoch, KeyringOpenError};
use crate::{Event, Handled};
use std::sync::Arc;

fn delta_of(node: &TestNode<KvCounterApplier>, id: &crate::DeltaId) -> DeltaRef {
    node.dag(&context()).unwrap().get(id).unwrap().clone()
}

fn deliver(to: &mut TestNode<KvCounterApplier>, from: u8, delta: &DeltaRef) {
    to.handle_input(T0, Input::Gossip { from: key(from).peer_id(), bytes: gossip(delta) });
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn a_write_goes_out_sealed_and_only_key_holders_open_it() {
    let mut a = node(1, Config::default());
    let id = a.local_delta(T0, context(), set("secret-key", "secret-value")).unwrap();
    let written = delta_of(&a, &id);
    assert!(!contains(&written.payload, b"secret-value"), "the stored and gossiped body is sealed");
    assert!(!contains(&gossip(&written), b"secret-value"));
    assert_eq!(a.open_payload(&context(), &written).unwrap(), set("secret-key", "secret-value"));
    // An outsider's replica of the context holds no key: it learns the header, nothing else.
    let mut outsider = TestNode::new(Config::default(), key(9), 9, KvCounterApplier::default(), T0);
    outsider.join_context(&genesis()).unwrap();
    assert!(outsider.dag(&context()).unwrap().keyring().is_empty(), "the genesis wraps no key to it");
    assert_eq!(outsider.open_payload(&context(), &written), Err(KeyringOpenError::NoKey(KeyEpoch(0))));
    // A member applies it: the applier saw the plaintext.
    let mut b = node(2, Config::default());
    deliver(&mut b, 1, &written);
    assert_eq!(b.root_hash(&context()), a.root_hash(&context()));
}

#[test]
fn a_removed_member_cannot_open_what_is_written_after_its_removal() {
    let mut admin = node(1, Config::default());
    let mut two = node(2, Config::default());
    let mut three = node(3, Config::default());
    let before_id = admin.local_delta(T0, context(), set("k", "before")).unwrap();
    let before = delta_of(&admin, &before_id);
    let removal_id = admin.change_members(context(), vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    let removal = delta_of(&admin, &removal_id);
    let crate::DeltaKind::Membership(change) = &removal.kind else { panic!("a membership delta") };
    let rotation = change.rotation.as_ref().expect("a removal rotates the key");
    assert_eq!(rotation.epoch, KeyEpoch(1));
    assert!(rotation.recipients().all(|member| *member != key(3).author_key()), "not wrapped to the removed member");
    for node in [&mut two, &mut three] {
        deliver(node, 1, &before);
        deliver(node, 1, &removal);
    }
    // Member 2 writes after the removal: sealed under epoch 1, which 3 never received.
    let after_id = two.local_delta(T0, context(), set("k", "after")).unwrap();
    let after = delta_of(&two, &after_id);
    assert_eq!(crate::seal::SealedPayload::key_of(&after.payload).map(|(epoch, _)| epoch), Some(KeyEpoch(1)));
    assert_eq!(three.open_payload(&context(), &after), Err(KeyringOpenError::NoKey(KeyEpoch(1))));
    assert!(three.open_payload(&context(), &before).is_ok(), "what it could read before, it still can");
    assert!(three.metrics().key_unwrap_failures == 0, "nothing was wrapped to it to fail");
    deliver(&mut admin, 2, &after);
    assert_eq!(admin.open_payload(&context(), &after).unwrap(), set("k", "after"));
    assert_eq!(admin.root_hash(&context()), two.root_hash(&context()));
}

#[test]
fn a_write_sealed_under_an_old_epoch_after_a_rotation_is_refused() {
    let mut admin = node(1, Config::default());
    let removal_id = admin.change_members(context(), vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    // Member 2 seals under epoch 0 on top of the removal: the removed member could read it.
    let stale = author(2).make(&[removal_id], set("k", "stale"));
    deliver(&mut admin, 2, &stale);
    assert!(!admin.dag(&context()).unwrap().is_known(&stale.id));
    assert_eq!(admin.metrics().rejected.get("wrong_key_epoch"), Some(&1));
    assert_eq!(admin.metrics().refusals_by_peer.get(&key(2).peer_id()), Some(&1), "counted against its sender");
}

/// An admin adds member 5 while another admin concurrently removes member 3 (rotating to a key
/// member 5 is not given). Member 5 still applies every delta: the next writer that sees both
/// rotates again and grants it the key it lacks, and 5 retries what it had quarantined.
#[test]
fn a_member_added_concurrently_with_a_rotation_is_healed_by_the_next_writer() {
    let members = vec![
        (key(2).author_key(), Role::Admin),
        (key(3).author_key(), Role::Member),
        (key(4).author_key(), Role::Member),
    ];
    let genesis = Arc::new(
        crate::CausalDelta::genesis(
            &key(1),
            crate::Hlc::default(),
            [6; 32],
            members,
            &crate::testing::test_context_key(),
        )
        .unwrap(),
    );
    let context = genesis.context;
    let fresh = |n: u8| {
        let mut node = TestNode::new(Config::default(), key(n), u64::from(n), KvCounterApplier::default(), T0);
        node.join_context(&genesis).unwrap();
        node
    };
    let (mut one, mut two, mut four) = (fresh(1), fresh(2), fresh(4));
    let get = |node: &TestNode<KvCounterApplier>, id| node.dag(&context).unwrap().get(&id).unwrap().clone();
    let removal_id = one.change_members(context, vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    let removal = get(&one, removal_id);
    let addition_id = two.change_members(context, vec![MemberOp::Add(key(5).author_key(), Role::Member)]).unwrap();
    let addition = get(&two, addition_id);
    // One writes under its rotation's key, before it hears of the addition.
    let sealed_for_few_id = one.local_delta(T0, context, set("k", "one")).unwrap();
    let sealed_for_few = get(&one, sealed_for_few_id);
    let send = |node: &mut TestNode<KvCounterApplier>, delta: &DeltaRef| {
        node.handle_input(T0, Input::Gossip { from: key(1).peer_id(), bytes: gossip(delta) });
    };
    for delta in [&removal, &addition, &sealed_for_few] {
        send(&mut four, delta);
    }
    // Member 4 sees both: the epoch-1 key was not wrapped to 5, so 4 rotates before writing.
    let rotations_before = four.metrics().key_rotations;
    let healed_id = four.local_delta(T0, context, set("k", "four")).unwrap();
    let healed = get(&four, healed_id);
    assert_eq!(four.metrics().key_rotations, rotations_before + 1);
    assert_eq!(crate::seal::SealedPayload::key_of(&healed.payload).map(|(epoch, _)| epoch), Some(KeyEpoch(2)));
    let rotation = get(&four, healed.parents[0]);
    // Member 5 joins and receives everything in an order that makes it wait for the grant.
    let mut five = fresh(5);
    for delta in [&removal, &addition, &sealed_for_few] {
        send(&mut five, delta);
    }
    let dag = five.dag(&context).unwrap();
    assert_eq!(dag.quarantined_len(), 1, "sealed under a key member 5 does not hold yet");
    send(&mut five, &rotation);
    send(&mut five, &healed);
    let dag = five.dag(&context).unwrap();
    assert_eq!((dag.quarantined_len(), dag.pending_len()), (0, 0));
    assert!(dag.is_applied(&sealed_for_few.id) && dag.is_applied(&healed.id));
    assert_eq!(five.root_hash(&context), four.root_hash(&context));
    let outputs: Vec<Output> = std::iter::from_fn(|| five.poll_output()).collect();
    assert!(outputs
        .iter()
        .any(|output| matches!(output, Output::Event(Event::DeltaApplied { id, .. }) if *id == sealed_for_few.id)));
}

#[test]
fn keys_come_back_from_the_stored_dag_after_a_restart() {
    let mut admin = node(1, Config::default());
    let removal = admin.change_members(context(), vec![MemberOp::Remove(key(3).author_key())]).unwrap();
    let written_id = admin.local_delta(T0, context(), set("k", "v")).unwrap();
    let written = delta_of(&admin, &written_id);
    let stored: Vec<crate::dag::RestoredEntry> =
        [genesis(), delta_of(&admin, &removal)].into_iter().map(crate::dag::RestoredEntry::Body).collect();
    let mut restarted = TestNode::new(Config::default(), key(1), 1, KvCounterApplier::default(), T0);
    restarted.restore_context(context(), [], stored, Vec::new()).unwrap();
    assert_eq!(restarted.dag(&context()).unwrap().keyring().len(), 2, "epoch 0 and the rotation's");
    assert_eq!(restarted.open_payload(&context(), &written).unwrap(), set("k", "v"));
}

#[test]
fn prepare_write_rotates_only_when_a_member_lacks_the_key() {
    let mut a = node(1, Config::default());
    assert_eq!(a.handle_input(T0, Input::PrepareWrite { context: context() }), Handled::Ready);
    let mut nine = TestNode::new(Config::default(), key(9), 9, KvCounterApplier::default(), T0);
    nine.join_context(&genesis()).unwrap();
    assert!(matches!(
        nine.handle_input(T0, Input::PrepareWrite { context: context() }),
        Handled::Refused(crate::NodeError::NotMember(_))
    ));
}

/// Anyone may send a genesis, so a self-signed fake one (its fields do not create this context)
/// is refused before its key share is looked at: it hands the node no key.
#[test]
fn a_fake_genesis_hands_no_key() {
    let mut a = node(1, Config::default());
    let keys_before = a.dag(&context()).unwrap().keyring().len();
    let learned_before = a.metrics().keys_learned;
    let junk_key = crate::seal::ContextKey::new(KeyEpoch(0), [0x66; 32]);
    let theirs = crate::CausalDelta::genesis(
        &key(9),
        crate::Hlc::default(),
        [1; 32],
        vec![(key(1).author_key(), Role::Member)],
        &junk_key,
    )
    .unwrap();
    let fake = Arc::new(crate::CausalDelta::new_signed_kind(
        &key(9),
        context(),
        Vec::new(),
        crate::Hlc::default(),
        theirs.kind.clone(),
        Vec::new(),
    ));
    deliver(&mut a, 9, &fake);
    assert_eq!(a.dag(&context()).unwrap().keyring().len(), keys_before);
    assert_eq!(a.metrics().keys_learned, learned_before);
    assert_eq!(a.metrics().rejected.get("bad_genesis"), Some(&1));
}

/// A membership delta by member 2 on the genesis, built by hand: its core would author only
/// honest ones.
fn change_by_two(change: crate::membership::MembershipChange) -> DeltaRef {
    Arc::new(crate::CausalDelta::new_signed_kind(
        &key(2),
        context(),
        vec![genesis().id],
        crate::Hlc { physical_ms: 5, logical: 0, node: 2 },
        crate::DeltaKind::Membership(change),
        Vec::new(),
    ))
}

/// A member hands a new key of the current epoch to only some members and seals a write
/// under it (the members without it would quarantine that write and all that follows it,
/// while the others apply it). Admission refuses the write on every replica, even one that
/// holds the key, because its causal past did not hand the key to exactly its members.
#[test]
fn a_write_sealed_under_a_key_handed_to_only_some_members_is_refused_everywhere() {
    let mut one = node(1, Config::default());
    let subset_key = crate::seal::ContextKey::new(KeyEpoch(0), [0x77; 32]);
    let subset = [key(1).author_key(), key(2).author_key()];
    let share = crate::membership::KeyShare::wrap(&key(2), &context(), &subset_key, subset).unwrap();
    let grant = change_by_two(crate::membership::MembershipChange { grants: vec![share], ..Default::default() });
    deliver(&mut one, 2, &grant);
    let dag = one.dag(&context()).unwrap();
    assert!(dag.is_applied(&grant.id), "a grant to members is a valid change");
    assert!(dag.keyring().holds(KeyEpoch(0), &subset_key.id()), "member 1 is one of the few");
    let mut writer = author(2);
    writer.seal_with(Some(subset_key));
    let write = writer.make(&[grant.id], set("k", "for some"));
    deliver(&mut one, 2, &write);
    assert!(!one.dag(&context()).unwrap().is_known(&write.id));
    assert_eq!(one.metrics().rejected.get("key_not_shared"), Some(&1));
    // An honest write on the same heads is sealed under the genesis key and applies.
    let honest = one.local_delta(T0, context(), set("k", "for all")).unwrap();
    let honest = delta_of(&one, &honest);
    let mut three = node(3, Config::default());
    deliver(&mut three, 2, &grant);
    deliver(&mut three, 1, &honest);
    assert!(three.dag(&context()).unwrap().is_applied(&honest.id));
    assert_eq!(three.root_hash(&context()), one.root_hash(&context()));
}

/// A member hands member 3 a wrap that does not open, inside an otherwise valid rotation (with
/// grants of junk keys to 3 alone). The ledger lists 3 as holding the new key, so honest
/// writers seal under it and 3 quarantines their writes. At its next sync tick, 3 asks another recipient for the key, point to point,
/// gets it wrapped from that member, and applies what waited.
#[test]
fn a_member_sent_a_wrap_that_does_not_open_asks_another_member_for_the_key() {
    let mut one = node(1, Config::default());
    let mut three = node(3, Config::default());
    let rotated = crate::seal::ContextKey::new(KeyEpoch(1), [0x55; 32]);
    let members = (1..=4).map(|n| key(n).author_key());
    let mut share = crate::membership::KeyShare::wrap(&key(2), &context(), &rotated, members).unwrap();
    let victim = share.wraps.iter_mut().find(|wrap| wrap.recipient == key(3).author_key()).unwrap();
    victim.ciphertext[0] ^= 1;
    // And keys of the epoch nobody else holds, listing 3, that outnumber the requests of one
    // tick: they must not crowd the key 3 needs out.
    let junk: Vec<crate::membership::KeyShare> = (0..8u8)
        .map(|n| {
            let key_of_nobody = crate::seal::ContextKey::new(KeyEpoch(1), [0xe0 + n; 32]);
            let mut share =
                crate::membership::KeyShare::wrap(&key(2), &context(), &key_of_nobody, [key(3).author_key()]).unwrap();
            share.wraps[0].ciphertext[0] ^= 1;
            share
        })
        .collect();
    let rotation = change_by_two(crate::membership::MembershipChange {
        rotation: Some(share),
        grants: junk,
        ..Default::default()
    });
    deliver(&mut one, 2, &rotation);
    deliver(&mut three, 2, &rotation);
    assert_eq!(three.metrics().key_unwrap_failures, 9, "the rotation's wrap and the junk");
    assert!(three.dag(&context()).unwrap().is_applied(&rotation.id), "the change itself is valid");
    let write = one.local_delta(T0, context(), set("k", "under the new key")).unwrap();
    let write = delta_of(&one, &write);
    assert_eq!(crate::seal::SealedPayload::key_of(&write.payload), Some((KeyEpoch(1), rotated.id())));
    deliver(&mut three, 1, &write);
    assert_eq!(three.dag(&context()).unwrap().quarantined_len(), 1, "3 cannot open it");
    // The next sync tick asks member 1, which holds the key and counts 3 among its recipients.
    three.handle_input(T0, Input::PeerUp { peer: one.peer_id() });
    drain(&mut three);
    let tick = T0.add_millis(Config::default().sync_tick_interval_ms * 2);
    three.handle_input(tick, Input::Timeout);
    let outputs = drain(&mut three);
    exchange(&mut three, &mut one, outputs, tick);
    assert_eq!(three.metrics().key_requests_sent, 1);
    assert_eq!(one.metrics().key_requests_served, 1);
    let dag = three.dag(&context()).unwrap();
    assert!(dag.keyring().holds(KeyEpoch(1), &rotated.id()));
    assert!(dag.is_applied(&write.id) && dag.quarantined_len() == 0);
    assert_eq!(three.root_hash(&context()), one.root_hash(&context()));
    // Held now: the next tick asks nothing.
    three.handle_input(tick.add_millis(Config::default().sync_tick_interval_ms * 2), Input::Timeout);
    drain(&mut three);
    assert_eq!(three.metrics().key_requests_sent, 1);
}

/// A key request is answered only for a current member the key was handed to: an outsider is
/// told it is not a member, and a member the key was never handed to gets no key.
#[test]
fn a_key_is_wrapped_on_request_only_to_a_member_it_was_handed_to() {
    let mut one = node(1, Config::default());
    let genesis_key = crate::testing::test_context_key();
    let ask = |one: &mut TestNode<KvCounterApplier>, from: u8, key_id| {
        let request = crate::wire::SyncRequestV2::Key { context: context(), epoch: KeyEpoch(0), key_id };
        one.handle_input(
            T0,
            Input::Request {
                from: key(from).peer_id(),
                request_id: InboundRequestId(1),
                bytes: crate::wire::SyncRequest::encode_v2(request),
            },
        );
        let bytes = drain(one)
            .into_iter()
            .find_map(|output| if let Output::Respond { bytes, .. } = output { Some(bytes) } else { None })
            .unwrap();
        crate::wire::SyncResponse::decode_any(&bytes, &Default::default()).unwrap()
    };
    let answer = ask(&mut one, 2, genesis_key.id());
    let crate::wire::SyncResponse::V2(crate::wire::SyncResponseV2::Key { wrap: Some(wrap), .. }) = answer else {
        panic!("member 2 holds the genesis key: {answer:?}")
    };
    let opened = crate::seal::unwrap_key(&key(2), &key(1).author_key(), &context(), &wrap).unwrap();
    assert_eq!(opened.id(), genesis_key.id());
    assert!(matches!(
        ask(&mut one, 9, genesis_key.id()),
        crate::wire::SyncResponse::V1(SyncResponseV1::Error(crate::wire::SyncErrorCode::NotMember))
    ));
    let unknown = crate::seal::KeyId([0x42; 16]);
    assert!(matches!(
        ask(&mut one, 2, unknown),
        crate::wire::SyncResponse::V2(crate::wire::SyncResponseV2::Key { wrap: None, .. })
    ));
    assert_eq!((one.metrics().key_requests_served, one.metrics().key_requests_refused), (1, 1));
}
