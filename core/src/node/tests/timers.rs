use super::*;
use crate::eviction::EvictionPhase;
use crate::testing::TestNode;
use crate::{BlobId, Event};

/// Runs `node`'s timers until `until`, returning every output.
fn run_timers(node: &mut TestNode<KvCounterApplier>, until: Timestamp) -> Vec<(Timestamp, Output)> {
    let mut outputs = Vec::new();
    loop {
        let at = node.poll_timeout();
        if at > until {
            return outputs;
        }
        node.handle_input(at, Input::Timeout);
        outputs.extend(drain(node).into_iter().map(|output| (at, output)));
    }
}

#[test]
fn heartbeats_go_out_every_thirty_seconds_after_a_jittered_start() {
    let mut a = node(1, Config::default());
    assert!(a.poll_timeout() <= T0.add_millis(10_000), "first sync tick within one interval");
    let beats: Vec<Timestamp> = run_timers(&mut a, T0.add_millis(120_000))
        .into_iter()
        .filter(|(_, output)| matches!(output, Output::Broadcast { .. }))
        .map(|(at, _)| at)
        .collect();
    assert!(beats[0] <= T0.add_millis(30_000));
    assert!(beats.windows(2).all(|pair| pair[1].saturating_since(pair[0]).as_millis() == 30_000));
    assert_eq!(a.metrics().heartbeats_sent, beats.len() as u64);
}

/// Regression: a heartbeat was the same bytes whenever the context had not changed, and
/// gossip ids are the hash of the bytes, so gossipsub refused to publish a quiet node's
/// heartbeats after the first. Each one now names its sender and a growing sequence.
#[test]
fn an_idle_node_sends_a_distinct_heartbeat_every_time() {
    let mut a = node(1, Config::default());
    let beats: Vec<Vec<u8>> = run_timers(&mut a, T0.add_millis(120_000))
        .into_iter()
        .filter_map(|(_, output)| match output {
            Output::Broadcast { bytes, .. } => Some(bytes),
            _ => None,
        })
        .collect();
    assert!(beats.len() >= 4);
    let distinct: std::collections::BTreeSet<&Vec<u8>> = beats.iter().collect();
    assert_eq!(distinct.len(), beats.len(), "every heartbeat is a new message");
    let sequences: Vec<u64> = beats
        .iter()
        .map(|bytes| match GossipMessage::decode(bytes, &Default::default()) {
            Ok(crate::wire::Gossip::SignedHeartbeat(signed)) => {
                assert_eq!(signed.attestation.verify(), Ok(()));
                let heartbeat = signed.heartbeat();
                assert_eq!(heartbeat.sender, a.peer_id());
                heartbeat.sequence
            }
            other => panic!("not a heartbeat: {other:?}"),
        })
        .collect();
    assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]));
    // A restarted node starts from its clock, past every sequence it sent before.
    let mut restarted = node(1, Config::default());
    restarted.handle_input(T0.add_millis(120_001), Input::Timeout);
    let later = run_timers(&mut restarted, T0.add_millis(200_000));
    let first = later.iter().find_map(|(_, output)| match output {
        Output::Broadcast { bytes, .. } => match GossipMessage::decode(bytes, &Default::default()) {
            Ok(crate::wire::Gossip::SignedHeartbeat(heartbeat)) => Some(heartbeat.heartbeat().sequence),
            _ => None,
        },
        _ => None,
    });
    assert!(first.unwrap() > *sequences.last().unwrap());
}

#[test]
fn a_replayed_heartbeat_cannot_roll_a_peers_view_back() {
    let mut a = node(1, Config::default());
    let mut b = node(2, Config::default());
    let peer = b.peer_id();
    let old = super::sync::heartbeat_of(&b);
    a.handle_input(T0, Input::Gossip { from: peer, bytes: old.clone() });
    b.local_delta(T0, context(), set("k", "v")).unwrap();
    let newer = GossipMessage::encode_v1(GossipV1::Heartbeat(crate::wire::Heartbeat {
        context: context(),
        sender: peer,
        sequence: u64::MAX,
        root: b.root_hash(&context()),
        heads: b.dag(&context()).unwrap().heads_vec(),
        applied_count: 1,
    }));
    a.handle_input(T0, Input::Gossip { from: peer, bytes: newer });
    a.handle_input(T0, Input::Gossip { from: peer, bytes: old });
    assert_eq!(a.metrics().heartbeats_replayed, 1);
    assert_eq!(a.metrics().heartbeats_received, 3);
}

