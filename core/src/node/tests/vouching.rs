//! Who vouches for a snapshot: the fake-head forced-snapshot attack, the voucher quorum,
//! single-voucher adoption and its repair, and hostile attestations.

use super::sync::{events, heartbeat_of, one_voucher, write_many};
use super::*;
use crate::attestation::Attestation;
use crate::sync::{SyncFailure, SyncMode, SyncReason};
use crate::wire::{GossipV2, SignedHeartbeat, SyncErrorCode};
use crate::{Event, RootHash};
use std::sync::atomic::{AtomicU64, Ordering};

/// `signer`'s signed heartbeat claiming `heads` and `root`, with a fresh sequence.
fn signed_heartbeat(signer: &Keypair, heads: Vec<crate::DeltaId>, root: RootHash) -> Vec<u8> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(1);
    let statement = Attestation {
        context: context(),
        signer: signer.author_key(),
        sequence: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        heads,
        root,
    };
    let heartbeat = SignedHeartbeat { attestation: statement.sign(signer), applied_count: 0 };
    GossipMessage::encode_v2(GossipV2::Heartbeat(heartbeat))
}

/// `node`'s own state, signed by `signer` (an honest member that holds the same deltas).
fn attestation_of(node: &TestNode<KvCounterApplier>, signer: &Keypair) -> Vec<u8> {
    signed_heartbeat(signer, node.dag(&context()).unwrap().heads_vec(), node.root_hash(&context()))
}

fn snapshot_threshold(config: Config) -> Config {
    Config { snapshot_gap_threshold_deltas: 5, ..config }
}

/// Serves `client`'s session from `server` after a new link, like `sync::sync_from`, with
/// `before` gossiped to the client first.
fn sync_with(
    client: &mut TestNode<KvCounterApplier>,
    server: &mut TestNode<KvCounterApplier>,
    before: &[Vec<u8>],
    from: &[PeerId],
) -> Vec<Output> {
    for (bytes, peer) in before.iter().zip(from) {
        client.handle_input(T0, Input::Gossip { from: *peer, bytes: bytes.clone() });
    }
    client.handle_input(T0, Input::PeerUp { peer: server.peer_id() });
    let outputs = drain(client);
    exchange(client, server, outputs, T0)
}

#[test]
fn a_fake_head_with_snapshot_required_does_not_erase_acknowledged_writes() {
    let mut victim = node(1, Config::default());
    let mut acknowledged = Vec::new();
    for i in 0..3 {
        acknowledged.push(victim.local_delta(T0, context(), set(&format!("k{i}"), "acknowledged")).unwrap());
    }
    drain(&mut victim);
    // Member 2 announces a head nobody signed, then answers the sync `SnapshotRequired`.
    let attacker = key(2);
    let fake_head = crate::DeltaId::hash_of(b"F");
    let claim = signed_heartbeat(&attacker, vec![fake_head], RootHash::hash_of(b"fabricated"));
    victim.handle_input(T0, Input::Gossip { from: attacker.peer_id(), bytes: claim });
    victim.handle_input(T0, Input::PeerUp { peer: attacker.peer_id() });
    let outputs = drain(&mut victim);
    let (_, request_id, request) = requests(&outputs).into_iter().next().expect("a sync with the new peer");
    assert!(matches!(request, SyncRequestV1::DeltasSince { .. }));
    let refusal = SyncResponse::encode_v1(SyncResponseV1::Error(SyncErrorCode::SnapshotRequired));
    victim.handle_input(T0, Input::Response { request_id, bytes: refusal });
    let outputs = drain(&mut victim);
    assert!(
        requests(&outputs).iter().all(|(_, _, request)| !matches!(request, SyncRequestV1::SnapshotBegin { .. })),
        "no snapshot asked for on the attacker's word"
    );
    assert!(events(&outputs).iter().any(|event| matches!(
        event,
        Event::SyncFailed { reason: SyncFailure::SnapshotNotWarranted(SyncErrorCode::SnapshotRequired), .. }
    )));
    let metrics = victim.metrics();
    assert_eq!(metrics.snapshot_demands_refused.get("snapshot_required"), Some(&1));
    assert_eq!(metrics.sync_failures.get("snapshot_not_warranted"), Some(&1));
    let dag = victim.dag(&context()).unwrap();
    assert!(acknowledged.iter().all(|id| dag.is_applied(id)), "every acknowledged write kept");
    assert_eq!(victim.applier().get(&context(), b"k2"), Some(&b"acknowledged"[..]));
}

