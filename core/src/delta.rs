//! The causal delta: one signed, content-addressed change to a context's state.

use crate::hlc::Hlc;
use crate::identity::{verify_delta_signature, Keypair, Signature};
use crate::ids::{AuthorKey, ContextId, DeltaId};
use crate::limits::Limits;
use crate::reject::RejectReason;
use crate::signature_memo::SignatureMemo;
use borsh::{BorshDeserialize, BorshSerialize};
use std::sync::Arc;

/// A shared, immutable delta. Deltas are never mutated after creation, so sharing is free.
pub type DeltaRef = Arc<CausalDelta>;

/// Domain separation for delta ids.
const DELTA_ID_DOMAIN: &str = "rhizome 2026-11 delta id v1";

/// One change to a context's state, with the heads it was made on as parents.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct CausalDelta {
    /// BLAKE3 over the canonical encoding of the fields below (but the signature).
    pub id: DeltaId,
    /// The context this delta changes.
    pub context: ContextId,
    /// Who made it.
    pub author: AuthorKey,
    /// The heads the author had applied when it made this delta; sorted, unique.
    pub parents: Vec<DeltaId>,
    /// When, in HLC time.
    pub hlc: Hlc,
    /// The application's actions, opaque to the core.
    pub payload: Vec<u8>,
    /// The author's signature over `id`.
    pub signature: Signature,
}

/// The fields an id covers, borrowed, in their canonical order.
#[derive(BorshSerialize)]
struct IdPreimage<'a> {
    context: &'a ContextId,
    author: &'a AuthorKey,
    parents: &'a [DeltaId],
    hlc: &'a Hlc,
    payload: &'a [u8],
}

impl CausalDelta {
    /// The id of a delta with these fields. `parents` must already be sorted and unique.
    pub fn compute_id(
        context: &ContextId,
        author: &AuthorKey,
        parents: &[DeltaId],
        hlc: &Hlc,
        payload: &[u8],
    ) -> DeltaId {
        let mut hasher = blake3::Hasher::new_derive_key(DELTA_ID_DOMAIN);
        let preimage = IdPreimage { context, author, parents, hlc, payload };
        // Writing into a hasher cannot fail; borsh only reports the writer's errors.
        borsh::to_writer(&mut hasher, &preimage).expect("hashing never fails");
        DeltaId::from_bytes(*hasher.finalize().as_bytes())
    }

    /// Makes and signs a delta. `parents` are sorted and deduplicated here.
    pub fn new_signed(
        keypair: &Keypair,
        context: ContextId,
        mut parents: Vec<DeltaId>,
        hlc: Hlc,
        payload: Vec<u8>,
    ) -> Self {
        parents.sort_unstable();
        parents.dedup();
        let author = keypair.author_key();
        let id = Self::compute_id(&context, &author, &parents, &hlc, &payload);
        let signature = keypair.sign_delta(&id);
        Self { id, context, author, parents, hlc, payload, signature }
    }

    /// Checks everything that can be checked from the delta alone: size bounds, canonical
    /// parents, the id against its contents, and the signature. Cheapest checks first.
    pub fn verify(&self, limits: &Limits) -> Result<(), RejectReason> {
        self.verify_with(limits, None)
    }

    /// [`Self::verify`], taking the signature check from `memo` when given (see
    /// [`SignatureMemo`]): the same answers, less work for nodes that share one process.
    pub fn verify_with(&self, limits: &Limits, memo: Option<&SignatureMemo>) -> Result<(), RejectReason> {
        self.check_shape(limits)?;
        let recomputed = Self::compute_id(&self.context, &self.author, &self.parents, &self.hlc, &self.payload);
        if recomputed != self.id {
            return Err(RejectReason::IdMismatch);
        }
        match memo {
            Some(memo) => memo.verify(&self.author, &self.id, &self.signature),
            None => verify_delta_signature(&self.author, &self.id, &self.signature),
        }
        .map_err(RejectReason::BadSignature)
    }

