//! Evidence of peers ahead: deferred when it arrives too soon, announced after a sync, and
//! dropped when the peer cannot deliver.

use super::sync::{events, heartbeat_of, write_many};
use super::*;
use crate::sync::SyncReason;
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

/// `a` holds the first two of `b`'s ten deltas, connects, and catches up by a direct fetch.
fn caught_up_pair() -> (Node<KvCounterApplier>, Node<KvCounterApplier>) {
    let mut b = node(2, quiet());
    let mut a = node(1, quiet());
    let broadcasts = write_many(&mut b, 10);
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

#[test]
fn a_sync_that_brings_deltas_announces_our_heads_at_most_once_per_interval() {
    let (mut a, mut b) = caught_up_pair();
    assert_eq!(a.metrics().heads_announced, 1, "eight deltas came: announced");
    write_many(&mut b, 3);
    let soon = T0.add_millis(300);
    a.handle_input(soon, Input::Gossip { from: b.peer_id(), bytes: heartbeat_of(&b) });
    let outputs = drain(&mut a);
    exchange(&mut a, &mut b, outputs, soon);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.metrics().heads_announced, 1, "within the announce interval: not again");
}

#[test]
fn evidence_that_arrives_too_soon_is_acted_on_once_the_interval_passes() {
    let (mut a, mut b) = caught_up_pair();
    write_many(&mut b, 3);
    // The last sync started at T0; the evidence interval is 250 ms.
    let early = T0.add_millis(100);
    a.handle_input(early, Input::Gossip { from: b.peer_id(), bytes: heartbeat_of(&b) });
    assert_eq!(sync_started(&drain(&mut a)), None, "too soon after the last start");
    let due = T0.add_millis(Config::default().sync_evidence_min_interval_ms);
    assert_eq!(a.poll_timeout(), due, "the deferred evidence sets the next wake-up");
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
        root: b.root_hash(&context()),
        heads,
        applied_count: dag.applied_len() as u64,
    }));
    let later = T0.add_millis(1_000);
    a.handle_input(later, Input::Gossip { from: b.peer_id(), bytes: claim });
    let outputs = drain(&mut a);
    assert_eq!(sync_started(&outputs), Some(SyncReason::HeartbeatAhead));
    exchange(&mut a, &mut b, outputs, later);
    let after = a.poll_timeout();
    assert!(after > later.add_millis(1_000), "no evidence left to act on: next wake-up {after:?}");
    a.handle_input(later.add_millis(1_000), Input::Timeout);
    assert_eq!(sync_started(&drain(&mut a)), None);
}
