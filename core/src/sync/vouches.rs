//! What members have vouched for: the latest verified attestation of each member of one
//! context, and the mark a replica keeps when it adopted a snapshot on one voucher only.
//!
//! The node verifies an attestation (signature, membership, publisher) before it records it
//! here; this module only keeps and counts.

use crate::attestation::Attestation;
use crate::ids::{AuthorKey, DeltaId, PeerId, RootHash};
use std::collections::BTreeMap;

/// One member's latest statement about its replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouch {
    /// Its sequence: only a greater one replaces it.
    pub sequence: u64,
    /// Its heads.
    pub heads: Vec<DeltaId>,
    /// Its root at those heads.
    pub root: RootHash,
}

/// The latest verified attestation per member, at most `max_entries` (the member limit).
#[derive(Debug, Clone, Default)]
pub struct Vouches {
    by_signer: BTreeMap<AuthorKey, Vouch>,
}

/// What recording an attestation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Kept (new, or newer than the one held).
    Kept,
    /// Not newer than the one held from its signer: a replay, ignored.
    Stale,
    /// Full of other signers' statements: ignored.
    Full,
}

impl Vouches {
    /// Records `attestation` unless one with an equal or greater sequence is held from its
    /// signer. `is_member` prunes signers that stopped being members when the store is full,
    /// so it holds at most `max_entries` statements, all by members once pruned.
    pub fn record(
        &mut self,
        attestation: &Attestation,
        max_entries: usize,
        is_member: impl Fn(&AuthorKey) -> bool,
    ) -> Recorded {
        if let Some(held) = self.by_signer.get(&attestation.signer) {
            if attestation.sequence <= held.sequence {
                return Recorded::Stale;
            }
        } else if self.by_signer.len() >= max_entries {
            self.by_signer.retain(|signer, _| is_member(signer));
            if self.by_signer.len() >= max_entries {
                return Recorded::Full;
            }
        }
        let vouch = Vouch { sequence: attestation.sequence, heads: attestation.heads.clone(), root: attestation.root };
        self.by_signer.insert(attestation.signer, vouch);
        Recorded::Kept
    }

    /// Distinct signers accepted by `counts` whose latest statement is exactly `(heads, root)`.
    pub fn count(&self, heads: &[DeltaId], root: &RootHash, counts: impl Fn(&AuthorKey) -> bool) -> usize {
        self.by_signer
            .iter()
            .filter(|(signer, vouch)| vouch.heads == heads && vouch.root == *root && counts(signer))
            .count()
    }

    /// The latest statement held from `signer`.
    pub fn get(&self, signer: &AuthorKey) -> Option<&Vouch> {
        self.by_signer.get(signer)
    }

    /// Statements held.
    pub fn len(&self) -> usize {
        self.by_signer.len()
    }

    /// True if none is held.
    pub fn is_empty(&self) -> bool {
        self.by_signer.is_empty()
    }
}

/// A replica that adopted a snapshot with only its server vouching (a context with one other
/// member, or a joiner that knows of one): it keeps comparing later attestations with what it
/// adopted, and repairs from a member that contradicts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleVoucherAdoption {
    /// The adopted snapshot's heads.
    pub heads: Vec<DeltaId>,
    /// The adopted snapshot's root.
    pub root: RootHash,
    /// Who served this state and the repairs before it, oldest first (at most one per
    /// member): a member already in the chain cannot start another repair, so two members
    /// that contradict each other cannot make the replica swap states without end.
    pub chain: Vec<PeerId>,
}

/// What an attestation says about an adopted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Same heads and the same root (as adopted, or as we hold now): a second voucher.
    Agrees,
    /// Same heads and another root: one of the two members lies (or its state is corrupt).
    Disagrees,
    /// Other heads: it says nothing about the adopted state.
    Silent,
}

