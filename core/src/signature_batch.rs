//! Delta signatures checked many at a time, with exactly the answers of checking each alone.
//!
//! # The rule
//!
//! A delta signature `(R, s)` by `A` over `m` (the delta id behind its domain string) holds when
//! `A` decodes to a curve point (else [`SignatureError::BadAuthorKey`]), neither `A` nor `R` is
//! of small order, `R` is canonically encoded, `s` is below the group order ℓ, and
//! `[8]([s]B − [k]A − R)` is the identity, with `k = SHA-512(R ‖ A ‖ m) mod ℓ`. Anything else
//! is [`SignatureError::Mismatch`].
//!
//! That is ed25519-dalek's `verify_strict` with the cofactored equation (`[8](…)`) instead of
//! the cofactorless one, because a batch is only sound against the equation it batches. A
//! cofactorless batch lets a signature whose error `[s]B − [k]A − R` is a small-order point
//! pass a random combination with probability up to 1/2; our combination scalars come from the
//! inputs (the core draws no OS randomness), so the key's holder could grind a delta until it
//! passes in a batch and fails alone, and nodes would disagree on a delta by how it reached
//! them. ed25519-dalek 2.2's `verify_batch` is such a batch (cofactorless, merlin-derived
//! scalars, no small-order checks), so it is not used. With the cofactored equation in both
//! places a batch and a single check accept the same signatures (up to a 2^-127 chance per
//! batch that no input can steer). Every signature `verify_strict` accepts is accepted; the only
//! extra ones carry torsion that only the key's holder can put in, and every node accepts them
//! alike (ZIP 215 chose the cofactored equation for the same reason).
//!
//! # The batch
//!
//! For signatures `i` with 128-bit scalars `z_i`, one multiscalar multiplication checks
//! `[8]((Σ z_i s_i) B − Σ_A (Σ_{i by A} z_i k_i) A − Σ z_i R_i) = 0`: one point per signature
//! plus one per distinct author (a sync page has few). The `z_i` are BLAKE3 output over every
//! input of the batch, so the verdict is a pure function of the inputs. A failed batch is
//! checked signature by signature, so exactly the bad ones are refused, with the error a single
//! check gives.

use crate::delta::{CausalDelta, DeltaHeader};
use crate::identity::{delta_signing_message, Signature, SignatureError};
use crate::ids::{AuthorKey, DeltaId, IdMap};
use crate::limits::Limits;
use crate::reject::RejectReason;
use crate::signature_memo::SignatureMemo;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// Signatures per multiscalar multiplication. Larger batches cost less per signature, but one
/// bad signature sends its whole batch to single checks (see docs/PERFORMANCE.md).
pub const MAX_BATCH_SIGNATURES: usize = 64;

/// Domain of the BLAKE3 stream the batch scalars are read from.
const BATCH_SCALAR_DOMAIN: &str = "rhizome 2026-12 signature batch scalars v1";

/// One signature to check: who signed which delta id.
#[derive(Debug, Clone, Copy)]
pub struct SignedId<'a> {
    /// The claimed signer.
    pub author: &'a AuthorKey,
    /// The delta id signed.
    pub id: &'a DeltaId,
    /// The signature.
    pub signature: &'a Signature,
}

