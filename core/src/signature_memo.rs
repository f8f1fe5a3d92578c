//! A memo of delta signatures already verified, for nodes that share one process.
//!
//! Verifying an ed25519 signature is a pure function of (author, delta id, signature), so a
//! memo of successful checks gives exactly the answers a fresh check would. The simulator
//! hands one memo to all its nodes: each delta is then verified once per run instead of once
//! per node, which was a quarter of a 100-node run's time. A real node has no use for it (it
//! verifies each new delta once anyway) and runs without one.

use crate::identity::{verify_delta_signature, Signature, SignatureError};
use crate::ids::{AuthorKey, DeltaId, IdSet};
use std::sync::{Arc, Mutex, PoisonError};

/// Verified signatures a memo keeps before it starts over (32 bytes each).
pub const DEFAULT_SIGNATURE_MEMO_ENTRIES: usize = 1 << 20;

/// A shared, bounded set of (author, id, signature) triples known to verify.
#[derive(Debug, Clone)]
pub struct SignatureMemo {
    inner: Arc<Mutex<MemoInner>>,
}

#[derive(Debug)]
struct MemoInner {
    verified: IdSet<[u8; 32]>,
    max_entries: usize,
    hits: u64,
}

impl Default for SignatureMemo {
    fn default() -> Self {
        Self::with_max_entries(DEFAULT_SIGNATURE_MEMO_ENTRIES)
    }
}

impl SignatureMemo {
    /// A memo that holds at most `max_entries` triples. When full it is cleared (the answers
    /// stay right; only the saving is lost for a while).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(MemoInner {
                verified: IdSet::default(),
                max_entries: max_entries.max(1),
                hits: 0,
            })),
        }
    }

    /// The same answer as [`verify_delta_signature`], from the memo when it holds the triple.
    /// Only successes are remembered: a forged signature costs its verifier every time.
    pub fn verify(&self, author: &AuthorKey, id: &DeltaId, signature: &Signature) -> Result<(), SignatureError> {
        if self.knows(author, id, signature) {
            return Ok(());
        }
        verify_delta_signature(author, id, signature)?;
        self.remember(author, id, signature);
        Ok(())
    }

    /// True if the triple is known to verify; a yes counts as a hit. For batch checks
    /// ([`crate::signature_batch`]), which skip what the memo holds and verify the rest together.
    pub(crate) fn knows(&self, author: &AuthorKey, id: &DeltaId, signature: &Signature) -> bool {
        let key = memo_key(author, id, signature);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let known = inner.verified.contains(&key);
        inner.hits += u64::from(known);
        known
    }

    /// Records a triple that verified. Callers must have checked it.
    pub(crate) fn remember(&self, author: &AuthorKey, id: &DeltaId, signature: &Signature) {
        let key = memo_key(author, id, signature);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.verified.len() >= inner.max_entries {
            inner.verified.clear();
        }
        inner.verified.insert(key);
    }

    /// Checks answered from the memo.
    pub fn hits(&self) -> u64 {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).hits
    }

    /// Triples held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).verified.len()
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One hash over the whole triple: a hit needs the same author, id and signature bytes.
fn memo_key(author: &AuthorKey, id: &DeltaId, signature: &Signature) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"rhizome signature memo v1");
    hasher.update(author.as_bytes());
    hasher.update(id.as_bytes());
    hasher.update(&signature.0);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    #[test]
    fn answers_match_a_fresh_check_and_hits_are_counted() {
        let alice = Keypair::from_secret_bytes([1; 32]);
        let bob = Keypair::from_secret_bytes([2; 32]);
        let id = DeltaId::hash_of(b"x");
        let signature = alice.sign_delta(&id);
        let memo = SignatureMemo::default();
        assert_eq!(memo.verify(&alice.author_key(), &id, &signature), Ok(()));
        assert_eq!(memo.verify(&alice.author_key(), &id, &signature), Ok(()));
        assert_eq!(memo.hits(), 1);
        assert_eq!(memo.verify(&bob.author_key(), &id, &signature), Err(SignatureError::Mismatch));
        let mut forged = signature;
        forged.0[0] ^= 1;
        assert!(memo.verify(&alice.author_key(), &id, &forged).is_err());
        assert!(memo.verify(&alice.author_key(), &id, &forged).is_err(), "failures are never remembered");
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn a_full_memo_starts_over_and_stays_right() {
        let alice = Keypair::from_secret_bytes([1; 32]);
        let memo = SignatureMemo::with_max_entries(2);
        for round in 0..5u8 {
            let id = DeltaId::hash_of(&[round]);
            assert_eq!(memo.verify(&alice.author_key(), &id, &alice.sign_delta(&id)), Ok(()));
            assert!(memo.len() <= 2);
        }
    }
}