#[test]
fn a_fresh_node_may_follow_snapshot_required_but_still_needs_the_vouchers() {
    // A context that holds nothing is far behind by its own view: it asks for the snapshot,
    // and then refuses it, vouched for by its server alone when two are required.
    let mut joiner = node(1, Config::default());
    let server = key(2);
    joiner.handle_input(T0, Input::PeerUp { peer: server.peer_id() });
    let (_, heads_request, _) = requests(&drain(&mut joiner)).into_iter().next().expect("heads first");
    let heads = SyncResponseV1::Heads {
        context: context(),
        heads: vec![crate::DeltaId::hash_of(b"h")],
        root: RootHash::hash_of(b"r"),
        applied_count: 10,
    };
    joiner.handle_input(T0, Input::Response { request_id: heads_request, bytes: SyncResponse::encode_v1(heads) });
    let (_, page_request, _) = requests(&drain(&mut joiner)).into_iter().next().expect("a deltas page");
    let refusal = SyncResponse::encode_v1(SyncResponseV1::Error(SyncErrorCode::SnapshotRequired));
    joiner.handle_input(T0, Input::Response { request_id: page_request, bytes: refusal });
    let (_, begin, request) = requests(&drain(&mut joiner)).into_iter().next().expect("a snapshot begin");
    assert!(matches!(request, SyncRequestV1::SnapshotBegin { .. }));
    let checkpoint = crate::wire::SnapshotCheckpoint {
        context: context(),
        snapshot_id: 1,
        heads: vec![crate::DeltaId::hash_of(b"h")],
        root: RootHash::hash_of(b"r"),
        state_bytes: 10,
        entry_count: 2,
        page_count: 1,
    };
    let answer = SyncResponse::encode_v1(SyncResponseV1::SnapshotCheckpoint(checkpoint));
    joiner.handle_input(T0, Input::Response { request_id: begin, bytes: answer });
    let outputs = drain(&mut joiner);
    assert!(requests(&outputs).is_empty(), "no page fetched");
    assert!(events(&outputs).iter().any(|event| matches!(
        event,
        Event::SyncFailed { reason: SyncFailure::SnapshotUnvouched { vouchers: 1, required: 2 }, .. }
    )));
    assert_eq!(joiner.metrics().snapshots_unvouched, 1);
}

#[test]
fn a_snapshot_only_its_server_vouches_for_is_declined_for_deltas() {
    let mut server = node(2, Config::default());
    let mut client = node(1, snapshot_threshold(Config::default()));
    write_many(&mut server, 20);
    let (claim, from) = (heartbeat_of(&server), server.peer_id());
    let outputs = sync_with(&mut client, &mut server, &[claim], &[from]);
    assert!(events(&outputs).iter().all(|event| !matches!(event, Event::SnapshotAdopted { .. })));
    assert!(events(&outputs)
        .iter()
        .any(|event| matches!(event, Event::SyncCompleted { mode: SyncMode::Deltas, deltas_received: 20, .. })));
    assert_eq!(client.metrics().snapshots_unvouched, 1);
    assert_eq!(client.fingerprint(), server.fingerprint(), "caught up through deltas, which need nobody's word");
}

#[test]
fn a_snapshot_a_second_member_vouches_for_is_adopted() {
    let mut server = node(2, Config::default());
    let mut client = node(1, snapshot_threshold(Config::default()));
    write_many(&mut server, 20);
    // Member 3 holds the same deltas and state, and says so in its signed heartbeat.
    let voucher = attestation_of(&server, &key(3));
    let outputs = sync_with(&mut client, &mut server, &[voucher], &[key(3).peer_id()]);
    assert!(events(&outputs).iter().any(|event| matches!(event, Event::SnapshotAdopted { .. })));
    let metrics = client.metrics();
    assert_eq!((metrics.attestations_taken, metrics.snapshots_unvouched, metrics.snapshots_single_voucher), (1, 0, 0));
    assert_eq!(client.fingerprint(), server.fingerprint());
}

#[test]
fn a_two_member_context_adopts_on_the_one_other_members_word() {
    let genesis = crate::testing::genesis_of(&key(1), [key(2).author_key()], 7);
    let mut server = TestNode::new(Config::default(), key(1), 1, KvCounterApplier::default(), T0);
    server.join_context(&genesis).unwrap();
    let mut client = TestNode::new(snapshot_threshold(Config::default()), key(2), 2, KvCounterApplier::default(), T0);
    client.join_context(&genesis).unwrap();
    for i in 0..20 {
        server.local_delta(T0, genesis.context, set(&format!("k{i}"), "v")).unwrap();
    }
    drain(&mut server);
    drain(&mut client);
    client.handle_input(T0, Input::PeerUp { peer: server.peer_id() });
    let outputs = drain(&mut client);
    let outputs = exchange(&mut client, &mut server, outputs, T0);
    assert!(events(&outputs).iter().any(|event| matches!(event, Event::SnapshotAdopted { .. })));
    assert_eq!(client.metrics().snapshots_single_voucher, 1);
    let state = |node: &TestNode<KvCounterApplier>| {
        (node.dag(&genesis.context).unwrap().heads_vec(), node.root_hash(&genesis.context))
    };
    assert_eq!(state(&client), state(&server));
}

