//! Property tests of the DAG store against simple models:
//!
//! - any delivery order, with duplicates, converges to the same heads, root and checkpoint as
//!   applying the deltas in generation order, and every `add` outcome is the one a naive model
//!   of the store predicts;
//! - `deltas_since` pages fill a causally closed gap exactly, in causal order, and the gap for
//!   arbitrary `known` / `wanted` sets is "ancestors of wanted minus ancestors of known";
//! - the pending queue never exceeds its cap, evicts oldest first, and counts what it evicts.

use super::{AddOutcome, DagLimits, DagStore, DeltaHeader, SinceCursor};
use crate::applier::Applier;
use crate::delta::DeltaRef;
use crate::ids::{ContextId, DeltaId, RootHash};
use crate::limits::Limits;
use crate::testing::{DeltaFactory, KvCounterApplier, KvOp};
use crate::time::Timestamp;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Distinct authors, so LWW ties on HLC (every factory counts 1, 2, 3, …) and per-author
/// counters really happen.
const AUTHORS: usize = 3;
const KEYS: u8 = 4;
const MAX_DELTAS: usize = 60;

fn context() -> ContextId {
    ContextId::hash_of(b"dag-convergence-props")
}

fn now() -> Timestamp {
    Timestamp::from_secs(1_000)
}

fn store_with(limits: &Limits) -> DagStore {
    DagStore::new_unguarded(context(), DagLimits::from_limits(limits))
}

/// One operation of a generated payload, over a small key space.
#[derive(Debug, Clone)]
enum OpSpec {
    Set { key: u8, value: u8 },
    Remove { key: u8 },
    Add { key: u8, amount: i8 },
}

impl OpSpec {
    fn to_op(&self) -> KvOp {
        match *self {
            OpSpec::Set { key, value } => KvOp::Set { key: vec![b'k', key], value: vec![value] },
            OpSpec::Remove { key } => KvOp::Remove { key: vec![b'k', key] },
            OpSpec::Add { key, amount } => KvOp::Add { counter: vec![b'c', key], amount: i64::from(amount) },
        }
    }
}

/// One generated delta: its author and its parents as indices of earlier deltas.
#[derive(Debug, Clone)]
struct DeltaSpec {
    author: usize,
    parents: Vec<usize>,
    ops: Vec<OpSpec>,
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        (0..KEYS, any::<u8>()).prop_map(|(key, value)| OpSpec::Set { key, value }),
        (0..KEYS).prop_map(|key| OpSpec::Remove { key }),
        (0..KEYS, any::<i8>()).prop_map(|(key, amount)| OpSpec::Add { key, amount }),
    ]
}

fn delta_spec(index: usize) -> BoxedStrategy<DeltaSpec> {
    // Delta 0 is a root; later ones name 0..=3 earlier deltas (0 makes another root; repeats
    // are allowed and must be deduplicated by the factory).
    let parents = if index == 0 { Just(Vec::new()).boxed() } else { vec(0..index, 0..=3).boxed() };
    (0..AUTHORS, parents, vec(op_spec(), 1..=3))
        .prop_map(|(author, parents, ops)| DeltaSpec { author, parents, ops })
        .boxed()
}

/// A random DAG of 1..=`max` deltas; parents always have smaller indices, so index order is a
/// topological order.
fn dag_plan(max: usize) -> impl Strategy<Value = Vec<DeltaSpec>> {
    (1..=max).prop_flat_map(|n| (0..n).map(delta_spec).collect::<Vec<_>>())
}

/// A delivery of `n` deltas: each 1..=3 times, in random order.
fn delivery(n: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..=3, n).prop_flat_map(|copies| {
        let sequence: Vec<usize> =
            copies.iter().enumerate().flat_map(|(index, &count)| std::iter::repeat_n(index, count)).collect();
        Just(sequence).prop_shuffle()
    })
}

