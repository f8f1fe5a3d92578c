//! Evidence of peers ahead: deferred when it arrives too soon, announced after a sync, and
//! dropped when the peer cannot deliver.

use super::sync::{events, heartbeat_of, write_many};
use super::*;
use crate::sync::SyncReason;
use crate::testing::TestNode;
use crate::wire::Heartbeat;
use crate::{DeltaId, Event};

/// Timers that stay out of the way: no periodic sync or heartbeat during a test.
fn quiet() -> Config {
    Config { sync_tick_interval_ms: 1_000_000_000, heartbeat_interval_ms: 1_000_000_000, ..Config::default() }
}

fn sync_started(outputs: &[Output]) -> Option<SyncReason> {
    events(outputs).into_iter().find_map(|event| match event {
        Event::SyncStarted { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// `a` holds the first two of `b`'s forty deltas, connects, and catches up by a direct fetch
/// (a backlog of 38).
fn caught_up_pair() -> (TestNode<KvCounterApplier>, TestNode<KvCounterApplier>) {
    let mut b = node(2, quiet());
    let mut a = node(1, quiet());
    let broadcasts = write_many(&mut b, 40);
    for bytes in &broadcasts[..2] {
        a.handle_input(T0, Input::Gossip { from: b.peer_id(), bytes: bytes.clone() });
    }
    drain(&mut a);
    a.handle_input(T0, Input::PeerUp { peer: b.peer_id() });
    let outputs = drain(&mut a);
    assert_eq!(sync_started(&outputs), Some(SyncReason::PeerConnected));
    exchange(&mut a, &mut b, outputs, T0);
    assert_eq!(a.fingerprint(), b.fingerprint());
    (a, b)
}

/// Feeds `b`'s heartbeat to `a` at `at`, then runs the sync the deferred evidence starts.
fn evidence_sync(a: &mut TestNode<KvCounterApplier>, b: &mut TestNode<KvCounterApplier>, at: Timestamp) -> Timestamp {
    a.handle_input(at, Input::Gossip { from: b.peer_id(), bytes: heartbeat_of(b) });
    assert_eq!(sync_started(&drain(a)), None, "evidence waits: the deltas may be in flight");
    let due = a.poll_timeout();
    a.handle_input(due, Input::Timeout);
    let outputs = drain(a);
    assert_eq!(sync_started(&outputs), Some(SyncReason::HeartbeatAhead));
    exchange(a, b, outputs, due);
    due
}

#[test]
fn a_sync_that_brings_a_backlog_announces_our_heads_at_most_once_per_interval() {
    let (mut a, mut b) = caught_up_pair();
    assert_eq!(a.metrics().heads_announced, 1, "a backlog of 38 came: announced");
    write_many(&mut b, 20);
    let due = evidence_sync(&mut a, &mut b, T0.add_millis(10));
    assert!(due < T0.add_millis(Config::default().min_sync_announce_interval_ms));
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.metrics().heads_announced, 1, "within the announce interval: not again");
    write_many(&mut b, 3);
    evidence_sync(&mut a, &mut b, T0.add_millis(5_000));
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.metrics().heads_announced, 1, "three deltas are routine repair, not news");
}

#[test]
fn evidence_that_arrives_too_soon_is_acted_on_once_the_interval_passes() {
    let (mut a, mut b) = caught_up_pair();
    write_many(&mut b, 3);
    // The evidence waits the evidence interval (250 ms) from its arrival, in case the deltas
    // are in flight, and at least that long after the last start (T0).
    let early = T0.add_millis(100);
    a.handle_input(early, Input::Gossip { from: b.peer_id(), bytes: heartbeat_of(&b) });
    assert_eq!(sync_started(&drain(&mut a)), None, "not at once");
    let due = early.add_millis(Config::default().min_sync_evidence_interval_ms);
    assert_eq!(a.poll_timeout(), due, "the deferred evidence sets the next wake-up");
    a.handle_input(Timestamp::from_millis(due.as_millis() - 1), Input::Timeout);
    assert_eq!(sync_started(&drain(&mut a)), None, "not before it is due");
    a.handle_input(due, Input::Timeout);
    let outputs = drain(&mut a);
    assert_eq!(sync_started(&outputs), Some(SyncReason::HeartbeatAhead));
    exchange(&mut a, &mut b, outputs, due);
    assert_eq!(a.fingerprint(), b.fingerprint());
}

#[test]
fn a_peer_that_claims_heads_it_cannot_serve_stops_drawing_syncs() {
    let (mut a, mut b) = caught_up_pair();
    let dag = b.dag(&context()).unwrap();
    let mut heads = dag.heads_vec();
    heads.push(DeltaId::hash_of(b"a head nobody has"));
    let claim = GossipMessage::encode_v1(GossipV1::Heartbeat(Heartbeat {
        context: context(),
        sender: b.peer_id(),
        sequence: 1,
        root: b.root_hash(&context()),
        heads,
        applied_count: dag.applied_len() as u64,
    }));
    let later = T0.add_millis(1_000);
    a.handle_input(later, Input::Gossip { from: b.peer_id(), bytes: claim });
    let due = a.poll_timeout();
    a.handle_input(due, Input::Timeout);
    let outputs = drain(&mut a);
    assert_eq!(sync_started(&outputs), Some(SyncReason::HeartbeatAhead));
    exchange(&mut a, &mut b, outputs, due);
    let after = a.poll_timeout();
    assert!(after > later.add_millis(1_000), "no evidence left to act on: next wake-up {after:?}");
    a.handle_input(later.add_millis(1_000), Input::Timeout);
    assert_eq!(sync_started(&drain(&mut a)), None);
}
