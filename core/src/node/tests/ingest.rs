use super::*;
use crate::hlc::Hlc;
use crate::testing::TestNode;
use crate::wire::SyncErrorCode;
use crate::{CausalDelta, Event, Handled, NodeError, RequestFailure, WriteBasis};
use std::sync::Arc;

#[test]
fn gossip_delta_is_verified_applied_and_reported() {
    let mut a = node(1, Config::default());
    let delta = author(2).make(&[], set("k", "v"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&delta) });
    let outputs = drain(&mut a);
    assert!(outputs.contains(&Output::Event(Event::DeltaApplied {
        context: context(),
        id: delta.id,
        author: key(2).author_key(),
        local: false
    })));
    assert_eq!(a.applier().get(&context(), b"k"), Some(&b"v"[..]));
    assert_eq!(a.metrics().deltas_applied, 2, "the genesis and this one");
}

#[test]
fn own_echoes_and_duplicates_are_skipped_and_counted() {
    let mut a = node(1, Config::default());
    a.local_delta(T0, context(), set("k", "v")).unwrap();
    let broadcast = drain(&mut a)
        .into_iter()
        .find_map(|output| match output {
            Output::Broadcast { bytes, .. } => Some(bytes),
            _ => None,
        })
        .unwrap();
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: broadcast });
    let remote = author(2).make(&[], set("x", "y"));
    for _ in 0..3 {
        a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&remote) });
    }
    let metrics = a.metrics();
    assert_eq!(metrics.echoes_skipped, 1);
    assert_eq!(metrics.duplicates, 2);
    assert_eq!(metrics.deltas_applied, 3, "the genesis and two");
}

fn assert_rejected(delta: CausalDelta, label: &str) {
    let mut a = node(1, Config::default());
    let root = a.root_hash(&context());
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&Arc::new(delta)) });
    assert_eq!(a.metrics().rejected.get(label), Some(&1), "expected a {label} rejection");
    assert_eq!(a.root_hash(&context()), root);
    assert_eq!(a.dag(&context()).unwrap().applied_len() + a.dag(&context()).unwrap().pending_len(), 1, "the genesis");
}

#[test]
fn tampered_forged_foreign_and_future_deltas_are_rejected_with_their_reason() {
    let good = (*author(2).make(&[], set("k", "v"))).clone();

    let mut tampered = good.clone();
    tampered.payload = set("k", "evil");
    assert_rejected(tampered, "id_mismatch");

    let mut forged = good.clone();
    forged.signature = key(3).sign_delta(&forged.id);
    assert_rejected(forged, "bad_signature");

    let outsider = key(9);
    let stranger = CausalDelta::new_signed(&outsider, context(), vec![], Hlc::default(), set("k", "v"));
    assert_rejected(stranger, "not_member");

    let far_future = Hlc { physical_ms: T0.as_millis() + 5_001, logical: 0, node: 2 };
    let future = CausalDelta::new_signed(&key(2), context(), vec![genesis().id], far_future, set("k", "v"));
    assert_rejected(future, "hlc_too_far_ahead");

    let elsewhere = CausalDelta::new_signed(&key(2), ContextId::hash_of(b"other"), vec![], Hlc::default(), vec![]);
    assert_rejected(elsewhere, "unknown_context");
}

#[test]
fn delta_at_the_clock_bound_is_accepted() {
    let mut a = node(1, Config::default());
    let at_bound = Hlc { physical_ms: T0.as_millis() + 5_000, logical: 0, node: 2 };
    let delta = Arc::new(sealed_delta(2, vec![genesis().id], at_bound, &set("k", "v")));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&delta) });
    assert!(a.dag(&context()).unwrap().is_applied(&delta.id));
}