#[test]
fn a_heartbeat_naming_another_sender_is_ignored_and_counted() {
    let mut a = node(1, Config::default());
    let b = node(2, Config::default());
    let forged = super::sync::heartbeat_of(&b);
    a.handle_input(T0, Input::Gossip { from: key(3).peer_id(), bytes: forged });
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.metrics().heartbeats_misattributed, 1);
    assert_eq!(a.metrics().heartbeats_received, 1);
}

#[test]
fn stale_pending_deltas_are_cleaned_up_by_the_minute_timer() {
    let mut a = node(1, Config::default());
    let mut factory = author(2);
    let orphan = factory.make(&[crate::DeltaId::hash_of(b"lost")], set("k", "v"));
    a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(&orphan) });
    drain(&mut a);
    let outputs = run_timers(&mut a, T0.add_millis(299_999));
    assert!(outputs.iter().all(|(_, o)| !matches!(o, Output::Event(Event::PendingEvicted { .. }))));
    assert_eq!(a.pending_stats(&context()).unwrap().count, 1);
    let outputs = run_timers(&mut a, T0.add_millis(360_000));
    let evicted: Vec<Timestamp> = outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::Event(Event::PendingEvicted { ids, .. }) if ids == &vec![orphan.id]))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(evicted, vec![T0.add_millis(300_000)]);
    assert_eq!(a.metrics().pending_evicted_stale, 1);
}

#[test]
fn blob_eviction_runs_every_five_minutes_through_all_three_phases() {
    let mut a = node(1, Config::default());
    for n in 0..110u8 {
        a.handle_input(T0, Input::BlobCached { id: BlobId::from_bytes([n; 32]), size_bytes: 1024 });
    }
    // Keep 105 of them fresh; 5 go idle for five minutes.
    for n in 5..110u8 {
        a.handle_input(T0.add_millis(299_000), Input::BlobAccessed { id: BlobId::from_bytes([n; 32]) });
    }
    let evictions: Vec<Vec<(BlobId, EvictionPhase)>> = run_timers(&mut a, T0.add_millis(300_000))
        .into_iter()
        .filter_map(|(_, output)| if let Output::EvictBlobs { blobs } = output { Some(blobs) } else { None })
        .collect();
    assert_eq!(evictions.len(), 1);
    let phases: Vec<EvictionPhase> = evictions[0].iter().map(|(_, phase)| *phase).collect();
    assert_eq!(phases.iter().filter(|p| **p == EvictionPhase::Age).count(), 5);
    assert_eq!(phases.iter().filter(|p| **p == EvictionPhase::Count).count(), 5);
    assert_eq!(a.metrics().blobs_evicted, 10);
}

#[test]
fn tracking_more_blobs_than_the_bound_evicts_at_once() {
    let config = Config {
        limits: crate::Limits { max_tracked_blobs: 10, max_cached_blobs: 4, ..Default::default() },
        ..Config::default()
    };
    let mut a = node(1, config);
    for n in 0..11u8 {
        a.handle_input(T0, Input::BlobCached { id: BlobId::from_bytes([n; 32]), size_bytes: 1 });
    }
    let outputs = drain(&mut a);
    assert!(outputs.iter().any(|o| matches!(o, Output::EvictBlobs { blobs } if blobs.len() == 7)));
}