/// Checks one delta signature by the rule above.
pub fn verify_one(author: &AuthorKey, id: &DeltaId, signature: &Signature) -> Result<(), SignatureError> {
    let point = decode_author(author)?;
    let parts = Parts::decode(author, id, signature)?;
    if parts.holds_alone(&point) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// For each item, the answer of [`verify_one`]. Items `memo` holds are not checked again
/// (counted as hits); the rest are checked in batches of at most [`MAX_BATCH_SIGNATURES`], and
/// those that verify are remembered.
pub fn verify_many(items: &[SignedId<'_>], memo: Option<&SignatureMemo>) -> Vec<Result<(), SignatureError>> {
    let mut results = vec![Ok(()); items.len()];
    let mut authors = AuthorTable::default();
    let mut ready: Vec<Ready> = Vec::with_capacity(items.len().min(MAX_BATCH_SIGNATURES));
    for (index, item) in items.iter().enumerate() {
        if memo.is_some_and(|memo| memo.knows(item.author, item.id, item.signature)) {
            continue;
        }
        let decoded = authors.slot(item.author).and_then(|author| {
            Parts::decode(item.author, item.id, item.signature).map(|parts| Ready { index, author, parts })
        });
        match decoded {
            Ok(one) => ready.push(one),
            Err(error) => results[index] = Err(error),
        }
        if ready.len() == MAX_BATCH_SIGNATURES {
            settle(&authors, &ready, items, memo, &mut results);
            ready.clear();
        }
    }
    settle(&authors, &ready, items, memo, &mut results);
    results
}

/// A delta or a header: what its signature covers, and the checks that come before it.
pub trait SignedRecord {
    /// Every check [`verify_records`] makes before the signature (bounds, id).
    fn check_unsigned(&self, limits: &Limits) -> Result<(), RejectReason>;
    /// The signature to check.
    fn signed_id(&self) -> SignedId<'_>;
}

impl SignedRecord for CausalDelta {
    fn check_unsigned(&self, limits: &Limits) -> Result<(), RejectReason> {
        self.verify_unsigned(limits)
    }
    fn signed_id(&self) -> SignedId<'_> {
        SignedId { author: &self.author, id: &self.id, signature: &self.signature }
    }
}

impl SignedRecord for DeltaHeader {
    fn check_unsigned(&self, limits: &Limits) -> Result<(), RejectReason> {
        self.verify_unsigned(limits)
    }
    fn signed_id(&self) -> SignedId<'_> {
        SignedId { author: &self.author, id: &self.id, signature: &self.signature }
    }
}

/// For each record, the answer of its `verify_with(limits, memo)`, with the signatures of those
/// that pass the cheaper checks verified together.
pub fn verify_records<T: SignedRecord>(
    records: &[&T],
    limits: &Limits,
    memo: Option<&SignatureMemo>,
) -> Vec<Result<(), RejectReason>> {
    let mut results: Vec<Result<(), RejectReason>> =
        records.iter().map(|record| record.check_unsigned(limits)).collect();
    let passed: Vec<usize> = (0..records.len()).filter(|&index| results[index].is_ok()).collect();
    let signed: Vec<SignedId<'_>> = passed.iter().map(|&index| records[index].signed_id()).collect();
    for (index, verdict) in passed.into_iter().zip(verify_many(&signed, memo)) {
        results[index] = verdict.map_err(RejectReason::BadSignature);
    }
    results
}

/// A signature decoded and ready for the equation.
struct Ready {
    /// Its place in the caller's items.
    index: usize,
    /// Its author's slot in the [`AuthorTable`].
    author: usize,
    parts: Parts,
}

/// Decodes each author once per call: a page's deltas mostly share a few authors.
#[derive(Default)]
struct AuthorTable {
    slots: IdMap<AuthorKey, usize>,
    points: Vec<Result<EdwardsPoint, SignatureError>>,
}

impl AuthorTable {
    fn slot(&mut self, author: &AuthorKey) -> Result<usize, SignatureError> {
        let slot = match self.slots.get(author) {
            Some(slot) => *slot,
            None => {
                self.points.push(decode_author(author));
                self.slots.insert(*author, self.points.len() - 1);
                self.points.len() - 1
            }
        };
        self.points[slot].map(|_| slot)
    }

    /// The point of a slot [`Self::slot`] handed out (so it decoded). `None` for any other
    /// slot, which callers treat as a failed check: never the identity point, under which
    /// anyone could satisfy the equation.
    fn point(&self, slot: usize) -> Option<EdwardsPoint> {
        self.points.get(slot).and_then(|point| point.ok())
    }
}