#[test]
fn garbage_from_peers_is_counted_and_requests_get_bad_request() {
    let mut a = node(1, Config::default());
    for bytes in [vec![], vec![0], vec![9, 9, 9], vec![0, 1, 2, 3, 4, 5], vec![0xff; 64]] {
        a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: bytes.clone() });
        a.handle_input(T0, Input::Request { from: key(2).peer_id(), request_id: InboundRequestId(1), bytes });
        assert_eq!(response_of(&drain(&mut a)), SyncResponseV1::Error(SyncErrorCode::BadRequest));
    }
    assert_eq!(a.metrics().decode_errors_total(), 10);
    // A response nobody asked for is counted, not trusted.
    a.handle_input(T0, Input::Response { request_id: RequestId(77), bytes: vec![1, 2, 3] });
    assert_eq!(a.metrics().stale_responses, 1);
}

#[test]
fn pending_delta_asks_its_sender_for_missing_parents_at_once() {
    let mut a = node(1, Config::default());
    let sender = key(2).peer_id();
    let mut factory = author(2);
    let root = factory.make(&[], set("r", "0"));
    a.handle_input(T0, Input::Gossip { from: sender, bytes: gossip(&root) });
    a.handle_input(T0, Input::PeerUp { peer: sender });
    let connect = requests(&drain(&mut a));
    assert!(
        matches!(connect.as_slice(), [(to, _, SyncRequestV1::DeltasSince { .. })] if *to == sender),
        "a new link syncs"
    );
    let parent = factory.make(&[root.id], set("a", "1"));
    let child = factory.make(&[parent.id], set("b", "2"));
    a.handle_input(T0, Input::Gossip { from: sender, bytes: gossip(&child) });
    let sent = requests(&drain(&mut a));
    assert_eq!(sent.len(), 1);
    let (to, _, request) = &sent[0];
    assert_eq!(*to, sender);
    assert!(matches!(request, SyncRequestV1::DeltasSince { wanted, .. } if *wanted == vec![parent.id]));
    // A second child waiting on the same parent does not start a second fetch.
    let sibling = factory.make(&[parent.id], set("c", "3"));
    a.handle_input(T0, Input::Gossip { from: sender, bytes: gossip(&sibling) });
    assert!(requests(&drain(&mut a)).is_empty());
    assert_eq!(a.metrics().parent_fetches, 1);
}

/// A node that just joined lacks the sender's whole history: it syncs (and so can take a
/// snapshot of a long history) instead of pulling every ancestor as a missing parent.
#[test]
fn pending_delta_on_a_fresh_context_starts_a_sync_instead_of_a_parent_fetch() {
    let mut a = node(1, Config::default());
    let sender = key(2).peer_id();
    let mut factory = author(2);
    let parent = factory.make(&[], set("a", "1"));
    let child = factory.make(&[parent.id], set("b", "2"));
    a.handle_input(T0, Input::Gossip { from: sender, bytes: gossip(&child) });
    let outputs = drain(&mut a);
    let started = super::sync::events(&outputs).into_iter().find_map(|event| match event {
        Event::SyncStarted { reason, peer, .. } => Some((*reason, *peer)),
        _ => None,
    });
    assert_eq!(started, Some((crate::sync::SyncReason::FreshContext, sender)));
    let sent = requests(&outputs);
    assert!(matches!(sent.as_slice(), [(to, _, SyncRequestV1::Heads { .. })] if *to == sender), "{sent:?}");
    assert_eq!(a.metrics().parent_fetches, 0);
    // More gossip while the sync runs neither starts a second session nor a parent fetch.
    let sibling = factory.make(&[parent.id], set("c", "3"));
    a.handle_input(T0, Input::Gossip { from: sender, bytes: gossip(&sibling) });
    assert!(requests(&drain(&mut a)).is_empty());
    assert_eq!(a.metrics().parent_fetches, 0);
}

