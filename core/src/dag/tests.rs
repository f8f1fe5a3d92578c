use super::*;
use crate::testing::{DeltaFactory, FailingApplier, KvCounterApplier, KvOp, NoopApplier};
use crate::Limits;

fn context() -> ContextId {
    ContextId::hash_of(b"dag-tests")
}

fn store() -> DagStore {
    DagStore::new_unguarded(context(), DagLimits::from_limits(&Limits::default()))
}

fn store_with(max_pending: usize) -> DagStore {
    let limits = Limits { max_pending_deltas: max_pending, ..Limits::default() };
    DagStore::new_unguarded(context(), DagLimits::from_limits(&limits))
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn applied_ids(outcome: &AddOutcome) -> Vec<DeltaId> {
    match outcome {
        AddOutcome::Applied { cascade, .. } => cascade.clone(),
        other => panic!("expected Applied, got {other:?}"),
    }
}

#[test]
fn linear_chain_applies_in_order_and_keeps_one_head() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let chain = factory.chain(10);
    for delta in &chain {
        assert!(matches!(dag.add(at(0), delta.clone(), &mut NoopApplier), AddOutcome::Applied { .. }));
    }
    assert_eq!(dag.applied_len(), 10);
    assert_eq!(dag.heads_vec(), vec![chain[9].id]);
    assert_eq!(dag.height(&chain[9].id), Some(10));
    dag.check_invariants();
}

#[test]
fn out_of_order_child_waits_then_applies_when_parent_arrives() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let chain = factory.chain(3);
    assert!(matches!(dag.add(at(0), chain[0].clone(), &mut NoopApplier), AddOutcome::Applied { .. }));
    let outcome = dag.add(at(0), chain[2].clone(), &mut NoopApplier);
    assert_eq!(outcome, AddOutcome::Pending { missing: vec![chain[1].id] });
    let outcome = dag.add(at(0), chain[1].clone(), &mut NoopApplier);
    assert_eq!(applied_ids(&outcome), vec![chain[2].id]);
    assert_eq!(dag.heads_vec(), vec![chain[2].id]);
    assert_eq!(dag.pending_len(), 0);
    dag.check_invariants();
}

#[test]
fn duplicate_is_reported_whether_applied_or_pending() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let chain = factory.chain(3);
    dag.add(at(0), chain[0].clone(), &mut NoopApplier);
    assert_eq!(dag.add(at(0), chain[0].clone(), &mut NoopApplier), AddOutcome::Duplicate);
    dag.add(at(0), chain[2].clone(), &mut NoopApplier);
    assert_eq!(dag.add(at(0), chain[2].clone(), &mut NoopApplier), AddOutcome::Duplicate);
    assert_eq!(dag.counters().duplicates, 2);
    assert_eq!(dag.pending_len(), 1);
}

#[test]
fn diamond_merges_into_one_head() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let root = factory.make(&[], vec![0]);
    let left = factory.make(&[root.id], vec![1]);
    let right = factory.make(&[root.id], vec![2]);
    let merge = factory.make(&[left.id, right.id], vec![3]);
    // Merge first, then the rest in an awkward order.
    assert!(matches!(dag.add(at(0), merge.clone(), &mut NoopApplier), AddOutcome::Pending { .. }));
    assert!(matches!(dag.add(at(0), right.clone(), &mut NoopApplier), AddOutcome::Pending { .. }));
    assert_eq!(dag.pending_stats(at(0)).missing_parents, 2, "left and root are missing");
    dag.add(at(0), left.clone(), &mut NoopApplier);
    let outcome = dag.add(at(0), root.clone(), &mut NoopApplier);
    let mut cascade = applied_ids(&outcome);
    assert_eq!(cascade.pop(), Some(merge.id), "merge applies last, after both sides");
    cascade.sort();
    let mut sides = vec![left.id, right.id];
    sides.sort();
    assert_eq!(cascade, sides);
    assert_eq!(dag.heads_vec(), vec![merge.id]);
    assert_eq!(dag.height(&merge.id), Some(3));
    dag.check_invariants();
}