#[test]
fn a_transiently_failing_delta_is_retried_by_the_cleanup_timer() {
    use crate::testing::FailingApplier;
    let mut a = TestNode::new(Config::default(), key(1), 1, FailingApplier::<KvCounterApplier>::default(), T0);
    a.join_context(&genesis()).unwrap();
    let mut factory = author(2);
    let flaky = factory.make(&[], set("a", "1"));
    let child = factory.make(&[flaky.id], set("b", "2"));
    a.applier_mut().failing.insert(flaky.id);
    for delta in [&flaky, &child] {
        a.handle_input(T0, Input::Gossip { from: key(2).peer_id(), bytes: gossip(delta) });
    }
    assert_eq!(a.dag(&context()).unwrap().quarantined_len(), 1);
    a.applier_mut().failing.clear(); // the disk has room again
    loop {
        let at = a.poll_timeout();
        if at > T0.add_millis(60_000) {
            break;
        }
        a.handle_input(at, Input::Timeout);
        while a.poll_output().is_some() {}
    }
    let dag = a.dag(&context()).unwrap();
    assert_eq!((dag.quarantined_len(), dag.pending_len(), dag.applied_len()), (0, 0, 3), "with the genesis");
    assert_eq!(a.metrics().quarantine_recovered, 2, "the delta and the child it released");
}

/// Two clocks: a wall-clock step, either way, moves no timer and no deadline (they run on the
/// monotonic clock), while the HLC and the drift bound on remote deltas follow the wall clock.
#[test]
fn a_wall_clock_step_moves_no_timer_and_the_hlc_follows_the_wall_clock() {
    let hour_ms = 3_600_000;
    let mut a = node(1, Config::default());
    let first_wake = a.poll_timeout();
    let at = |monotonic: Timestamp, wall_ms: u64| crate::Clocks::new(monotonic, wall_ms);
    // The wall clock jumps an hour ahead while monotonic time stands: nothing is due.
    a.handle_input(at(T0, T0.as_millis() + hour_ms), Input::Timeout);
    assert!(drain(&mut a).is_empty(), "a wall-clock jump fires no timer");
    assert_eq!(a.poll_timeout(), first_wake);
    // A remote delta stamped at the new wall time is within the drift bound.
    let stamp = crate::Hlc { physical_ms: T0.as_millis() + hour_ms, logical: 0, node: 2 };
    let ahead: crate::DeltaRef = std::sync::Arc::new(sealed_delta(2, vec![genesis().id], stamp, &set("x", "y")));
    // The same delta is an hour ahead of a node whose wall clock did not jump, however much
    // monotonic time passed: refused.
    let mut b = node(3, Config::default());
    b.handle_input(
        at(T0.add_millis(hour_ms), T0.as_millis()),
        Input::Gossip { from: key(2).peer_id(), bytes: gossip(&ahead) },
    );
    a.handle_input(at(T0, T0.as_millis() + hour_ms), Input::Gossip { from: key(2).peer_id(), bytes: gossip(&ahead) });
    assert!(a.dag(&context()).unwrap().is_applied(&ahead.id), "judged against the wall clock");
    assert!(!b.dag(&context()).unwrap().is_known(&ahead.id), "judged against the wall clock, not the monotonic one");
    // The wall clock steps back two hours: the HLC does not, and timers still fire on time.
    let behind_ms = T0.as_millis() - hour_ms;
    let hlc = a.next_local_hlc(at(T0, behind_ms));
    assert!(hlc > ahead.hlc, "the HLC never goes back: {hlc:?}");
    let id = a.local_delta(at(T0, behind_ms), context(), set("k", "v")).unwrap();
    assert!(a.dag(&context()).unwrap().get(&id).unwrap().hlc > ahead.hlc);
    drain(&mut a);
    a.handle_input(at(first_wake, behind_ms), Input::Timeout);
    assert!(a.poll_timeout() > first_wake, "the first timer fired on the monotonic clock");
}

/// A wall-clock step beyond the drift bound is counted; the slow drift of two clocks is not.
#[test]
fn a_wall_clock_step_is_counted() {
    let mut a = node(1, Config::default());
    let at = |monotonic: Timestamp, wall_ms: u64| crate::Clocks::new(monotonic, wall_ms);
    a.handle_input(at(T0.add_millis(1_000), T0.as_millis() + 1_004), Input::Timeout);
    assert_eq!(a.metrics().wall_clock_steps, 0, "4 ms of drift is no step");
    a.handle_input(at(T0.add_millis(2_000), T0.as_millis() + 60_000), Input::Timeout);
    assert_eq!(a.metrics().wall_clock_steps, 1, "a minute forward is");
    a.handle_input(at(T0.add_millis(3_000), T0.as_millis() + 3_000), Input::Timeout);
    assert_eq!(a.metrics().wall_clock_steps, 2, "and so is the minute back");
}