#[test]
fn failed_parent_fetch_asks_other_peers_then_gives_up() {
    let mut a = node(1, Config::default());
    for n in 2..=5 {
        a.handle_input(T0, Input::PeerUp { peer: key(n).peer_id() });
    }
    let mut factory = author(2);
    // The context holds history already, so a missing parent is fetched rather than synced.
    let root = factory.make(&[], set("r", "0"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&root) });
    drain(&mut a);
    let parent = factory.make(&[root.id], set("a", "1"));
    let child = factory.make(&[parent.id], set("b", "2"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&child) });
    let mut asked = Vec::new();
    let mut sent = requests(&drain(&mut a));
    while let Some((to, request_id, _)) = sent.pop() {
        asked.push(to);
        a.handle_input(T0, Input::RequestFailed { request_id, reason: RequestFailure::Unreachable });
        sent = requests(&drain(&mut a));
    }
    assert_eq!(asked.len(), 3, "max_parent_fetch_attempts");
    assert_eq!(asked[0], key(2).peer_id(), "the sender first");
    let unique: std::collections::BTreeSet<_> = asked.iter().collect();
    assert_eq!(unique.len(), 3, "never the same peer twice");
    assert_eq!(a.metrics().parent_fetch_failures, 3);
}

#[test]
fn fetched_parents_release_the_pending_child() {
    let mut a = node(1, Config::default());
    let mut b = node(2, Config::default());
    a.handle_input(T0, Input::PeerUp { peer: b.peer_id() });
    let first = b.local_delta(T0, context(), set("a", "1")).unwrap();
    b.local_delta(T0, context(), set("b", "2")).unwrap();
    let outputs = drain(&mut b);
    let last = outputs
        .iter()
        .rev()
        .find_map(|output| match output {
            Output::Broadcast { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    a.handle_input(T0, Input::Gossip { from: b.peer_id(), bytes: last });
    let outputs = drain(&mut a);
    exchange(&mut a, &mut b, outputs, T0);
    assert!(a.dag(&context()).unwrap().is_applied(&first));
    assert_eq!(a.fingerprint(), b.fingerprint());
}

#[test]
fn local_write_the_applier_refuses_is_not_stored_or_sent() {
    let mut a = node(1, Config::default());
    let error = a.local_delta(T0, context(), vec![0xde, 0xad]).unwrap_err();
    assert!(matches!(error, NodeError::ApplyFailed(_)));
    assert!(drain(&mut a).iter().all(|output| !matches!(output, Output::Broadcast { .. })));
    let dag = a.dag(&context()).unwrap();
    assert_eq!((dag.applied_len(), dag.quarantined_len()), (1, 0), "the genesis only");
}

#[test]
fn remote_delta_the_applier_refuses_is_quarantined_and_reported() {
    let mut a = node(1, Config::default());
    let bad = author(2).make(&[], vec![0xde, 0xad]);
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&bad) });
    assert!(drain(&mut a)
        .iter()
        .any(|output| matches!(output, Output::Event(Event::DeltaQuarantined { id, .. }) if *id == bad.id)));
    assert_eq!(a.metrics().quarantined, 1);
    assert_eq!(a.retry_quarantined(T0, &context()).unwrap(), vec![]);
}

impl TestNode<KvCounterApplier> {
    pub(super) fn fingerprint(&self) -> (Vec<crate::DeltaId>, crate::RootHash) {
        (self.dag(&context()).unwrap().heads_vec(), self.root_hash(&context()))
    }
}

/// Regression: `restore_context` looked only at applied deltas, so a context holding a pending
/// delta was "restored" under it, leaving the delta waiting on a parent marked applied.
#[test]
fn restoring_a_context_that_holds_pending_deltas_is_refused() {
    let mut a = node(1, Config::default());
    let mut factory = author(2);
    let parent = factory.make(&[], set("k", "v"));
    let child = factory.make(&[parent.id], set("k", "w"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&child) });
    assert!(a.dag(&context()).unwrap().is_pending(&child.id));
    let members = (1..=4).map(|k| key(k).author_key());
    let restored = vec![crate::dag::RestoredEntry::Body(parent.clone())];
    assert_eq!(
        a.restore_context(context(), members, restored, Vec::new()),
        Err(crate::node::RestoreError::AlreadyPopulated(context()))
    );
    // Nothing changed: the parent still releases the child when it arrives.
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&parent) });
    assert!(a.dag(&context()).unwrap().is_applied(&child.id));
}