#[test]
fn two_hundred_branches_merge_into_one_head() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let root = factory.make(&[], vec![]);
    dag.add(at(0), root.clone(), &mut NoopApplier);
    let branches: Vec<DeltaRef> = (0..200u32).map(|i| factory.make(&[root.id], i.to_le_bytes().to_vec())).collect();
    for branch in &branches {
        dag.add(at(0), branch.clone(), &mut NoopApplier);
    }
    assert_eq!(dag.heads().len(), 200);
    let merge = factory.make(&branches.iter().map(|b| b.id).collect::<Vec<_>>(), vec![]);
    assert!(matches!(dag.add(at(0), merge.clone(), &mut NoopApplier), AddOutcome::Applied { .. }));
    assert_eq!(dag.heads_vec(), vec![merge.id]);
    dag.check_invariants();
}

#[test]
fn deep_pending_chain_resolves_in_one_cascade() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let chain = factory.chain(2_000);
    for delta in chain.iter().skip(1).rev() {
        assert!(matches!(dag.add(at(0), delta.clone(), &mut NoopApplier), AddOutcome::Pending { .. }));
    }
    assert_eq!(dag.pending_stats(at(0)).missing_parents, 1);
    let outcome = dag.add(at(0), chain[0].clone(), &mut NoopApplier);
    assert_eq!(applied_ids(&outcome).len(), 1_999);
    assert_eq!(dag.heads_vec(), vec![chain[1_999].id]);
    assert_eq!(dag.pending_len(), 0);
    dag.check_invariants();
}

#[test]
fn late_parent_releases_many_children() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let root = factory.make(&[], vec![]);
    let parent = factory.make(&[root.id], vec![]);
    dag.add(at(0), root.clone(), &mut NoopApplier);
    let children: Vec<DeltaRef> = (0..500u32).map(|i| factory.make(&[parent.id], i.to_le_bytes().to_vec())).collect();
    for child in &children {
        assert_eq!(dag.add(at(0), child.clone(), &mut NoopApplier), AddOutcome::Pending { missing: vec![parent.id] });
    }
    assert_eq!(dag.pending_stats(at(0)).missing_parents, 1);
    let outcome = dag.add(at(0), parent.clone(), &mut NoopApplier);
    assert_eq!(applied_ids(&outcome).len(), 500);
    assert_eq!(dag.heads().len(), 500);
    dag.check_invariants();
}

#[test]
fn failed_application_is_quarantined_whole_and_retried_on_request() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let mut applier = FailingApplier::<KvCounterApplier>::default();
    let root = factory.make(&[], KvOp::encode(&[KvOp::Set { key: b"a".to_vec(), value: b"1".to_vec() }]));
    let bad = factory.make(&[root.id], KvOp::encode(&[KvOp::Set { key: b"b".to_vec(), value: b"2".to_vec() }]));
    let child = factory.make(&[bad.id], KvOp::encode(&[KvOp::Set { key: b"c".to_vec(), value: b"3".to_vec() }]));
    applier.failing.insert(bad.id);

    dag.add(at(0), root.clone(), &mut applier);
    let root_hash_before = applier.root_hash(&context());
    assert!(matches!(dag.add(at(0), bad.clone(), &mut applier), AddOutcome::Quarantined(_)));
    // Never half-known: not applied, not a head, state untouched, but a re-delivery is a duplicate.
    assert!(!dag.is_applied(&bad.id));
    assert_eq!(dag.heads_vec(), vec![root.id]);
    assert_eq!(applier.root_hash(&context()), root_hash_before);
    assert_eq!(dag.add(at(0), bad.clone(), &mut applier), AddOutcome::Duplicate);
    assert_eq!(dag.quarantined(&bad.id).map(|q| q.attempts), Some(1));
    // Its child waits, and the quarantined parent is not reported as missing (we hold it).
    assert_eq!(dag.add(at(0), child.clone(), &mut applier), AddOutcome::Pending { missing: vec![] });
    assert_eq!(dag.missing_parents(None, 10).ids, Vec::<DeltaId>::new());

    // A retry that fails again keeps it quarantined and counts the attempt.
    assert!(dag.retry_quarantined(at(1), &mut applier).applied.is_empty());
    assert_eq!(dag.quarantined(&bad.id).map(|q| q.attempts), Some(2));

    // Regression (found in review): a released child that fails in the retry's cascade is
    // reported as quarantined, so its pending row can be forgotten.
    applier.failing.remove(&bad.id);
    applier.failing.insert(child.id);
    let retried = dag.retry_quarantined(at(2), &mut applier);
    assert_eq!((retried.applied, retried.quarantined), (vec![bad.id], vec![child.id]));
    assert!(!dag.is_pending(&child.id));

    applier.failing.clear();
    assert_eq!(dag.retry_quarantined(at(3), &mut applier).applied, vec![child.id]);
    assert_eq!(dag.quarantined_len(), 0);
    assert_eq!(dag.heads_vec(), vec![child.id]);
    assert_eq!(applier.inner.get(&context(), b"c"), Some(&b"3"[..]));
    dag.check_invariants();
}