    /// Size bounds and canonical parent order, without hashing or signature work.
    pub fn check_shape(&self, limits: &Limits) -> Result<(), RejectReason> {
        if self.payload.len() > limits.max_payload_bytes {
            return Err(RejectReason::PayloadTooLarge { bytes: self.payload.len(), max: limits.max_payload_bytes });
        }
        if self.parents.len() > limits.max_parents_per_delta {
            return Err(RejectReason::TooManyParents { count: self.parents.len(), max: limits.max_parents_per_delta });
        }
        if !self.parents.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(RejectReason::NonCanonicalParents);
        }
        Ok(())
    }

    /// Bytes this delta takes on the wire, without encoding it.
    pub fn encoded_len(&self) -> usize {
        // id, context, author (3 × 32) + parents (4 + 32 each) + hlc (8 + 4 + 8)
        // + payload (4 + len) + signature (64).
        96 + 4 + 32 * self.parents.len() + 20 + 4 + self.payload.len() + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(keypair: &Keypair) -> CausalDelta {
        let parents = vec![DeltaId::hash_of(b"b"), DeltaId::hash_of(b"a"), DeltaId::hash_of(b"a")];
        CausalDelta::new_signed(keypair, ContextId::hash_of(b"ctx"), parents, Hlc::default(), b"payload".to_vec())
    }

    #[test]
    fn new_signed_canonicalises_parents_and_verifies() {
        let key = Keypair::from_secret_bytes([3; 32]);
        let delta = sample(&key);
        assert_eq!(delta.parents.len(), 2);
        assert!(delta.parents[0] < delta.parents[1]);
        assert_eq!(delta.verify(&Limits::default()), Ok(()));
    }

    #[test]
    fn tampered_payload_is_an_id_mismatch() {
        let mut delta = sample(&Keypair::from_secret_bytes([3; 32]));
        delta.payload.push(0);
        assert_eq!(delta.verify(&Limits::default()), Err(RejectReason::IdMismatch));
    }

    #[test]
    fn tampered_id_with_recomputed_hash_fails_the_signature() {
        let mut delta = sample(&Keypair::from_secret_bytes([3; 32]));
        delta.payload.push(0);
        delta.id = CausalDelta::compute_id(&delta.context, &delta.author, &delta.parents, &delta.hlc, &delta.payload);
        assert!(matches!(delta.verify(&Limits::default()), Err(RejectReason::BadSignature(_))));
    }

    #[test]
    fn forged_author_fails_the_signature() {
        let mut delta = sample(&Keypair::from_secret_bytes([3; 32]));
        delta.author = Keypair::from_secret_bytes([4; 32]).author_key();
        delta.id = CausalDelta::compute_id(&delta.context, &delta.author, &delta.parents, &delta.hlc, &delta.payload);
        assert!(matches!(delta.verify(&Limits::default()), Err(RejectReason::BadSignature(_))));
    }

    #[test]
    fn unsorted_parents_are_not_canonical() {
        let mut delta = sample(&Keypair::from_secret_bytes([3; 32]));
        delta.parents.reverse();
        assert_eq!(delta.verify(&Limits::default()), Err(RejectReason::NonCanonicalParents));
    }

    #[test]
    fn oversized_payload_and_parent_lists_are_refused() {
        let delta = sample(&Keypair::from_secret_bytes([3; 32]));
        let tight = Limits { max_payload_bytes: 3, ..Limits::default() };
        assert!(matches!(delta.verify(&tight), Err(RejectReason::PayloadTooLarge { .. })));
        let tight = Limits { max_parents_per_delta: 1, ..Limits::default() };
        assert!(matches!(delta.verify(&tight), Err(RejectReason::TooManyParents { count: 2, max: 1 })));
    }

    #[test]
    fn id_is_stable_across_versions() {
        // Pins the id encoding: a change here breaks every stored DAG and every peer.
        let key = Keypair::from_secret_bytes([3; 32]);
        let delta = CausalDelta::new_signed(&key, ContextId::from_bytes([1; 32]), vec![], Hlc::default(), vec![]);
        assert_eq!(delta.encoded_len(), borsh::to_vec(&delta).unwrap().len());
        let again = CausalDelta::new_signed(&key, ContextId::from_bytes([1; 32]), vec![], Hlc::default(), vec![]);
        assert_eq!(delta.id, again.id);
    }
}