/// Persistence follows the pending queue through events alone: a delta pended, evicted at the
/// cap (with its id) and released by its parent are each reported.
#[test]
fn the_pending_queue_reports_every_delta_that_enters_or_leaves_it() {
    let mut config = Config::default();
    config.limits.max_pending_deltas = 1;
    let mut a = node(1, config);
    let mut factory = author(2);
    let parent = factory.make(&[], set("k", "v"));
    let lost = factory.make(&[crate::DeltaId::hash_of(b"absent")], set("x", "1"));
    let child = factory.make(&[parent.id], set("k", "w"));
    let from = key(2).peer_id();
    a.handle_input(T0, Input::Gossip { from, bytes: gossip(&lost) });
    assert!(drain(&mut a).contains(&Output::Event(Event::DeltaPending { context: context(), id: lost.id })));
    a.handle_input(T0, Input::Gossip { from, bytes: gossip(&child) });
    let outputs = drain(&mut a);
    assert!(outputs.contains(&Output::Event(Event::PendingEvicted {
        context: context(),
        ids: vec![lost.id],
        cause: crate::dag::EvictionCause::Capacity,
    })));
    assert!(outputs.contains(&Output::Event(Event::DeltaPending { context: context(), id: child.id })));
    a.handle_input(T0, Input::Gossip { from, bytes: gossip(&parent) });
    let outputs = drain(&mut a);
    assert!(outputs.contains(&Output::Event(Event::PendingReleased { context: context(), ids: vec![child.id] })));
}

/// A local write is checked: a payload made at one HLC is refused (in release builds too) if
/// the clock moved on before its delta was made, here because a remote delta was observed.
#[test]
fn a_local_write_made_at_a_stale_hlc_is_refused_and_makes_nothing() {
    let mut a = node(1, Config::default());
    let ran_at = a.next_local_hlc(T0);
    let remote = author(2).make(&[], set("x", "y"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&remote) });
    drain(&mut a);
    let heads = a.dag(&context()).unwrap().heads_vec();
    let write = |hlc| Input::LocalWrite {
        context: context(),
        payload: set("k", "v"),
        basis: Some(WriteBasis { hlc, heads: heads.clone() }),
    };
    let handled = a.handle_input(T0, write(ran_at));
    assert!(matches!(handled, Handled::Refused(NodeError::HlcMismatch { .. })), "{handled:?}");
    assert_eq!(a.metrics().local_hlc_mismatches, 1);
    assert!(drain(&mut a).is_empty(), "no delta, no broadcast");
    // At the HLC the node gives now, the write goes through.
    let ran_at = a.next_local_hlc(T0);
    assert!(matches!(a.handle_input(T0, write(ran_at)), Handled::Authored(_)));
}

/// A local write is checked against the heads its code read too: a payload computed from the
/// state before another write is refused, since its effects were computed from another state.
#[test]
fn a_local_write_computed_on_stale_heads_is_refused_and_makes_nothing() {
    let mut a = node(1, Config::default());
    let stale_heads = a.dag(&context()).unwrap().heads_vec();
    a.local_delta(T0, context(), set("first", "1")).unwrap();
    drain(&mut a);
    let basis = WriteBasis { hlc: a.next_local_hlc(T0), heads: stale_heads };
    let handled =
        a.handle_input(T0, Input::LocalWrite { context: context(), payload: set("k", "v"), basis: Some(basis) });
    let Handled::Refused(NodeError::HeadsMismatch { ran_on, heads }) = handled else { panic!("{handled:?}") };
    assert_eq!(ran_on, vec![genesis().id]);
    assert_eq!(heads, a.dag(&context()).unwrap().heads_vec());
    assert_eq!(a.metrics().local_heads_mismatches, 1);
    assert_eq!(a.dag(&context()).unwrap().applied_len(), 2, "nothing made");
    assert!(drain(&mut a).is_empty(), "no delta, no broadcast");
}

