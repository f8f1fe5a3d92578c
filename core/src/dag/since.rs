//! `deltas_since`: what a peer that has applied `known` lacks, in causal order, a page at a time.
//!
//! The walk paints backwards from both frontiers at once, popping the highest generation first
//! (a delta's height is one more than its highest parent's). A delta reachable from the peer's
//! heads is painted "theirs" before it can be popped, because every descendant has a greater
//! height and was processed earlier; so what stays "ours" is exactly the gap. The walk stops as
//! soon as no "ours" delta is queued, so it costs O(gap + frontier), not O(history).
//!
//! The result is sorted by (height, id): parents before children, every branch included, and
//! the same order on every call. A page resumes after the cursor of the previous one, so the
//! server keeps no per-peer state.

use super::AppliedEntry;
use crate::delta::DeltaRef;
use crate::ids::{DeltaId, IdMap};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BinaryHeap;

/// Where the previous page stopped: the position of the last delta it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct SinceCursor {
    /// Height of the last delta sent.
    pub height: u64,
    /// Id of the last delta sent.
    pub id: DeltaId,
}

/// One page of `deltas_since`.
#[derive(Debug, Clone)]
pub struct SincePage {
    /// Deltas in causal order.
    pub deltas: Vec<DeltaRef>,
    /// Resume point for the next page; `None` when this was the last.
    pub next: Option<SinceCursor>,
    /// Size of the whole gap, including pages already sent.
    pub gap_total: u64,
}

/// Why `deltas_since` could not answer with deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinceError {
    /// Part of the gap is state this node adopted by snapshot, without delta bodies.
    #[error("part of the gap is only held as snapshot state")]
    SnapshotRequired,
    /// The gap is larger than the walk is allowed to visit.
    #[error("gap walk visited over {max_scan} deltas")]
    GapTooLarge {
        /// The scan bound.
        max_scan: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Paint {
    Ours,
    Theirs,
}

/// Every applied delta reachable from `targets` but not from `known`, sorted by (height, id).
pub(crate) fn gap(
    applied: &IdMap<DeltaId, AppliedEntry>,
    targets: &[DeltaId],
    known: &[DeltaId],
    max_scan: usize,
) -> Result<Vec<SinceCursor>, SinceError> {
    let mut paint: IdMap<DeltaId, Paint> = IdMap::default();
    let mut queue: BinaryHeap<SinceCursor> = BinaryHeap::new();
    let mut ours_queued = 0usize;

    for id in known {
        if let Some(entry) = applied.get(id) {
            if paint.insert(*id, Paint::Theirs).is_none() {
                queue.push(SinceCursor { height: entry.height, id: *id });
            }
        }
    }
    for id in targets {
        if let Some(entry) = applied.get(id) {
            if !paint.contains_key(id) {
                paint.insert(*id, Paint::Ours);
                ours_queued += 1;
                queue.push(SinceCursor { height: entry.height, id: *id });
            }
        }
    }

    let mut result = Vec::new();
    let mut visited = 0usize;
    while ours_queued > 0 {
        let Some(position) = queue.pop() else { break };
        visited += 1;
        if visited > max_scan {
            return Err(SinceError::GapTooLarge { max_scan });
        }
        let colour = paint[&position.id];
        if colour == Paint::Ours {
            ours_queued -= 1;
            result.push(position);
        }
        let entry = &applied[&position.id];
        if colour == Paint::Ours && entry.body().is_none() {
            return Err(SinceError::SnapshotRequired);
        }
        for parent in entry.parents() {
            let Some(parent_entry) = applied.get(parent) else {
                continue;
            };
            match paint.get_mut(parent) {
                None => {
                    paint.insert(*parent, colour);
                    if colour == Paint::Ours {
                        ours_queued += 1;
                    }
                    queue.push(SinceCursor { height: parent_entry.height, id: *parent });
                }
                Some(existing) => {
                    if *existing == Paint::Ours && colour == Paint::Theirs {
                        *existing = Paint::Theirs;
                        ours_queued -= 1;
                    }
                }
            }
        }
    }
    result.sort_unstable();
    Ok(result)
}

/// Cuts one page out of a sorted gap: after `after`, at most `max_deltas` deltas and about
/// `max_bytes` encoded bytes (always at least one delta, so a page always makes progress).
pub(crate) fn page(
    applied: &IdMap<DeltaId, AppliedEntry>,
    gap: &[SinceCursor],
    after: Option<SinceCursor>,
    max_deltas: usize,
    max_bytes: usize,
) -> SincePage {
    let start = match after {
        Some(cursor) => gap.partition_point(|position| *position <= cursor),
        None => 0,
    };
    let mut deltas = Vec::new();
    let mut bytes = 0usize;
    let mut end = start;
    for position in &gap[start..] {
        if deltas.len() >= max_deltas.max(1) {
            break;
        }
        let body = applied[&position.id].body().expect("the gap walk only keeps deltas with bodies");
        let size = body.encoded_len();
        if !deltas.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        deltas.push(body.clone());
        end += 1;
    }
    let next = (end < gap.len()).then(|| gap[end - 1]);
    SincePage { deltas, next, gap_total: gap.len() as u64 }
}
