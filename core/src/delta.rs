//! The causal delta: one signed, content-addressed change to a context's state.

use crate::hlc::Hlc;
use crate::identity::{verify_delta_signature, Keypair, Signature};
use crate::ids::{AuthorKey, ContextId, DeltaId};
use crate::limits::Limits;
use crate::membership::{Genesis, MembershipChange};
use crate::reject::RejectReason;
use crate::signature_memo::SignatureMemo;
use borsh::{BorshDeserialize, BorshSerialize};
use std::sync::Arc;

/// A shared, immutable delta. Deltas are never mutated after creation, so sharing is free.
pub type DeltaRef = Arc<CausalDelta>;

/// Domain separation for delta ids. v2 covers the kind and a hash of the payload instead of
/// the payload, so a delta's header can be checked (id and signature) without its body.
const DELTA_ID_DOMAIN: &str = "rhizome 2026-12 delta id v2";

/// Domain separation for payload hashes.
const PAYLOAD_HASH_DOMAIN: &str = "rhizome 2026-12 delta payload v1";

/// What a delta does.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum DeltaKind {
    /// Application actions, in the payload, opaque to the core.
    App,
    /// Creates the context; the only delta without parents.
    Genesis(Genesis),
    /// Changes the member list; its payload is empty.
    Membership(MembershipChange),
}

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
    /// What it does.
    pub kind: DeltaKind,
    /// The application's actions, opaque to the core; empty unless `kind` is
    /// [`DeltaKind::App`].
    pub payload: Vec<u8>,
    /// The author's signature over `id`.
    pub signature: Signature,
}

/// A delta without its payload: everything needed to check its id, its signature and its
/// author's membership, so a snapshot can list the history it covers verifiably.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct DeltaHeader {
    /// The delta's id.
    pub id: DeltaId,
    /// Its context.
    pub context: ContextId,
    /// Its author.
    pub author: AuthorKey,
    /// Its parents, sorted and unique.
    pub parents: Vec<DeltaId>,
    /// Its HLC.
    pub hlc: Hlc,
    /// What it does.
    pub kind: DeltaKind,
    /// BLAKE3 (domain-separated) of its payload.
    pub payload_hash: [u8; 32],
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
    kind: &'a DeltaKind,
    payload_hash: &'a [u8; 32],
}

/// The hash of a payload that a delta id covers.
pub fn payload_hash(payload: &[u8]) -> [u8; 32] {
    *blake3::Hasher::new_derive_key(PAYLOAD_HASH_DOMAIN).update(payload).finalize().as_bytes()
}

/// The id of a delta with these fields. `parents` must already be sorted and unique.
fn compute_id(
    context: &ContextId,
    author: &AuthorKey,
    parents: &[DeltaId],
    hlc: &Hlc,
    kind: &DeltaKind,
    payload_hash: &[u8; 32],
) -> DeltaId {
    let mut hasher = blake3::Hasher::new_derive_key(DELTA_ID_DOMAIN);
    let preimage = IdPreimage { context, author, parents, hlc, kind, payload_hash };
    // Writing into a hasher cannot fail; borsh only reports the writer's errors.
    borsh::to_writer(&mut hasher, &preimage).expect("hashing never fails");
    DeltaId::from_bytes(*hasher.finalize().as_bytes())
}

impl CausalDelta {
    /// The id of an application delta with these fields. `parents` must already be sorted and
    /// unique.
    pub fn compute_id(
        context: &ContextId,
        author: &AuthorKey,
        parents: &[DeltaId],
        hlc: &Hlc,
        payload: &[u8],
    ) -> DeltaId {
        compute_id(context, author, parents, hlc, &DeltaKind::App, &payload_hash(payload))
    }

    /// The id this delta's contents give.
    pub fn recompute_id(&self) -> DeltaId {
        compute_id(&self.context, &self.author, &self.parents, &self.hlc, &self.kind, &payload_hash(&self.payload))
    }

    /// Makes and signs an application delta. `parents` are sorted and deduplicated here.
    pub fn new_signed(
        keypair: &Keypair,
        context: ContextId,
        parents: Vec<DeltaId>,
        hlc: Hlc,
        payload: Vec<u8>,
    ) -> Self {
        Self::new_signed_kind(keypair, context, parents, hlc, DeltaKind::App, payload)
    }