/// A peer that reconnects after a restart with its wall clock stepped back sends lower heartbeat
/// sequences than we took before: they are heard, because a disconnect forgets its last one.
#[test]
fn a_peer_that_reconnects_with_lower_heartbeat_sequences_is_heard_again() {
    let mut a = node(1, Config::default());
    let peer = key(2).peer_id();
    a.handle_input(T0, Input::PeerUp { peer });
    let beat = |sequence: u64| {
        GossipMessage::encode_v1(GossipV1::Heartbeat(crate::wire::Heartbeat {
            context: context(),
            sender: peer,
            sequence,
            root: crate::RootHash::default(),
            heads: Vec::new(),
            applied_count: 0,
        }))
    };
    a.handle_input(T0, Input::Gossip { from: peer, bytes: beat(1_000) });
    a.handle_input(T0, Input::Gossip { from: peer, bytes: beat(900) });
    assert_eq!(a.metrics().heartbeats_replayed, 1, "lower while connected: a replay");
    a.handle_input(T0, Input::PeerDown { peer });
    a.handle_input(T0, Input::PeerUp { peer });
    a.handle_input(T0, Input::Gossip { from: peer, bytes: beat(900) });
    assert_eq!(a.metrics().heartbeats_replayed, 1, "after a reconnect: heard");
}

/// Leaving and joining a context again never repeats a heartbeat sequence.
#[test]
fn a_rejoined_context_continues_the_heartbeat_sequence() {
    let mut a = node(1, Config::default());
    let sequence_of = |outputs: Vec<Output>| {
        outputs.into_iter().find_map(|output| match output {
            Output::Broadcast { bytes, .. } => match GossipMessage::decode(&bytes, &Default::default()) {
                Ok(crate::wire::Gossip::SignedHeartbeat(heartbeat)) => Some(heartbeat.heartbeat().sequence),
                _ => None,
            },
            _ => None,
        })
    };
    let mut last = 0;
    for round in 0..2 {
        let wake = a.poll_timeout().max(T0.add_millis(30_000 * (round + 1)));
        // The wall clock stands still (a clock stepped back), so only the counter moves.
        for _ in 0..3 {
            let wake = a.poll_timeout().max(wake);
            a.handle_input(crate::Clocks::new(wake, T0.as_millis()), Input::Timeout);
            if let Some(sequence) = sequence_of(drain(&mut a)) {
                assert!(sequence > last, "{sequence} after {last}");
                last = sequence;
            }
        }
        assert!(a.leave_context(&context()));
        a.join_context(&genesis()).unwrap();
    }
    assert!(last > T0.as_millis(), "heartbeats were sent");
}

/// A sync page's signatures are checked in one batch; a forged one among them must refuse
/// exactly itself, counted as a gossip delta's would be, and its good neighbours apply.
#[test]
fn a_page_with_one_forged_signature_refuses_exactly_that_delta() {
    let mut a = node(1, Config::default());
    let peer = key(2).peer_id();
    a.handle_input(T0, Input::PeerUp { peer });
    let (_, heads_request, _) = requests(&drain(&mut a)).into_iter().next().expect("a sync on connect");
    let mut factory = author(2);
    let mut deltas: Vec<DeltaRef> = (0..12).map(|n| factory.make(&[], set(&format!("k{n}"), "v"))).collect();
    let mut forged = CausalDelta::clone(&deltas[7]);
    forged.signature.0[10] ^= 1;
    deltas[7] = Arc::new(forged);
    let heads = crate::wire::SyncResponseV1::Heads {
        context: context(),
        heads: deltas.iter().map(|delta| delta.id).collect(),
        root: crate::RootHash::hash_of(b"r"),
        applied_count: 13,
    };
    let heads = crate::wire::SyncResponse::encode_v1(heads);
    a.handle_input(T0, Input::Response { request_id: heads_request, bytes: heads });
    let (_, page_request, _) = requests(&drain(&mut a)).into_iter().next().expect("a deltas page request");
    let page =
        crate::wire::SyncResponseV1::Deltas { context: context(), deltas: deltas.clone(), next: None, gap_total: 12 };
    a.handle_input(T0, Input::Response { request_id: page_request, bytes: crate::wire::SyncResponse::encode_v1(page) });
    assert_eq!(a.metrics().rejected.get("bad_signature"), Some(&1));
    let dag = a.dag(&context()).unwrap();
    for (index, delta) in deltas.iter().enumerate() {
        assert_eq!(dag.is_applied(&delta.id), index != 7, "delta {index}");
    }
    assert_eq!(a.metrics().deltas_applied, 12, "the genesis and eleven");
    a.check_invariants();
}