/// The deltas of a plan, signed by `AUTHORS` different keys.
fn build(plan: &[DeltaSpec]) -> Vec<DeltaRef> {
    let mut factories: Vec<DeltaFactory> =
        (1..=AUTHORS as u8).map(|n| DeltaFactory::signed(context(), [n; 32])).collect();
    let mut deltas: Vec<DeltaRef> = Vec::with_capacity(plan.len());
    for spec in plan {
        let parents: Vec<DeltaId> = spec.parents.iter().map(|&parent| deltas[parent].id).collect();
        let ops: Vec<KvOp> = spec.ops.iter().map(OpSpec::to_op).collect();
        deltas.push(factories[spec.author].make(&parents, KvOp::encode(&ops)));
    }
    let distinct: BTreeSet<DeltaId> = deltas.iter().map(|delta| delta.id).collect();
    assert_eq!(distinct.len(), deltas.len(), "generated deltas must have distinct ids");
    deltas
}

/// Parent indices of every delta (deduplicated, in the delta's parent order, i.e. by id).
fn parent_indices(deltas: &[DeltaRef]) -> Vec<Vec<usize>> {
    let index_of: BTreeMap<DeltaId, usize> = deltas.iter().enumerate().map(|(i, delta)| (delta.id, i)).collect();
    deltas.iter().map(|delta| delta.parents.iter().map(|parent| index_of[parent]).collect()).collect()
}

/// Indices of `from` and all their ancestors.
fn ancestors(parents: &[Vec<usize>], from: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<usize> = from.into_iter().collect();
    while let Some(index) = stack.pop() {
        if seen.insert(index) {
            stack.extend(parents[index].iter().copied());
        }
    }
    seen
}

/// Ids of the deltas nobody names as a parent, sorted.
fn oracle_heads(deltas: &[DeltaRef]) -> Vec<DeltaId> {
    let named: BTreeSet<DeltaId> = deltas.iter().flat_map(|delta| delta.parents.iter().copied()).collect();
    let heads: BTreeSet<DeltaId> = deltas.iter().map(|delta| delta.id).filter(|id| !named.contains(id)).collect();
    heads.into_iter().collect()
}

/// 1 + the greatest parent height, by index.
fn oracle_heights(parents: &[Vec<usize>]) -> Vec<u64> {
    let mut heights: Vec<u64> = Vec::with_capacity(parents.len());
    for own in parents {
        let height = own.iter().map(|&parent| heights[parent]).max().unwrap_or(0) + 1;
        heights.push(height);
    }
    heights
}

struct Replica {
    dag: DagStore,
    applier: KvCounterApplier,
}

impl Replica {
    fn new(limits: &Limits) -> Self {
        Self { dag: store_with(limits), applier: KvCounterApplier::default() }
    }

    fn add(&mut self, delta: &DeltaRef) -> AddOutcome {
        self.dag.add(now(), delta.clone(), &mut self.applier)
    }

    fn root(&self) -> RootHash {
        self.applier.root_hash(&context())
    }
}

/// Everything two converged replicas must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    applied: usize,
    pending: usize,
    quarantined: usize,
    heads: Vec<DeltaId>,
    root: RootHash,
    checkpoint: Vec<DeltaHeader>,
}

fn fingerprint(replica: &Replica) -> Fingerprint {
    Fingerprint {
        applied: replica.dag.applied_len(),
        pending: replica.dag.pending_len(),
        quarantined: replica.dag.quarantined_len(),
        heads: replica.dag.heads_vec(),
        root: replica.root(),
        checkpoint: replica.dag.checkpoint(),
    }
}

/// The deltas applied in generation order; every add must apply at once with no cascade.
fn reference(deltas: &[DeltaRef]) -> Result<Replica, TestCaseError> {
    let mut replica = Replica::new(&Limits::default());
    for delta in deltas {
        let outcome = replica.add(delta);
        prop_assert_eq!(outcome, AddOutcome::Applied { cascade: vec![], quarantined: vec![] });
    }
    replica.dag.check_invariants();
    Ok(replica)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Unseen,
    Pending,
    Applied,
}

/// A naive model of one store: per-delta status and the pending queue in arrival order.
struct Model {
    parents: Vec<Vec<usize>>,
    status: Vec<Status>,
    queue: VecDeque<usize>,
    cap: usize,
    evicted: u64,
}

/// What the model says an add should return (cascade as a set: its order is the store's
/// business, but it must be causal, which the caller checks).
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Duplicate,
    Applied { cascade: BTreeSet<usize> },
    Pending { missing: Vec<usize> },
}

impl Model {
    fn new(parents: Vec<Vec<usize>>, cap: usize) -> Self {
        let n = parents.len();
        Self { parents, status: vec![Status::Unseen; n], queue: VecDeque::new(), cap: cap.max(1), evicted: 0 }
    }