#[test]
fn a_state_adopted_on_one_voucher_is_repaired_from_a_member_that_contradicts_it() {
    // The joiner knows only its inviter (bootstrap, no genesis yet): one voucher is all its
    // own view can ask for. The inviter serves a state that does not match its deltas.
    let mut liar = node(2, Config::default());
    let mut honest = node(3, Config::default());
    for bytes in write_many(&mut liar, 20) {
        honest.handle_input(T0, Input::Gossip { from: liar.peer_id(), bytes });
    }
    drain(&mut honest);
    assert_eq!(liar.fingerprint(), honest.fingerprint());
    liar.applier_mut().corrupt(&context(), b"k0", b"fabricated");
    let mut joiner = TestNode::new(snapshot_threshold(Config::default()), key(4), 4, KvCounterApplier::default(), T0);
    let join =
        Input::Join { context: context(), genesis: None, bootstrap: vec![key(2).author_key()], keys: Vec::new() };
    assert_eq!(joiner.handle_input(T0, join), crate::Handled::Joined);
    joiner.handle_input(T0, Input::PeerUp { peer: liar.peer_id() });
    let outputs = drain(&mut joiner);
    let outputs = exchange(&mut joiner, &mut liar, outputs, T0);
    assert!(events(&outputs).iter().any(|event| matches!(event, Event::SnapshotAdopted { .. })));
    assert_eq!(joiner.applier().get(&context(), b"k0"), Some(&b"fabricated"[..]));
    assert_eq!(joiner.metrics().snapshots_single_voucher, 1);
    // Member 3's signed heartbeat: the same heads, another root.
    // (The new link's routine sync finds nothing to fetch: the same heads.)
    joiner.handle_input(T0, Input::PeerUp { peer: honest.peer_id() });
    let outputs = drain(&mut joiner);
    exchange(&mut joiner, &mut honest, outputs, T0);
    let later = T0.add_millis(1_000);
    joiner.handle_input(later, Input::Gossip { from: honest.peer_id(), bytes: attestation_of(&honest, &key(3)) });
    let outputs = drain(&mut joiner);
    assert!(events(&outputs).iter().any(|event| matches!(
        event,
        Event::SyncStarted { reason: SyncReason::SnapshotRepair, mode: SyncMode::Snapshot, .. }
    )));
    exchange(&mut joiner, &mut honest, outputs, later);
    assert_eq!(joiner.metrics().snapshot_repairs, 1);
    assert_eq!(joiner.fingerprint(), honest.fingerprint(), "repaired from the member that contradicted it");
    // The liar, already in the chain, cannot swap the state back: it is only counted.
    let again = later.add_millis(1_000);
    joiner.handle_input(again, Input::Gossip { from: liar.peer_id(), bytes: attestation_of(&liar, &key(2)) });
    let outputs = drain(&mut joiner);
    assert!(requests(&outputs).is_empty());
    assert_eq!(joiner.metrics().snapshot_disputes, 1);
}

#[test]
fn a_forged_attestation_is_refused_and_counted() {
    let mut a = node(1, one_voucher());
    let member = key(2);
    let mut bytes = signed_heartbeat(&member, vec![], RootHash::hash_of(b"evil"));
    // Flip a bit of the root: the signature no longer covers what is claimed.
    let GossipMessage::V2(GossipV2::Heartbeat(mut heartbeat)) = borsh::from_slice::<GossipMessage>(&bytes).unwrap()
    else {
        unreachable!("a signed heartbeat")
    };
    heartbeat.attestation.attestation.root = RootHash::hash_of(b"other");
    bytes = GossipMessage::encode_v2(GossipV2::Heartbeat(heartbeat));
    a.handle_input(T0, Input::Gossip { from: member.peer_id(), bytes });
    assert!(drain(&mut a).is_empty(), "nothing of the heartbeat is taken");
    let metrics = a.metrics();
    assert_eq!(metrics.attestations_refused.get("bad_signature"), Some(&1));
    assert_eq!((metrics.attestations_taken, metrics.divergences_detected), (0, 0));
}

#[test]
fn an_attestation_from_a_non_member_is_refused_and_counted() {
    let mut a = node(1, Config::default());
    let outsider = key(9);
    let bytes = signed_heartbeat(&outsider, a.dag(&context()).unwrap().heads_vec(), RootHash::hash_of(b"evil"));
    a.handle_input(T0, Input::Gossip { from: outsider.peer_id(), bytes });
    assert!(drain(&mut a).is_empty());
    let metrics = a.metrics();
    assert_eq!(metrics.attestations_refused.get("not_member"), Some(&1));
    assert_eq!((metrics.attestations_taken, metrics.non_member_messages), (0, 1));
    // Nor may a member publish another's statement.
    let relayed = signed_heartbeat(&key(3), vec![], RootHash::hash_of(b"r"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: relayed });
    assert_eq!(a.metrics().attestations_refused.get("misattributed"), Some(&1));
}