/// Gives a verdict to every signature in `ready`: all at once if the batch holds, else one by
/// one, so a bad signature refuses only itself.
fn settle(
    authors: &AuthorTable,
    ready: &[Ready],
    items: &[SignedId<'_>],
    memo: Option<&SignatureMemo>,
    results: &mut [Result<(), SignatureError>],
) {
    let together = ready.len() > 1 && holds_together(authors, ready, items);
    for one in ready {
        let holds = together || authors.point(one.author).is_some_and(|point| one.parts.holds_alone(&point));
        results[one.index] = if holds { Ok(()) } else { Err(SignatureError::Mismatch) };
        if let (true, Some(memo)) = (holds, memo) {
            let item = &items[one.index];
            memo.remember(item.author, item.id, item.signature);
        }
    }
}

/// The batch equation over `ready` (see the module docs).
fn holds_together(authors: &AuthorTable, ready: &[Ready], items: &[SignedId<'_>]) -> bool {
    let zs = batch_scalars(ready, items);
    let mut base = Scalar::ZERO;
    // One coefficient per distinct author; a linear search, as a batch has few.
    let mut by_author: Vec<(usize, Scalar)> = Vec::new();
    let mut scalars = Vec::with_capacity(ready.len() + 8);
    let mut points = Vec::with_capacity(ready.len() + 8);
    for (one, z) in ready.iter().zip(&zs) {
        base += z * one.parts.s;
        let zk = z * one.parts.k;
        match by_author.iter_mut().find(|(slot, _)| *slot == one.author) {
            Some((_, coefficient)) => *coefficient += zk,
            None => by_author.push((one.author, zk)),
        }
        scalars.push(-z);
        points.push(one.parts.r);
    }
    scalars.push(base);
    points.push(ED25519_BASEPOINT_POINT);
    for (slot, coefficient) in by_author {
        let Some(point) = authors.point(slot) else { return false };
        scalars.push(-coefficient);
        points.push(point);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity()
}

/// 128-bit scalars, one per signature, read from BLAKE3 over every author, id and signature of
/// the batch: no input can be changed without changing them all. Odd, so none is zero.
fn batch_scalars(ready: &[Ready], items: &[SignedId<'_>]) -> Vec<Scalar> {
    let mut hasher = blake3::Hasher::new_derive_key(BATCH_SCALAR_DOMAIN);
    hasher.update(&(ready.len() as u64).to_le_bytes());
    for one in ready {
        let item = &items[one.index];
        hasher.update(item.author.as_bytes());
        hasher.update(item.id.as_bytes());
        hasher.update(&item.signature.0);
    }
    let mut stream = hasher.finalize_xof();
    ready
        .iter()
        .map(|_| {
            let mut bytes = [0u8; 16];
            stream.fill(&mut bytes);
            Scalar::from(u128::from_le_bytes(bytes) | 1)
        })
        .collect()
}

/// The author's point. A small-order key is refused as a mismatch, not as a bad key, as
/// `verify_strict` did.
fn decode_author(author: &AuthorKey) -> Result<EdwardsPoint, SignatureError> {
    let point = CompressedEdwardsY(*author.as_bytes()).decompress().ok_or(SignatureError::BadAuthorKey)?;
    if point.is_small_order() {
        return Err(SignatureError::Mismatch);
    }
    Ok(point)
}

/// A signature's halves, decoded, and its challenge.
struct Parts {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Parts {
    fn decode(author: &AuthorKey, id: &DeltaId, signature: &Signature) -> Result<Self, SignatureError> {
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature.0[..32]);
        s_bytes.copy_from_slice(&signature.0[32..]);
        // The challenge hashes R's bytes; a second encoding of the same point would make a
        // second valid signature, which verify_strict refused (it compares encodings).
        if !is_canonical_y(&r_bytes) {
            return Err(SignatureError::Mismatch);
        }
        let r = CompressedEdwardsY(r_bytes).decompress().ok_or(SignatureError::Mismatch)?;
        if r.is_small_order() {
            return Err(SignatureError::Mismatch);
        }
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(SignatureError::Mismatch)?;
        let hash = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(author.as_bytes())
            .chain_update(delta_signing_message(id))
            .finalize();
        let k = Scalar::from_bytes_mod_order_wide(&hash.into());
        Ok(Self { r, s, k })
    }

    /// `[8]([s]B − [k]A − R) = 0`.
    fn holds_alone(&self, author: &EdwardsPoint) -> bool {
        let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-author, &self.s);
        (sb_minus_ka - self.r).mul_by_cofactor().is_identity()
    }
}

/// True if the y coordinate (the sign bit masked) is below p = 2^255 − 19. Only the encodings
/// of y ∈ 0..19 plus p can be otherwise, and they are the only second encodings there are (the
/// x = 0 points are of small order and refused anyway).
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    let at_least_p = bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&byte| byte == 0xff) && bytes[0] >= 0xed;
    !at_least_p
}

#[cfg(test)]
mod tests;