#[test]
fn failure_inside_a_cascade_quarantines_only_that_branch() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let mut applier = FailingApplier::<NoopApplier>::default();
    let root = factory.make(&[], vec![]);
    let good = factory.make(&[root.id], vec![1]);
    let bad = factory.make(&[root.id], vec![2]);
    applier.failing.insert(bad.id);
    dag.add(at(0), good.clone(), &mut applier);
    dag.add(at(0), bad.clone(), &mut applier);
    match dag.add(at(0), root.clone(), &mut applier) {
        AddOutcome::Applied { cascade, quarantined } => {
            assert_eq!(cascade, vec![good.id]);
            assert_eq!(quarantined, vec![bad.id]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(dag.counters().quarantined, 1);
    dag.check_invariants();
}

#[test]
fn stale_pending_deltas_are_dropped_by_age() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let old = factory.make(&[DeltaId::hash_of(b"never")], vec![1]);
    let young = factory.make(&[DeltaId::hash_of(b"never")], vec![2]);
    dag.add(at(0), old.clone(), &mut NoopApplier);
    dag.add(at(200), young.clone(), &mut NoopApplier);
    assert_eq!(dag.pending_stats(at(250)).oldest_age_ms, Some(250_000));
    assert_eq!(dag.cleanup_stale(at(299), 300_000), 0);
    assert_eq!(dag.cleanup_stale(at(300), 300_000), 1);
    assert!(!dag.is_known(&old.id));
    assert!(dag.is_known(&young.id));
    assert_eq!(dag.counters().pending_evicted_stale, 1);
    assert_eq!(dag.pending_stats(at(300)).oldest_age_ms, Some(100_000));
    dag.check_invariants();
}

/// Arrival times are kept monotone: a delta added with an earlier `now` than the one before is
/// recorded at the later time, so the oldest-first cleanup (which stops at the first young
/// entry) never skips a stale one behind it.
#[test]
fn an_earlier_now_is_recorded_as_the_latest_arrival_time() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let first = factory.make(&[DeltaId::hash_of(b"never")], vec![1]);
    let second = factory.make(&[DeltaId::hash_of(b"never")], vec![2]);
    dag.add(at(100), first, &mut NoopApplier);
    dag.add(at(50), second, &mut NoopApplier);
    dag.check_invariants();
    assert_eq!(dag.pending_stats(at(120)).oldest_age_ms, Some(20_000));
    assert_eq!(dag.cleanup_stale(at(399), 300_000), 0);
    assert_eq!(dag.cleanup_stale(at(400), 300_000), 2);
    dag.check_invariants();
}