    fn add(&mut self, index: usize) -> Expected {
        if self.status[index] != Status::Unseen {
            return Expected::Duplicate;
        }
        if self.parents[index].iter().all(|&parent| self.status[parent] == Status::Applied) {
            self.status[index] = Status::Applied;
            let mut cascade = BTreeSet::new();
            loop {
                let ready: Vec<usize> = self
                    .queue
                    .iter()
                    .copied()
                    .filter(|&waiting| self.parents[waiting].iter().all(|&p| self.status[p] == Status::Applied))
                    .collect();
                if ready.is_empty() {
                    break;
                }
                for waiting in ready {
                    self.status[waiting] = Status::Applied;
                    cascade.insert(waiting);
                }
                self.queue.retain(|waiting| !cascade.contains(waiting));
            }
            return Expected::Applied { cascade };
        }
        while self.queue.len() >= self.cap {
            let oldest = self.queue.pop_front().expect("queue is at a cap of at least one");
            self.status[oldest] = Status::Unseen;
            self.evicted += 1;
        }
        let missing = self.parents[index].iter().copied().filter(|&p| self.status[p] == Status::Unseen).collect();
        self.status[index] = Status::Pending;
        self.queue.push_back(index);
        Expected::Pending { missing }
    }
}

/// Delivers `deltas[index]` to `replica` and checks the outcome and the store against `model`.
fn deliver_checked(
    replica: &mut Replica,
    model: &mut Model,
    deltas: &[DeltaRef],
    index_of: &BTreeMap<DeltaId, usize>,
    index: usize,
) -> Result<(), TestCaseError> {
    let delta = &deltas[index];
    let applied_before = replica.dag.applied_len();
    let expected = model.add(index);
    let outcome = replica.add(delta);
    match (&expected, &outcome) {
        (Expected::Duplicate, AddOutcome::Duplicate) => {}
        (Expected::Applied { cascade: expected_cascade }, AddOutcome::Applied { cascade, quarantined }) => {
            prop_assert!(quarantined.is_empty(), "nothing fails to apply here: {:?}", quarantined);
            let cascade: Vec<usize> = cascade.iter().map(|id| index_of[id]).collect();
            let as_set: BTreeSet<usize> = cascade.iter().copied().collect();
            prop_assert_eq!(as_set.len(), cascade.len(), "cascade repeats a delta: {:?}", cascade);
            prop_assert_eq!(&as_set, expected_cascade, "cascade of delta {}", index);
            // Causal order: each cascaded delta's parents were applied before, or are the
            // delta itself, or come earlier in the cascade.
            let mut done: BTreeSet<usize> = BTreeSet::from([index]);
            for &released in &cascade {
                for parent in &model.parents[released] {
                    prop_assert!(
                        done.contains(parent) || !expected_cascade.contains(parent),
                        "cascade applied {} before its parent {}",
                        released,
                        parent
                    );
                }
                done.insert(released);
            }
            prop_assert_eq!(replica.dag.applied_len(), applied_before + 1 + cascade.len());
            prop_assert!(replica.dag.heads().contains(&delta.id) || !cascade.is_empty());
        }
        (Expected::Pending { missing: expected_missing }, AddOutcome::Pending { missing }) => {
            let missing: Vec<usize> = missing.iter().map(|id| index_of[id]).collect();
            prop_assert_eq!(&missing, expected_missing, "missing parents of delta {}", index);
            prop_assert_eq!(replica.dag.applied_len(), applied_before);
        }
        _ => prop_assert!(false, "delta {}: expected {:?}, got {:?}", index, expected, outcome),
    }
    prop_assert_eq!(replica.dag.pending_len(), model.queue.len());
    prop_assert!(replica.dag.pending_len() <= model.cap);
    prop_assert_eq!(replica.dag.counters().pending_evicted_capacity, model.evicted);
    let missing: BTreeSet<DeltaId> = model
        .queue
        .iter()
        .flat_map(|&waiting| model.parents[waiting].iter().copied())
        .filter(|&parent| model.status[parent] == Status::Unseen)
        .map(|parent| deltas[parent].id)
        .collect();
    let page = replica.dag.missing_parents(None, usize::MAX);
    prop_assert_eq!(page.ids, missing.iter().copied().collect::<Vec<_>>(), "missing parents");
    prop_assert_eq!(page.next, None);
    let stats = replica.dag.pending_stats(now());
    prop_assert_eq!((stats.count, stats.missing_parents), (model.queue.len(), missing.len()));
    for (other, status) in model.status.iter().enumerate() {
        let id = &deltas[other].id;
        prop_assert_eq!(replica.dag.is_applied(id), *status == Status::Applied, "applied status of {}", other);
        prop_assert_eq!(replica.dag.is_known(id), *status != Status::Unseen, "known status of {}", other);
    }
    replica.dag.check_invariants();
    Ok(())
}

