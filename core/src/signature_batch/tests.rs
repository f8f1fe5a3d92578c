use super::*;
use crate::hlc::Hlc;
use crate::identity::Keypair;
use crate::ids::ContextId;
use curve25519_dalek::constants::EIGHT_TORSION;
use ed25519_dalek::{SigningKey, Verifier as _};
use proptest::prelude::*;

/// `count` signed ids by `authors` keys in turn.
fn signed(count: usize, authors: u8) -> Vec<(AuthorKey, DeltaId, Signature)> {
    (0..count)
        .map(|index| {
            let key = Keypair::from_secret_bytes([1 + (index % usize::from(authors)) as u8; 32]);
            let id = DeltaId::hash_of(&(index as u64).to_le_bytes());
            (key.author_key(), id, key.sign_delta(&id))
        })
        .collect()
}

fn items(triples: &[(AuthorKey, DeltaId, Signature)]) -> Vec<SignedId<'_>> {
    triples.iter().map(|(author, id, signature)| SignedId { author, id, signature }).collect()
}

/// What ed25519-dalek's `verify_strict` says: the rule this module's must agree with on
/// everything but author-made torsion.
fn strict(author: &AuthorKey, id: &DeltaId, signature: &Signature) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(author.as_bytes()) else { return false };
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(&delta_signing_message(id), &signature).is_ok()
}

#[test]
fn a_batch_of_good_signatures_is_accepted() {
    for count in [1, 2, 8, 64, 65, 200] {
        let triples = signed(count, 3);
        let results = verify_many(&items(&triples), None);
        assert_eq!(results.len(), count);
        assert!(results.iter().all(Result::is_ok), "{count} good signatures");
    }
}

#[test]
fn one_bad_signature_refuses_exactly_itself() {
    for bad in [0, 5, 63, 64, 99] {
        let mut triples = signed(100, 4);
        triples[bad].2 .0[40] ^= 1;
        let results = verify_many(&items(&triples), None);
        for (index, result) in results.iter().enumerate() {
            let expected = if index == bad { Err(SignatureError::Mismatch) } else { Ok(()) };
            assert_eq!(*result, expected, "bad {bad}, index {index}");
        }
    }
}

#[test]
fn a_bad_author_key_keeps_its_error() {
    let mut triples = signed(8, 2);
    // y = 2 is not the y of any curve point.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    triples[3].0 = AuthorKey::from_bytes(not_a_point);
    let results = verify_many(&items(&triples), None);
    assert_eq!(results[3], Err(SignatureError::BadAuthorKey));
    assert_eq!(verify_one(&triples[3].0, &triples[3].1, &triples[3].2), Err(SignatureError::BadAuthorKey));
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 7);
}

#[test]
fn an_empty_batch_answers_nothing() {
    assert!(verify_many(&[], None).is_empty());
    let memo = SignatureMemo::default();
    assert!(verify_many(&[], Some(&memo)).is_empty());
    assert_eq!((memo.hits(), memo.len()), (0, 0));
}

#[test]
fn the_memo_skips_what_it_holds_and_learns_only_successes() {
    let mut triples = signed(10, 2);
    triples[7].2 .0[1] ^= 1;
    let memo = SignatureMemo::default();
    let (author, id, signature) = &triples[0];
    memo.verify(author, id, signature).unwrap();
    let first = verify_many(&items(&triples), Some(&memo));
    assert_eq!(memo.hits(), 1, "the one it held");
    assert_eq!(memo.len(), 9, "the nine that verify");
    let again = verify_many(&items(&triples), Some(&memo));
    assert_eq!(first, again);
    assert_eq!(memo.hits(), 10, "every good one is a hit the second time; the bad one never");
    assert_eq!(again[7], Err(SignatureError::Mismatch));
}