#[test]
fn pending_cap_evicts_oldest_first_and_counts() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store_with(3);
    let orphans: Vec<DeltaRef> =
        (0..5u32).map(|i| factory.make(&[DeltaId::hash_of(&i.to_le_bytes())], vec![])).collect();
    for (second, orphan) in orphans.iter().enumerate() {
        dag.add(at(second as u64), orphan.clone(), &mut NoopApplier);
    }
    assert_eq!(dag.pending_len(), 3);
    assert_eq!(dag.counters().pending_evicted_capacity, 2);
    assert!(!dag.is_known(&orphans[0].id) && !dag.is_known(&orphans[1].id));
    assert!(orphans[2..].iter().all(|orphan| dag.is_known(&orphan.id)));
    // The evicted deltas' parents are no longer reported missing.
    assert_eq!(dag.pending_stats(at(5)).missing_parents, 3);
    dag.check_invariants();
}

#[test]
fn missing_parents_are_paginated_in_sorted_order() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let mut expected: Vec<DeltaId> = (0..25u32).map(|i| DeltaId::hash_of(&i.to_le_bytes())).collect();
    for parent in &expected {
        dag.add(at(0), factory.make(&[*parent], vec![]), &mut NoopApplier);
    }
    // A pending delta waiting on another pending one: that parent is not "missing".
    let pending_parent = factory.make(&[expected[0]], vec![9]);
    dag.add(at(0), pending_parent.clone(), &mut NoopApplier);
    dag.add(at(0), factory.make(&[pending_parent.id], vec![]), &mut NoopApplier);
    expected.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = dag.missing_parents(after.as_ref(), 10);
        assert!(page.ids.len() <= 10);
        seen.extend(page.ids);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

fn collect_since(dag: &DagStore, known: &[DeltaId], page_size: usize) -> Vec<DeltaId> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = dag.deltas_since(known, None, after, page_size, usize::MAX, usize::MAX).unwrap();
        assert!(page.deltas.len() <= page_size);
        ids.extend(page.deltas.iter().map(|d| d.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

#[test]
fn deltas_since_pages_keep_every_branch_in_causal_order() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let base = factory.chain(5);
    for delta in &base {
        dag.add(at(0), delta.clone(), &mut NoopApplier);
    }
    // Three branches of different lengths off the base head, plus a merge of two of them.
    let mut tips = Vec::new();
    let mut new_ids = Vec::new();
    for (branch, len) in [4usize, 7, 2].into_iter().enumerate() {
        let mut tip = base[4].id;
        for step in 0..len {
            let delta = factory.make(&[tip], vec![branch as u8, step as u8]);
            dag.add(at(0), delta.clone(), &mut NoopApplier);
            new_ids.push(delta.id);
            tip = delta.id;
        }
        tips.push(tip);
    }
    let merge = factory.make(&[tips[0], tips[1]], vec![99]);
    dag.add(at(0), merge.clone(), &mut NoopApplier);
    new_ids.push(merge.id);

    for page_size in [1, 2, 3, 5, 100] {
        let got = collect_since(&dag, &[base[4].id], page_size);
        let mut sorted_got = got.clone();
        sorted_got.sort();
        let mut sorted_expected = new_ids.clone();
        sorted_expected.sort();
        assert_eq!(sorted_got, sorted_expected, "page size {page_size}");
        // Causal: every delta's parents come earlier in the stream or were known.
        let mut have: std::collections::BTreeSet<DeltaId> = base.iter().map(|d| d.id).collect();
        for id in &got {
            assert!(dag.get(id).unwrap().parents.iter().all(|p| have.contains(p)), "parent after child");
            have.insert(*id);
        }
    }
    // A peer that already has one branch only gets the others.
    let got = collect_since(&dag, &[tips[2]], 4);
    assert_eq!(got.len(), 4 + 7 + 1);
    // Peer knows everything: empty.
    assert!(collect_since(&dag, &dag.heads_vec(), 4).is_empty());
}

#[test]
fn deltas_since_answers_for_wanted_ids_only() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let chain = factory.chain(10);
    for delta in &chain {
        dag.add(at(0), delta.clone(), &mut NoopApplier);
    }
    let page = dag.deltas_since(&[chain[2].id], Some(&[chain[5].id]), None, 100, usize::MAX, usize::MAX).unwrap();
    let ids: Vec<DeltaId> = page.deltas.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![chain[3].id, chain[4].id, chain[5].id]);
    assert_eq!(page.gap_total, 3);
}

