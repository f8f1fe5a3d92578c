//! Which membership changes of a set stand, given the removals concurrent with them.
//!
//! The rule is in the [`super::view`] module docs (step 1): change `R` contests change `C` if
//! `R` takes rights from `C`'s author (`Remove` or `Add(_, Member)`) and neither is in the
//! other's causal past. A change stands if every change contesting it is void, and is void if
//! some change contesting it stands; what this least fixpoint leaves undecided (changes that
//! contest each other in a cycle) is a mutual removal. It depends on the set alone, never on
//! the order the changes arrived or are folded in, so every replica computes it alike.

use super::{MemberOp, Role};
use crate::ids::{AuthorKey, DeltaId};
use std::collections::BTreeMap;

/// One membership delta of the set being folded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry<'a> {
    /// Its (height, id).
    pub at: (u64, DeltaId),
    /// Its author.
    pub author: &'a AuthorKey,
    /// Its ops (none for the genesis).
    pub ops: &'a [MemberOp],
    /// The membership deltas of its causal past and itself, by (height, id): its own view's
    /// `folded` list.
    pub past: &'a [(u64, DeltaId)],
}

/// What a change does in a fold of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Standing {
    /// Judged normally.
    Stands,
    /// No membership effect.
    Void,
    /// Part of a mutual removal: only its ops that take rights from these keys (sorted) take
    /// effect.
    Mutual(Vec<AuthorKey>),
}

/// True if `op` removes or demotes its subject.
fn takes_rights(op: &MemberOp) -> bool {
    match op {
        MemberOp::Remove(_) => true,
        MemberOp::Add(_, role) => *role != Role::Admin,
    }
}

/// Neither is in the other's causal past.
fn concurrent(a: &Entry<'_>, b: &Entry<'_>) -> bool {
    a.at != b.at && a.past.binary_search(&b.at).is_err() && b.past.binary_search(&a.at).is_err()
}