fn plan_and_deliveries() -> impl Strategy<Value = (Vec<DeltaSpec>, Vec<Vec<usize>>)> {
    dag_plan(MAX_DELTAS).prop_flat_map(|plan| {
        let n = plan.len();
        (Just(plan), vec(delivery(n), 2..=3))
    })
}

fn plan_with_prefix() -> impl Strategy<Value = (Vec<DeltaSpec>, usize, usize, bool)> {
    dag_plan(MAX_DELTAS).prop_flat_map(|plan| {
        let n = plan.len();
        (Just(plan), 0..=n, 1usize..=7, any::<bool>())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every delivery order, with duplicates, ends in the state of generation-order delivery,
    /// and every outcome on the way is the one the model predicts.
    #[test]
    fn any_delivery_order_with_duplicates_converges((plan, deliveries) in plan_and_deliveries()) {
        let deltas = build(&plan);
        let n = deltas.len();
        let parents = parent_indices(&deltas);
        let index_of: BTreeMap<DeltaId, usize> = deltas.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        let reference = reference(&deltas)?;
        let expected = fingerprint(&reference);
        prop_assert_eq!(&expected.heads, &oracle_heads(&deltas));
        let heights = oracle_heights(&parents);
        for (index, delta) in deltas.iter().enumerate() {
            prop_assert_eq!(reference.dag.height(&delta.id), Some(heights[index]));
        }

        let mut fingerprints = Vec::new();
        for sequence in &deliveries {
            let mut replica = Replica::new(&Limits::default());
            let mut model = Model::new(parents.clone(), Limits::default().max_pending_deltas);
            for &index in sequence {
                deliver_checked(&mut replica, &mut model, &deltas, &index_of, index)?;
            }
            let counters = replica.dag.counters();
            prop_assert_eq!(counters.applied, n as u64);
            prop_assert_eq!(counters.duplicates, (sequence.len() - n) as u64);
            prop_assert_eq!(counters.pending_evicted_capacity, 0);
            prop_assert_eq!(counters.quarantined, 0);
            for (index, delta) in deltas.iter().enumerate() {
                prop_assert_eq!(replica.dag.height(&delta.id), Some(heights[index]));
                prop_assert_eq!(replica.dag.get(&delta.id), Some(delta));
            }
            let got = fingerprint(&replica);
            prop_assert_eq!(got.applied, n);
            prop_assert_eq!(got.pending, 0);
            prop_assert_eq!(&got, &expected);
            fingerprints.push(got);
        }
        for pair in fingerprints.windows(2) {
            prop_assert_eq!(&pair[0], &pair[1]);
        }
    }

    /// A replica holding a causally closed prefix catches up exactly by paging `deltas_since`,
    /// whether it keeps its first heads as `known` or sends its current heads every page.
    #[test]
    fn deltas_since_pages_fill_a_closed_gap_in_causal_order((plan, k, page_size, refresh_known) in plan_with_prefix()) {
        let deltas = build(&plan);
        let n = deltas.len();
        let a = reference(&deltas)?;
        let mut b = Replica::new(&Limits::default());
        for delta in &deltas[..k] {
            let applied = matches!(b.add(delta), AddOutcome::Applied { .. });
            prop_assert!(applied, "a prefix in generation order applies");
        }
        let first_known = b.dag.heads_vec();
        let mut cursor: Option<SinceCursor> = None;
        let mut received: BTreeSet<DeltaId> = BTreeSet::new();
        let mut pages = 0usize;
        loop {
            pages += 1;
            prop_assert!(pages <= n + 1, "paging does not terminate");
            let remaining = n - b.dag.applied_len();
            let known = if refresh_known { b.dag.heads_vec() } else { first_known.clone() };
            let page = a.dag.deltas_since(&known, None, cursor, page_size, usize::MAX, usize::MAX).expect("all bodies held, no scan bound");
            let expected_total = if refresh_known { remaining } else { n - k };
            prop_assert_eq!(page.gap_total, expected_total as u64);
            prop_assert_eq!(page.deltas.len(), remaining.min(page_size), "page {} has the wrong size", pages);
            for delta in &page.deltas {
                prop_assert!(received.insert(delta.id), "delta sent twice");
                let outcome = b.add(delta);
                prop_assert_eq!(outcome, AddOutcome::Applied { cascade: vec![], quarantined: vec![] }, "page out of causal order");
            }
            match page.next {
                None => {
                    prop_assert_eq!(b.dag.applied_len(), n, "last page before the gap was filled");
                    break;
                }
                Some(next) => {
                    let last = page.deltas.last().expect("a page with a successor is not empty");
                    prop_assert_eq!(next, SinceCursor { height: a.dag.height(&last.id).unwrap(), id: last.id });
                    cursor = Some(next);
                }
            }
        }
        let expected_ids: BTreeSet<DeltaId> = deltas[k..].iter().map(|delta| delta.id).collect();
        prop_assert_eq!(received, expected_ids);
        prop_assert_eq!(b.dag.pending_len(), 0);
        prop_assert_eq!(fingerprint(&b), fingerprint(&a));
    }

    /// For arbitrary `known` and `wanted` (unknown ids included), the pages concatenate to the
    /// ancestors of `wanted` (or of the heads) minus the ancestors of `known`, sorted by
    /// (height, id), each page within its delta and byte budgets.
    #[test]
    fn deltas_since_gap_is_wanted_ancestry_minus_known_ancestry(
        plan in dag_plan(MAX_DELTAS),
        known in vec(any::<Index>(), 0..4),
        unknown_in_known in any::<bool>(),
        wanted in proptest::option::of(vec(any::<Index>(), 0..4)),
        unknown_in_wanted in any::<bool>(),
        page_size in 1usize..=7,
        max_bytes in prop_oneof![Just(usize::MAX), 1usize..1_500],
    ) {
        let deltas = build(&plan);
        let n = deltas.len();
        let parents = parent_indices(&deltas);
        let heights = oracle_heights(&parents);
        let a = reference(&deltas)?;
        let unknown = DeltaId::hash_of(b"never applied");

        let known_indices: Vec<usize> = known.iter().map(|index| index.index(n)).collect();
        let mut known_ids: Vec<DeltaId> = known_indices.iter().map(|&i| deltas[i].id).collect();
        if unknown_in_known {
            known_ids.push(unknown);
        }
        let heads: Vec<usize> = {
            let head_ids: BTreeSet<DeltaId> = oracle_heads(&deltas).into_iter().collect();
            (0..n).filter(|&i| head_ids.contains(&deltas[i].id)).collect()
        };
        let wanted_indices: Vec<usize> = match &wanted {
            Some(wanted) => wanted.iter().map(|index| index.index(n)).collect(),
            None => heads,
        };
        let wanted_ids: Option<Vec<DeltaId>> = wanted.as_ref().map(|_| {
            let mut ids: Vec<DeltaId> = wanted_indices.iter().map(|&i| deltas[i].id).collect();
            if unknown_in_wanted {
                ids.push(unknown);
            }
            ids
        });

        let theirs = ancestors(&parents, known_indices);
        let ours = ancestors(&parents, wanted_indices);
        let mut expected: Vec<(u64, DeltaId)> =
            ours.difference(&theirs).map(|&i| (heights[i], deltas[i].id)).collect();
        expected.sort_unstable();
        let expected: Vec<DeltaId> = expected.into_iter().map(|(_, id)| id).collect();

        let mut got: Vec<DeltaId> = Vec::new();
        let mut cursor = None;
        let mut pages = 0usize;
        loop {
            pages += 1;
            prop_assert!(pages <= n + 1, "paging does not terminate");
            let page = a.dag.deltas_since(&known_ids, wanted_ids.as_deref(), cursor, page_size, max_bytes, usize::MAX).expect("all bodies held, no scan bound");
            prop_assert_eq!(page.gap_total, expected.len() as u64);
            prop_assert!(page.deltas.len() <= page_size);
            prop_assert!(!page.deltas.is_empty() || got.len() == expected.len(), "an empty page before the end");
            let bytes: usize = page.deltas.iter().map(|delta| delta.encoded_len()).sum();
            prop_assert!(page.deltas.len() <= 1 || bytes <= max_bytes, "page of {} bytes over {}", bytes, max_bytes);
            got.extend(page.deltas.iter().map(|delta| delta.id));
            match page.next {
                None => break,
                Some(next) => cursor = Some(next),
            }
        }
        prop_assert_eq!(got, expected);
    }

    /// A chain delivered newest first into a small pending queue: the queue keeps the newest
    /// `cap` arrivals, counts every eviction, and the root releases exactly what is left.
    #[test]
    fn reverse_chain_respects_the_pending_cap(len in 1usize..=40, cap in 0usize..=8) {
        let limits = Limits { max_pending_deltas: cap, ..Limits::default() };
        let effective_cap = cap.max(1);
        // `DeltaFactory::chain`'s payloads are not KvOp lists, so build the chain here.
        let mut factory = DeltaFactory::unsigned(context());
        let mut chain: Vec<DeltaRef> = Vec::with_capacity(len);
        for step in 0..len {
            let parents: Vec<DeltaId> = chain.last().map(|last| vec![last.id]).unwrap_or_default();
            let ops = [KvOp::Set { key: b"k".to_vec(), value: (step as u64).to_le_bytes().to_vec() }];
            chain.push(factory.make(&parents, KvOp::encode(&ops)));
        }
        let mut replica = Replica::new(&limits);
        for (step, delta) in chain.iter().enumerate().skip(1).rev() {
            let outcome = replica.add(delta);
            prop_assert_eq!(outcome, AddOutcome::Pending { missing: vec![chain[step - 1].id] });
            prop_assert!(replica.dag.pending_len() <= effective_cap);
            let arrived = len - step;
            prop_assert_eq!(replica.dag.pending_len(), arrived.min(effective_cap));
            prop_assert_eq!(replica.dag.counters().pending_evicted_capacity, arrived.saturating_sub(effective_cap) as u64);
            replica.dag.check_invariants();
        }
        let kept = (len - 1).min(effective_cap);
        let outcome = replica.add(&chain[0]);
        let cascade: Vec<DeltaId> = chain[1..=kept].iter().map(|delta| delta.id).collect();
        prop_assert_eq!(outcome, AddOutcome::Applied { cascade, quarantined: vec![] });
        prop_assert_eq!(replica.dag.applied_len(), 1 + kept);
        prop_assert_eq!(replica.dag.pending_len(), 0);
        prop_assert_eq!(replica.dag.heads_vec(), vec![chain[kept].id]);
        prop_assert_eq!(replica.dag.counters().pending_evicted_capacity, (len - 1 - kept) as u64);
        replica.dag.check_invariants();
        // The evicted deltas are unknown again, so re-delivering them finishes the chain.
        for delta in &chain[kept + 1..] {
            prop_assert!(!replica.dag.is_known(&delta.id));
            prop_assert_eq!(replica.add(delta), AddOutcome::Applied { cascade: vec![], quarantined: vec![] });
        }
        prop_assert_eq!(replica.dag.heads_vec(), vec![chain[len - 1].id]);
    }

    /// Any DAG in any order, with duplicates, into a pending queue of 1..=6: every outcome,
    /// the queue's content and the eviction count follow the oldest-first model, and after
    /// evictions a full redelivery still converges to the reference.
    #[test]
    fn small_pending_cap_follows_the_oldest_first_model(
        (plan, deliveries) in plan_and_deliveries(),
        cap in 1usize..=6,
    ) {
        let deltas = build(&plan);
        let parents = parent_indices(&deltas);
        let index_of: BTreeMap<DeltaId, usize> = deltas.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        let limits = Limits { max_pending_deltas: cap, ..Limits::default() };
        let mut replica = Replica::new(&limits);
        let mut model = Model::new(parents, cap);
        for &index in &deliveries[0] {
            deliver_checked(&mut replica, &mut model, &deltas, &index_of, index)?;
        }
        for index in 0..deltas.len() {
            deliver_checked(&mut replica, &mut model, &deltas, &index_of, index)?;
        }
        prop_assert_eq!(fingerprint(&replica), fingerprint(&reference(&deltas)?));
    }
}