#[test]
fn deltas_since_respects_byte_budget_and_scan_bound() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store();
    let chain = factory.chain(20);
    for delta in &chain {
        dag.add(at(0), delta.clone(), &mut NoopApplier);
    }
    let one = chain[1].encoded_len();
    let page = dag.deltas_since(&[], None, None, 100, one * 3, usize::MAX).unwrap();
    assert_eq!(page.deltas.len(), 3);
    assert_eq!(page.gap_total, 20);
    assert_eq!(
        dag.deltas_since(&[], None, None, 100, usize::MAX, 10).unwrap_err(),
        SinceError::GapTooLarge { max_scan: 10 }
    );
}

#[test]
fn checkpoint_adoption_keeps_local_deltas_the_snapshot_lacks() {
    let mut factory = DeltaFactory::unsigned(context());
    let chain = factory.chain(6);
    // The serving side has 0..4; we have 0..2 plus a local branch off 1, plus a pending orphan.
    let mut server = store();
    for delta in &chain[..5] {
        server.add(at(0), delta.clone(), &mut NoopApplier);
    }
    let mut ours = store();
    for delta in &chain[..3] {
        ours.add(at(0), delta.clone(), &mut NoopApplier);
    }
    let local = factory.make(&[chain[1].id], vec![42]);
    ours.add(at(0), local.clone(), &mut NoopApplier);
    ours.add(at(0), chain[5].clone(), &mut NoopApplier); // waits for chain[4]

    let replay = ours.adopt_checkpoint(&server.checkpoint(), &server.heads_vec(), &Limits::default()).unwrap();
    assert_eq!(replay.iter().map(|d| d.id).collect::<Vec<_>>(), vec![local.id, chain[5].id]);
    assert_eq!(ours.heads_vec(), vec![chain[4].id]);
    for delta in replay {
        ours.add(at(0), delta, &mut NoopApplier);
    }
    let mut heads = vec![local.id, chain[5].id];
    heads.sort();
    assert_eq!(ours.heads_vec(), heads);
    // Bodies we held survive adoption; ones we never had are snapshot-only.
    assert!(ours.get(&chain[0].id).is_some());
    assert!(ours.get(&chain[3].id).is_none() && ours.is_applied(&chain[3].id));
    ours.check_invariants();
    // Serving from snapshot-only history must say so instead of sending a partial gap.
    assert_eq!(
        ours.deltas_since(&[chain[0].id], None, None, 100, usize::MAX, usize::MAX).unwrap_err(),
        SinceError::SnapshotRequired
    );
    // But a gap above the snapshot is served exactly: the adopted structure paints "theirs".
    let page = ours.deltas_since(&[chain[4].id], None, None, 100, usize::MAX, usize::MAX).unwrap();
    let mut ids: Vec<DeltaId> = page.deltas.iter().map(|d| d.id).collect();
    ids.sort();
    assert_eq!(ids, heads);
}

#[test]
fn malformed_checkpoints_are_refused_and_change_nothing() {
    let mut factory = DeltaFactory::unsigned(context());
    let chain = factory.chain(3);
    let mut server = store();
    for delta in &chain {
        server.add(at(0), delta.clone(), &mut NoopApplier);
    }
    let good = server.checkpoint();
    let mut dag = store();
    dag.add(at(0), chain[0].clone(), &mut NoopApplier);

    let head = DeltaId::hash_of(b"head");
    assert_eq!(dag.adopt_checkpoint(&good, &[head], &Limits::default()).unwrap_err(), AdoptError::HeadsMismatch);
    assert_eq!(dag.adopt_checkpoint(&good, &[chain[1].id], &Limits::default()).unwrap_err(), AdoptError::HeadsMismatch);
    let reversed: Vec<DeltaHeader> = good.iter().rev().cloned().collect();
    assert_eq!(
        dag.adopt_checkpoint(&reversed, &[chain[2].id], &Limits::default()).unwrap_err(),
        AdoptError::ParentAfterChild(chain[2].id)
    );
    let doubled: Vec<DeltaHeader> = good.iter().chain(good.iter()).cloned().collect();
    assert!(matches!(
        dag.adopt_checkpoint(&doubled, &[chain[2].id], &Limits::default()),
        Err(AdoptError::DuplicateEntry(_))
    ));
    assert_eq!(dag.heads_vec(), vec![chain[0].id]);
    assert_eq!(dag.applied_len(), 1);
    assert!(dag.adopt_checkpoint(&good, &[chain[2].id], &Limits::default()).unwrap().is_empty());
    dag.check_invariants();
}