/// A snapshot checkpoint's headers are checked in batches; one forged header among a hundred
/// is refused by its own id, and the same list unforged is accepted.
#[test]
fn a_checkpoint_with_one_forged_header_names_exactly_that_header() {
    let mut writer = node(1, Config::default());
    for n in 0..100 {
        writer.local_delta(T0, context(), set(&format!("k{n}"), "v")).unwrap();
    }
    let mut entries = writer.dag(&context()).unwrap().checkpoint();
    let heads = writer.dag(&context()).unwrap().heads_vec();
    let reader = node(3, Config::default());
    let dag = reader.dag(&context()).unwrap();
    let limits = Config::default().limits;
    assert!(dag.prepare_checkpoint(&entries, &heads, &limits, None).is_ok());
    entries[60].signature.0[3] ^= 1;
    let refused = dag.prepare_checkpoint(&entries, &heads, &limits, None).unwrap_err();
    let expected = crate::RejectReason::BadSignature(crate::identity::SignatureError::Mismatch);
    assert_eq!(refused, crate::dag::AdoptError::Refused(entries[60].id, expected));
}

/// Every gossip input answers with the verdict a relaying transport acts on: valid and new
/// travels on, known or not ours stops quietly, and what no honest node sends is rejected.
#[test]
fn gossip_answers_with_the_relay_verdict() {
    use crate::GossipVerdict;
    let mut a = node(1, Config::default());
    let from = key(2).peer_id();
    let delta = author(2).make(&[], set("k", "v"));
    let verdict = |node: &mut TestNode<KvCounterApplier>, from: PeerId, bytes: Vec<u8>| match node
        .handle_input(T0, Input::Gossip { from, bytes })
    {
        Handled::Gossip(verdict) => verdict,
        other => panic!("gossip answered {other:?}"),
    };
    assert_eq!(verdict(&mut a, from, gossip(&delta)), GossipVerdict::Accept);
    assert_eq!(verdict(&mut a, from, gossip(&delta)), GossipVerdict::Ignore, "known already");
    assert_eq!(verdict(&mut a, from, vec![0xff; 40]), GossipVerdict::Reject { reason: "unsupported_version" });
    let outsider = DeltaFactory::signed_on(&genesis(), [9; 32]).make(&[], set("x", "y"));
    assert_eq!(verdict(&mut a, key(9).peer_id(), gossip(&outsider)), GossipVerdict::Reject { reason: "not_member" });
    let other_context = crate::testing::genesis_of(&key(2), [key(1).author_key()], 7);
    let elsewhere = DeltaFactory::signed_on(&other_context, [2; 32]).make(&[], set("x", "y"));
    assert_eq!(verdict(&mut a, from, gossip(&elsewhere)), GossipVerdict::Ignore, "not our context");
    let b = node(2, Config::default());
    assert_eq!(verdict(&mut a, from, super::sync::heartbeat_of(&b)), GossipVerdict::Accept);
    assert_eq!(
        verdict(&mut a, key(3).peer_id(), super::sync::heartbeat_of(&b)),
        GossipVerdict::Reject { reason: "heartbeat_misattributed" },
        "a member's heartbeat published by another member"
    );
    assert_eq!(
        verdict(&mut a, key(9).peer_id(), super::sync::heartbeat_of(&b)),
        GossipVerdict::Reject { reason: "heartbeat_not_member" }
    );
    assert!(!GossipVerdict::Ignore.relays() && GossipVerdict::Accept.relays());
}