/// The standing of each entry, in the same order.
pub(super) fn standings(entries: &[Entry<'_>]) -> Vec<Standing> {
    // Who loses rights to which changes: few changes remove anyone, so contests are looked
    // for only between those and the changes by the keys they take rights from.
    let mut taking: BTreeMap<&AuthorKey, Vec<usize>> = BTreeMap::new();
    for (index, entry) in entries.iter().enumerate() {
        for op in entry.ops.iter().filter(|op| takes_rights(op)) {
            let list = taking.entry(op.subject()).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
    }
    let mut contested_by: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    let mut contests: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    let mut any = false;
    for (index, entry) in entries.iter().enumerate() {
        let Some(removers) = taking.get(entry.author) else { continue };
        for &remover in removers {
            if remover != index && concurrent(entry, &entries[remover]) {
                contested_by[index].push(remover);
                contests[remover].push(index);
                any = true;
            }
        }
    }
    if !any {
        return vec![Standing::Stands; entries.len()];
    }
    // The grounded labelling: a change stands once every change contesting it is void; a
    // change is void as soon as one contesting it stands.
    let mut label: Vec<Option<bool>> = vec![None; entries.len()];
    let mut live: Vec<usize> = contested_by.iter().map(Vec::len).collect();
    let mut stands: Vec<usize> = (0..entries.len()).filter(|index| live[*index] == 0).collect();
    for index in &stands {
        label[*index] = Some(true);
    }
    while let Some(winner) = stands.pop() {
        for &loser in &contests[winner] {
            if label[loser].is_some() {
                continue;
            }
            label[loser] = Some(false);
            for &freed in &contests[loser] {
                live[freed] -= 1;
                if live[freed] == 0 && label[freed].is_none() {
                    label[freed] = Some(true);
                    stands.push(freed);
                }
            }
        }
    }
    (0..entries.len())
        .map(|index| match label[index] {
            Some(true) => Standing::Stands,
            Some(false) => Standing::Void,
            None => {
                let mut targets: Vec<AuthorKey> = contests[index]
                    .iter()
                    .filter(|other| label[**other].is_none())
                    .map(|other| *entries[*other].author)
                    .collect();
                targets.sort_unstable();
                targets.dedup();
                Standing::Mutual(targets)
            }
        })
        .collect()
}

/// For each entry, the keys its `Add` ops have no effect on: keys that a removal concurrent
/// with it removes (a `Remove` in a standing change, or in a mutual one naming a key it
/// targets). Remove wins: an add that did not see a removal cannot undo it, whichever of the
/// two folds later. Few changes remove anyone, so most entries get an empty list.
pub(super) fn removed_concurrently<'a>(entries: &[Entry<'a>], standings: &[Standing]) -> Vec<Vec<&'a AuthorKey>> {
    let mut removals: BTreeMap<&AuthorKey, Vec<usize>> = BTreeMap::new();
    for (index, (entry, standing)) in entries.iter().zip(standings).enumerate() {
        for op in entry.ops {
            let MemberOp::Remove(subject) = op else { continue };
            let effective = match standing {
                Standing::Stands => true,
                Standing::Void => false,
                Standing::Mutual(targets) => targets.binary_search(subject).is_ok(),
            };
            if effective {
                removals.entry(subject).or_default().push(index);
            }
        }
    }
    entries
        .iter()
        .map(|entry| {
            let mut blocked: Vec<&AuthorKey> = entry
                .ops
                .iter()
                .filter_map(|op| match op {
                    MemberOp::Add(subject, _) => removals
                        .get(subject)
                        .is_some_and(|removers| removers.iter().any(|r| concurrent(entry, &entries[*r])))
                        .then_some(subject),
                    MemberOp::Remove(_) => None,
                })
                .collect();
            blocked.sort_unstable();
            blocked.dedup();
            blocked
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> AuthorKey {
        AuthorKey::from_bytes([n; 32])
    }

    fn at(n: u8) -> (u64, DeltaId) {
        (u64::from(n), DeltaId::from_bytes([n; 32]))
    }

    /// Entries over a genesis `at(0)`: each (n, author, ops, past) with `past` listing `at`s.
    fn standings_of(spec: &[(u8, u8, Vec<MemberOp>, Vec<u8>)]) -> Vec<Standing> {
        let pasts: Vec<Vec<(u64, DeltaId)>> = spec
            .iter()
            .map(|(n, _, _, past)| {
                let mut list: Vec<_> = past.iter().chain([n]).map(|p| at(*p)).collect();
                list.sort_unstable();
                list
            })
            .collect();
        let authors: Vec<AuthorKey> = spec.iter().map(|(_, author, _, _)| key(*author)).collect();
        let entries: Vec<Entry<'_>> = spec
            .iter()
            .enumerate()
            .map(|(i, (n, _, ops, _))| Entry { at: at(*n), author: &authors[i], ops, past: &pasts[i] })
            .collect();
        standings(&entries)
    }

    #[test]
    fn a_change_concurrent_with_its_authors_removal_is_void_and_a_void_change_contests_nothing() {
        // 2 removes 1 (change 1); 1, concurrently, removes 3 (change 2); 3, concurrently with
        // change 2, adds 4 (change 3). Change 2 is void, so it cannot void change 3.
        let standings = standings_of(&[
            (1, 2, vec![MemberOp::Remove(key(1))], vec![0]),
            (2, 1, vec![MemberOp::Remove(key(3))], vec![0]),
            (3, 3, vec![MemberOp::Add(key(4), Role::Member)], vec![0]),
        ]);
        assert_eq!(standings, [Standing::Stands, Standing::Void, Standing::Stands]);
    }

    #[test]
    fn a_change_on_top_of_the_removal_is_not_contested_by_it() {
        let standings = standings_of(&[
            (1, 2, vec![MemberOp::Add(key(1), Role::Member)], vec![0]),
            (2, 1, vec![MemberOp::Remove(key(1))], vec![0, 1]),
        ]);
        assert_eq!(standings, [Standing::Stands, Standing::Stands]);
    }

    #[test]
    fn changes_that_contest_each_other_are_a_mutual_removal() {
        let standings = standings_of(&[
            (1, 2, vec![MemberOp::Remove(key(1)), MemberOp::Add(key(5), Role::Admin)], vec![0]),
            (2, 1, vec![MemberOp::Add(key(2), Role::Member)], vec![0]),
        ]);
        assert_eq!(standings, [Standing::Mutual(vec![key(1)]), Standing::Mutual(vec![key(2)])]);
    }
}