    /// Makes and signs a delta of any kind. `parents` are sorted and deduplicated here.
    pub fn new_signed_kind(
        keypair: &Keypair,
        context: ContextId,
        mut parents: Vec<DeltaId>,
        hlc: Hlc,
        kind: DeltaKind,
        payload: Vec<u8>,
    ) -> Self {
        parents.sort_unstable();
        parents.dedup();
        let author = keypair.author_key();
        let id = compute_id(&context, &author, &parents, &hlc, &kind, &payload_hash(&payload));
        let signature = keypair.sign_delta(&id);
        Self { id, context, author, parents, hlc, kind, payload, signature }
    }

    /// The genesis of a new context created by `keypair` with `members` besides itself, its
    /// epoch-0 `key` wrapped to all of them. `members` are sorted and deduplicated here, the
    /// creator left out. Fails if a member's key is not one a key can be wrapped to.
    pub fn genesis(
        keypair: &Keypair,
        hlc: Hlc,
        nonce: [u8; 32],
        mut members: Vec<(AuthorKey, crate::membership::Role)>,
        key: &crate::seal::ContextKey,
    ) -> Result<Self, crate::seal::WrapError> {
        let creator = keypair.author_key();
        members.sort_unstable_by_key(|(key, _)| *key);
        members.dedup_by_key(|(key, _)| *key);
        members.retain(|(key, _)| *key != creator);
        let recipients = members.iter().map(|(key, _)| *key).chain([creator]);
        let bound_to = crate::membership::genesis_wrap_context(&creator, &nonce);
        let keys = crate::membership::KeyShare::wrap(keypair, &bound_to, key, recipients)?;
        let genesis = Genesis { nonce, members, keys };
        let context = crate::membership::genesis_context_id(&creator, &hlc, &genesis);
        Ok(Self::new_signed_kind(keypair, context, Vec::new(), hlc, DeltaKind::Genesis(genesis), Vec::new()))
    }

    /// The header: this delta without its payload.
    pub fn header(&self) -> DeltaHeader {
        DeltaHeader {
            id: self.id,
            context: self.context,
            author: self.author,
            parents: self.parents.clone(),
            hlc: self.hlc,
            kind: self.kind.clone(),
            payload_hash: payload_hash(&self.payload),
            signature: self.signature,
        }
    }

    /// Checks everything that can be checked from the delta alone: size bounds, canonical
    /// parents, the id against its contents, and the signature. Cheapest checks first.
    pub fn verify(&self, limits: &Limits) -> Result<(), RejectReason> {
        self.verify_with(limits, None)
    }

    /// [`Self::verify`], taking the signature check from `memo` when given (see
    /// [`SignatureMemo`]): the same answers, less work for nodes that share one process.
    pub fn verify_with(&self, limits: &Limits, memo: Option<&SignatureMemo>) -> Result<(), RejectReason> {
        self.verify_unsigned(limits)?;
        check_signature(&self.author, &self.id, &self.signature, memo)
    }

    /// Every check of [`Self::verify_with`] but the signature's: shape, then the id.
    pub(crate) fn verify_unsigned(&self, limits: &Limits) -> Result<(), RejectReason> {
        self.check_shape(limits)?;
        if self.recompute_id() != self.id {
            return Err(RejectReason::IdMismatch);
        }
        Ok(())
    }

    /// Size bounds and canonical parent order, without hashing or signature work.
    pub fn check_shape(&self, limits: &Limits) -> Result<(), RejectReason> {
        if self.payload.len() > limits.max_payload_bytes {
            return Err(RejectReason::PayloadTooLarge { bytes: self.payload.len(), max: limits.max_payload_bytes });
        }
        if self.parents.len() > limits.max_parents_per_delta {
            return Err(RejectReason::TooManyParents { count: self.parents.len(), max: limits.max_parents_per_delta });
        }
        if !matches!(self.kind, DeltaKind::App) && !self.payload.is_empty() {
            return Err(RejectReason::MalformedKind);
        }
        check_header_shape(&self.parents, &self.kind, limits)
    }