#[test]
fn agrees_with_verify_strict_on_malformed_signatures() {
    let key = Keypair::from_secret_bytes([9; 32]);
    let id = DeltaId::hash_of(b"delta");
    let good = key.sign_delta(&id);
    let mut cases: Vec<(AuthorKey, Signature)> = vec![(key.author_key(), good)];
    // s + ℓ: the same scalar, not reduced.
    let mut unreduced = good;
    let s = Scalar::from_canonical_bytes(good.0[32..].try_into().unwrap()).unwrap();
    let order_minus_one = -Scalar::ONE;
    let mut wide = [0u8; 32];
    let mut carry = 1u16;
    for (index, byte) in wide.iter_mut().enumerate() {
        let sum = u16::from(s.as_bytes()[index]) + u16::from(order_minus_one.as_bytes()[index]) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    unreduced.0[32..].copy_from_slice(&wide);
    cases.push((key.author_key(), unreduced));
    // A small-order author key (the identity), with s = 0 and R = the identity too.
    let identity = EdwardsPoint::default().compress().to_bytes();
    let mut weak = Signature([0; 64]);
    weak.0[..32].copy_from_slice(&identity);
    cases.push((AuthorKey::from_bytes(identity), weak));
    // A small-order R.
    let mut small_r = good;
    small_r.0[..32].copy_from_slice(&EIGHT_TORSION[2].compress().to_bytes());
    cases.push((key.author_key(), small_r));
    // Every single bit flipped.
    for bit in 0..512 {
        let mut flipped = good;
        flipped.0[bit / 8] ^= 1 << (bit % 8);
        cases.push((key.author_key(), flipped));
    }
    let triples: Vec<(AuthorKey, DeltaId, Signature)> =
        cases.iter().map(|(author, signature)| (*author, id, *signature)).collect();
    let batched = verify_many(&items(&triples), None);
    for ((author, id, signature), in_batch) in triples.iter().zip(&batched) {
        let alone = verify_one(author, id, signature);
        assert_eq!(alone, *in_batch);
        assert_eq!(alone.is_ok(), strict(author, id, signature), "{signature:?}");
    }
    assert_eq!(batched.iter().filter(|result| result.is_ok()).count(), 1);
}

/// The one difference from `verify_strict`, by design: a signature whose R carries torsion,
/// which only the key's holder can make, passes the cofactored equation alone and in a batch
/// alike (a cofactorless batch would accept it by chance, and a single check never).
#[test]
fn author_made_torsion_is_accepted_alone_and_in_a_batch_alike() {
    let secret = [5u8; 32];
    let signing = SigningKey::from_bytes(&secret);
    let author = Keypair::from_secret_bytes(secret).author_key();
    let a = signing.to_scalar();
    let id = DeltaId::hash_of(b"torsion");
    let nonce = Scalar::from(123_456_789u64);
    let r = EdwardsPoint::mul_base(&nonce) + EIGHT_TORSION[1];
    let r_bytes = r.compress().to_bytes();
    let hash = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(author.as_bytes())
        .chain_update(delta_signing_message(&id))
        .finalize();
    let k = Scalar::from_bytes_mod_order_wide(&hash.into());
    let mut crafted = Signature([0; 64]);
    crafted.0[..32].copy_from_slice(&r_bytes);
    crafted.0[32..].copy_from_slice((nonce + k * a).as_bytes());
    assert!(!strict(&author, &id, &crafted));
    assert_eq!(verify_one(&author, &id, &crafted), Ok(()));
    let mut triples = signed(8, 2);
    triples.push((author, id, crafted));
    assert!(verify_many(&items(&triples), None).iter().all(Result::is_ok));
    // And a plain verify of ed25519-dalek (cofactorless, not strict) refuses it too.
    let key = ed25519_dalek::VerifyingKey::from_bytes(author.as_bytes()).unwrap();
    assert!(key.verify(&delta_signing_message(&id), &ed25519_dalek::Signature::from_bytes(&crafted.0)).is_err());
}

#[test]
fn canonical_y_matches_a_round_trip_through_the_curve() {
    let p_bytes = {
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xed;
        bytes[31] = 0x7f;
        bytes
    };
    for small_y in 0u8..19 {
        let mut canonical = [0u8; 32];
        canonical[0] = small_y;
        assert!(is_canonical_y(&canonical));
        // p + y: the only other encoding of y.
        let mut second = p_bytes;
        second[0] += small_y;
        assert!(!is_canonical_y(&second));
        for sign in [0u8, 0x80] {
            let mut encoding = second;
            encoding[31] |= sign;
            if let Some(point) = CompressedEdwardsY(encoding).decompress() {
                assert_ne!(point.compress().to_bytes(), encoding);
            }
        }
    }
    for seed in 0u64..64 {
        let point = EdwardsPoint::mul_base(&Scalar::from(seed + 1));
        assert!(is_canonical_y(&point.compress().to_bytes()));
    }
}

#[test]
fn records_get_the_answer_of_verify_with() {
    let key = Keypair::from_secret_bytes([3; 32]);
    let context = ContextId::from_bytes([4; 32]);
    let limits = Limits::default();
    let mut deltas: Vec<CausalDelta> = (0..10u64)
        .map(|n| {
            CausalDelta::new_signed(
                &key,
                context,
                vec![],
                Hlc { physical_ms: n, logical: 0, node: 0 },
                vec![n as u8; 1024],
            )
        })
        .collect();
    deltas[2].payload[0] ^= 1; // id mismatch
    deltas[5].signature.0[0] ^= 1; // bad signature
    deltas[7].parents = vec![DeltaId::hash_of(b"b"), DeltaId::hash_of(b"a")]; // not canonical
    let refs: Vec<&CausalDelta> = deltas.iter().collect();
    let results = verify_records(&refs, &limits, None);
    for (delta, result) in deltas.iter().zip(&results) {
        assert_eq!(*result, delta.verify_with(&limits, None));
    }
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 7);
    let headers: Vec<DeltaHeader> = deltas.iter().map(CausalDelta::header).collect();
    let header_refs: Vec<&DeltaHeader> = headers.iter().collect();
    for (header, result) in headers.iter().zip(verify_records(&header_refs, &limits, None)) {
        assert_eq!(result, header.verify_with(&limits, None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever is corrupted, and however the batches fall, each answer is the single check's.
    #[test]
    fn batches_answer_as_single_checks(
        count in 0usize..150,
        authors in 1u8..6,
        corrupt in proptest::collection::vec((0usize..150, 0usize..96), 0..6),
    ) {
        let mut triples = signed(count, authors);
        for (index, byte) in corrupt {
            if index < count {
                match byte {
                    0..=63 => triples[index].2 .0[byte] ^= 0x10,
                    64..=79 => triples[index].1 = DeltaId::hash_of(&[byte as u8]),
                    _ => triples[index].0 = Keypair::from_secret_bytes([byte as u8; 32]).author_key(),
                }
            }
        }
        let batched = verify_many(&items(&triples), None);
        for ((author, id, signature), in_batch) in triples.iter().zip(&batched) {
            prop_assert_eq!(verify_one(author, id, signature), *in_batch);
            prop_assert_eq!(in_batch.is_ok(), strict(author, id, signature));
        }
    }
}