impl SingleVoucherAdoption {
    /// Compares a statement with the adopted state and with our state now (`our_heads`,
    /// `our_root`, which include what was applied since the adoption).
    pub fn judge(&self, statement: &Attestation, our_heads: &[DeltaId], our_root: &RootHash) -> Judgement {
        for (heads, root) in [(self.heads.as_slice(), &self.root), (our_heads, our_root)] {
            if statement.heads == heads {
                return if statement.root == *root { Judgement::Agrees } else { Judgement::Disagrees };
            }
        }
        Judgement::Silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ContextId;

    fn statement(signer: u8, sequence: u64, head: &[u8], root: &[u8]) -> Attestation {
        Attestation {
            context: ContextId::hash_of(b"c"),
            signer: AuthorKey::from_bytes([signer; 32]),
            sequence,
            heads: vec![DeltaId::hash_of(head)],
            root: RootHash::hash_of(root),
        }
    }

    #[test]
    fn only_a_newer_statement_replaces_the_one_held() {
        let mut vouches = Vouches::default();
        assert_eq!(vouches.record(&statement(1, 5, b"h", b"r"), 8, |_| true), Recorded::Kept);
        assert_eq!(vouches.record(&statement(1, 5, b"x", b"y"), 8, |_| true), Recorded::Stale);
        assert_eq!(vouches.record(&statement(1, 4, b"x", b"y"), 8, |_| true), Recorded::Stale);
        assert_eq!(vouches.get(&AuthorKey::from_bytes([1; 32])).unwrap().sequence, 5);
        assert_eq!(vouches.record(&statement(1, 6, b"x", b"y"), 8, |_| true), Recorded::Kept);
        assert_eq!(vouches.len(), 1);
    }

    #[test]
    fn the_store_is_bounded_and_prunes_former_members_first() {
        let mut vouches = Vouches::default();
        vouches.record(&statement(1, 1, b"h", b"r"), 2, |_| true);
        vouches.record(&statement(2, 1, b"h", b"r"), 2, |_| true);
        assert_eq!(vouches.record(&statement(3, 1, b"h", b"r"), 2, |_| true), Recorded::Full);
        let former = AuthorKey::from_bytes([1; 32]);
        assert_eq!(vouches.record(&statement(3, 1, b"h", b"r"), 2, |key| *key != former), Recorded::Kept);
        assert_eq!(vouches.len(), 2);
        assert!(vouches.get(&former).is_none());
    }

    #[test]
    fn counting_needs_exactly_the_same_heads_and_root() {
        let mut vouches = Vouches::default();
        vouches.record(&statement(1, 1, b"h", b"r"), 8, |_| true);
        vouches.record(&statement(2, 1, b"h", b"other root"), 8, |_| true);
        vouches.record(&statement(3, 1, b"other head", b"r"), 8, |_| true);
        vouches.record(&statement(4, 1, b"h", b"r"), 8, |_| true);
        let (heads, root) = (vec![DeltaId::hash_of(b"h")], RootHash::hash_of(b"r"));
        assert_eq!(vouches.count(&heads, &root, |_| true), 2);
        assert_eq!(vouches.count(&heads, &root, |key| *key != AuthorKey::from_bytes([4; 32])), 1);
    }

    #[test]
    fn a_statement_agrees_disagrees_or_says_nothing() {
        let adopted = SingleVoucherAdoption {
            heads: vec![DeltaId::hash_of(b"h")],
            root: RootHash::hash_of(b"r"),
            chain: vec![PeerId::from_bytes([9; 32])],
        };
        let now_heads = vec![DeltaId::hash_of(b"now")];
        let now_root = RootHash::hash_of(b"now root");
        assert_eq!(adopted.judge(&statement(1, 1, b"h", b"r"), &now_heads, &now_root), Judgement::Agrees);
        assert_eq!(adopted.judge(&statement(1, 1, b"h", b"forged"), &now_heads, &now_root), Judgement::Disagrees);
        assert_eq!(adopted.judge(&statement(1, 1, b"now", b"now root"), &now_heads, &now_root), Judgement::Agrees);
        assert_eq!(adopted.judge(&statement(1, 1, b"now", b"r"), &now_heads, &now_root), Judgement::Disagrees);
        assert_eq!(adopted.judge(&statement(1, 1, b"elsewhere", b"r"), &now_heads, &now_root), Judgement::Silent);
    }
}