    /// Bytes this delta takes on the wire, without encoding it.
    pub fn encoded_len(&self) -> usize {
        // id, context, author (3 × 32) + parents (4 + 32 each) + hlc (8 + 4 + 8) + kind
        // + payload (4 + len) + signature (64).
        96 + 4 + 32 * self.parents.len() + 20 + kind_encoded_len(&self.kind) + 4 + self.payload.len() + 64
    }
}

impl DeltaHeader {
    /// Checks what the header alone can show: bounds, canonical parents and member lists, the
    /// id against the fields, and the signature.
    pub fn verify_with(&self, limits: &Limits, memo: Option<&SignatureMemo>) -> Result<(), RejectReason> {
        self.verify_unsigned(limits)?;
        check_signature(&self.author, &self.id, &self.signature, memo)
    }

    /// Every check of [`Self::verify_with`] but the signature's: shape, then the id.
    pub(crate) fn verify_unsigned(&self, limits: &Limits) -> Result<(), RejectReason> {
        check_header_shape(&self.parents, &self.kind, limits)?;
        // A genesis or membership delta carries no payload; a header claiming one names a
        // body that can never exist (a phantom a snapshot could list).
        if !matches!(self.kind, DeltaKind::App) && self.payload_hash != payload_hash(&[]) {
            return Err(RejectReason::MalformedKind);
        }
        let recomputed =
            compute_id(&self.context, &self.author, &self.parents, &self.hlc, &self.kind, &self.payload_hash);
        if recomputed != self.id {
            return Err(RejectReason::IdMismatch);
        }
        Ok(())
    }

    /// Bytes this header takes on the wire.
    pub fn encoded_len(&self) -> usize {
        96 + 4 + 32 * self.parents.len() + 20 + kind_encoded_len(&self.kind) + 32 + 64
    }
}

/// The author's signature over `id`, from `memo` when given: deltas and headers alike.
fn check_signature(
    author: &AuthorKey,
    id: &DeltaId,
    signature: &Signature,
    memo: Option<&SignatureMemo>,
) -> Result<(), RejectReason> {
    match memo {
        Some(memo) => memo.verify(author, id, signature),
        None => verify_delta_signature(author, id, signature),
    }
    .map_err(RejectReason::BadSignature)
}

/// Parent and kind bounds shared by deltas and headers.
fn check_header_shape(parents: &[DeltaId], kind: &DeltaKind, limits: &Limits) -> Result<(), RejectReason> {
    if parents.len() > limits.max_parents_per_delta {
        return Err(RejectReason::TooManyParents { count: parents.len(), max: limits.max_parents_per_delta });
    }
    if !parents.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err(RejectReason::NonCanonicalParents);
    }
    match kind {
        DeltaKind::App => Ok(()),
        DeltaKind::Genesis(genesis) => {
            let sorted = genesis.members.windows(2).all(|pair| pair[0].0 < pair[1].0);
            if !sorted
                || genesis.members.len() >= limits.max_members_per_context
                || !genesis.keys.is_well_formed(limits.max_members_per_context)
            {
                return Err(RejectReason::MalformedKind);
            }
            Ok(())
        }
        DeltaKind::Membership(change) => {
            let does_nothing = change.ops.is_empty() && change.rotation.is_none() && change.grants.is_empty();
            let max_wraps = limits.max_key_wraps_per_change;
            if does_nothing
                || change.ops.len() > limits.max_members_per_context
                || change.grants.len() > max_wraps
                || change.wrap_count() > max_wraps
                || !change.shares().all(|share| share.is_well_formed(max_wraps))
                // The removed member holds every key so far: a removal must hand out a new one.
                || (change.removes() && change.rotation.is_none())
            {
                return Err(RejectReason::MalformedKind);
            }
            Ok(())
        }
    }
}