#[test]
fn wrong_context_and_oversized_parent_lists_are_rejected() {
    let mut other = DeltaFactory::unsigned(ContextId::hash_of(b"other"));
    let mut dag = store();
    assert_eq!(
        dag.add(at(0), other.make(&[], vec![]), &mut NoopApplier),
        AddOutcome::Rejected(RejectReason::WrongContext)
    );
    let limits = Limits { max_parents_per_delta: 1, ..Limits::default() };
    let mut dag = DagStore::new(context(), DagLimits::from_limits(&limits));
    let mut factory = DeltaFactory::unsigned(context());
    let delta = factory.make(&[DeltaId::hash_of(b"a"), DeltaId::hash_of(b"b")], vec![]);
    assert!(matches!(
        dag.add(at(0), delta, &mut NoopApplier),
        AddOutcome::Rejected(RejectReason::TooManyParents { .. })
    ));
    assert_eq!(dag.applied_len() + dag.pending_len(), 0);
}

#[test]
fn hundred_thousand_chain_in_reverse_order_fits_the_default_test_stack() {
    // Runs on the test harness thread (2 MiB stack): the cascade must be iterative.
    let mut factory = DeltaFactory::unsigned(context());
    let mut dag = store_with(200_000);
    let chain = factory.chain(100_000);
    for delta in chain.iter().rev() {
        dag.add(at(0), delta.clone(), &mut NoopApplier);
    }
    assert_eq!(dag.applied_len(), 100_000);
    assert_eq!(dag.pending_len(), 0);
    assert_eq!(dag.heads_vec(), vec![chain[99_999].id]);
}

#[test]
fn known_sample_lets_a_server_missing_our_newest_deltas_send_only_a_small_gap() {
    let mut factory = DeltaFactory::unsigned(context());
    let mut ours = store();
    let mut server = store();
    let history = factory.chain(3_000);
    for delta in &history {
        ours.add(at(0), delta.clone(), &mut NoopApplier);
        server.add(at(0), delta.clone(), &mut NoopApplier);
    }
    // Two branches only we hold (unpublished writes), and a newer stretch only the server has.
    let mut our_tip = history[2_999].id;
    for step in 0..40u16 {
        let delta = factory.make(&[our_tip], step.to_le_bytes().to_vec());
        ours.add(at(0), delta.clone(), &mut NoopApplier);
        our_tip = delta.id;
    }
    let side = factory.make(&[history[2_990].id], b"side".to_vec());
    ours.add(at(0), side, &mut NoopApplier);
    let mut server_tip = history[2_999].id;
    for step in 0..10u16 {
        let delta = factory.make(&[server_tip], [b"s".as_slice(), &step.to_le_bytes()].concat());
        server.add(at(0), delta.clone(), &mut NoopApplier);
        server_tip = delta.id;
    }
    ours.check_invariants();
    let sample = ours.known_sample(64);
    assert!(sample.len() <= 64);
    assert!(sample.iter().all(|id| ours.is_applied(id)), "only deltas we hold");
    assert_eq!(&sample[..2], ours.heads_vec().as_slice(), "heads first");
    let page = server.deltas_since(&sample, None, None, 10_000, usize::MAX, 100_000).unwrap();
    // The nearest sampled height the server knows lies at most twice our 40-delta lead below
    // our top: it resends at most that much of the shared chain, never the 3,000.
    assert!((10..=10 + 2 * 40).contains(&page.gap_total), "gap {}", page.gap_total);
}