/// Bytes the borsh encoding of `kind` takes.
fn kind_encoded_len(kind: &DeltaKind) -> usize {
    match kind {
        DeltaKind::App => 1,
        // Tag, nonce, member count, then key and role per member, then the key share.
        DeltaKind::Genesis(genesis) => 1 + 32 + 4 + 33 * genesis.members.len() + genesis.keys.encoded_len(),
        // Tag, op count, then per op: its tag and key, and the role of an add; the rotation
        // (an option tag and a share) and the grants (a count and shares).
        DeltaKind::Membership(change) => {
            1 + 4
                + 1
                + change.rotation.as_ref().map_or(0, crate::membership::KeyShare::encoded_len)
                + 4
                + change.grants.iter().map(crate::membership::KeyShare::encoded_len).sum::<usize>()
                + change
                    .ops
                    .iter()
                    .map(|op| match op {
                        crate::membership::MemberOp::Add(..) => 34,
                        crate::membership::MemberOp::Remove(_) => 33,
                    })
                    .sum::<usize>()
        }
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
        delta.id = delta.recompute_id();
        assert!(matches!(delta.verify(&Limits::default()), Err(RejectReason::BadSignature(_))));
    }

    #[test]
    fn forged_author_fails_the_signature() {
        let mut delta = sample(&Keypair::from_secret_bytes([3; 32]));
        delta.author = Keypair::from_secret_bytes([4; 32]).author_key();
        delta.id = delta.recompute_id();
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
        assert_eq!(delta.id.to_string(), PINNED_EMPTY_DELTA_ID);
    }

    /// The id of the empty delta above; a change breaks every stored DAG and every peer.
    const PINNED_EMPTY_DELTA_ID: &str = "9af33a21fc34dd8711758067c18fd48e024ef0b910bdd07e5d911d53dc6d6ecc";

    #[test]
    fn headers_verify_without_the_payload_and_encode_as_counted() {
        let key = Keypair::from_secret_bytes([3; 32]);
        let delta = sample(&key);
        let header = delta.header();
        assert_eq!(header.verify_with(&Limits::default(), None), Ok(()));
        assert_eq!(header.encoded_len(), borsh::to_vec(&header).unwrap().len());
        let mut forged = header.clone();
        forged.payload_hash = payload_hash(b"other");
        assert_eq!(forged.verify_with(&Limits::default(), None), Err(RejectReason::IdMismatch));
        let genesis = crate::testing::genesis_of(&key, [], 1);
        let mut phantom = genesis.header();
        phantom.payload_hash = payload_hash(b"a body no genesis has");
        assert_eq!(phantom.verify_with(&Limits::default(), None), Err(RejectReason::MalformedKind));
    }

    #[test]
    fn kinds_encode_as_counted_and_bind_the_context_to_the_genesis() {
        use crate::membership::{genesis_context_id, MemberOp, Role};
        let key = Keypair::from_secret_bytes([3; 32]);
        let other = Keypair::from_secret_bytes([4; 32]).author_key();
        let genesis = CausalDelta::genesis(
            &key,
            Hlc::default(),
            [9; 32],
            vec![(other, Role::Member), (key.author_key(), Role::Member)],
            &crate::seal::ContextKey::new(crate::seal::KeyEpoch(0), [1; 32]),
        )
        .unwrap();
        assert_eq!(genesis.encoded_len(), borsh::to_vec(&genesis).unwrap().len());
        let DeltaKind::Genesis(fields) = &genesis.kind else { panic!("a genesis") };
        assert_eq!(fields.members, vec![(other, Role::Member)], "the creator is left out of its own list");
        assert_eq!(genesis.context, genesis_context_id(&genesis.author, &genesis.hlc, fields));
        let rotation = crate::membership::KeyShare::wrap(
            &key,
            &genesis.context,
            &crate::seal::ContextKey::new(crate::seal::KeyEpoch(1), [2; 32]),
            [key.author_key()],
        )
        .unwrap();
        let change = DeltaKind::Membership(MembershipChange {
            ops: vec![MemberOp::Add(other, Role::Admin), MemberOp::Remove(other)],
            rotation: Some(rotation),
            grants: Vec::new(),
        });
        let delta =
            CausalDelta::new_signed_kind(&key, genesis.context, vec![genesis.id], Hlc::default(), change, Vec::new());
        assert_eq!(delta.encoded_len(), borsh::to_vec(&delta).unwrap().len());
        assert_eq!(delta.verify(&Limits::default()), Ok(()));
        let mut with_payload = delta.clone();
        with_payload.payload = vec![1];
        assert_eq!(with_payload.verify(&Limits::default()), Err(RejectReason::MalformedKind));
    }
}
