//! Property tests of the wire and of a node's network-facing inputs:
//!
//! - decoding arbitrary or mutated bytes never panics, classifies envelope errors exactly, and
//!   only ever accepts canonical encodings within every field bound;
//! - no mutation of a signed delta, or of a delta signed by the wrong key, yields a different
//!   delta that verifies;
//! - a node fed garbage gossip, requests and responses never panics, answers every request
//!   exactly once with a decodable response, sends only decodable messages, and keeps its
//!   applied state;
//! - arbitrary valid messages round-trip, and a field over its bound is refused by name.

use super::{
    Gossip, GossipMessage, GossipV1, Heartbeat, SnapshotCheckpoint, SnapshotPage, SyncErrorCode, SyncRequest,
    SyncRequestV1, SyncResponse, SyncResponseV1, WireError,
};
use crate::dag::SinceCursor;
use crate::delta::{CausalDelta, DeltaRef};
use crate::hlc::Hlc;
use crate::identity::{Keypair, Signature};
use crate::ids::{ContextId, DeltaId, PeerId, RootHash};
use crate::limits::Limits;
use crate::node::{Event, InboundRequestId, Input, Output, RequestId};
use crate::testing::{DeltaFactory, KvCounterApplier, KvOp, TestNode};
use crate::time::Timestamp;
use crate::Config;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use std::sync::Arc;

const T0: Timestamp = Timestamp::from_secs(1_000_000);

/// Valid encodings to mutate, and the signed deltas inside them.
struct Samples {
    gossip: Vec<Vec<u8>>,
    requests: Vec<Vec<u8>>,
    responses: Vec<Vec<u8>>,
    signed: Vec<CausalDelta>,
}

/// One valid message of every kind for `context`, with deltas signed by `signer` and
/// `heads` used where a message names heads.
fn samples(context: ContextId, signer: [u8; 32], heads: &[DeltaId]) -> Samples {
    let mut factory = DeltaFactory::signed(context, signer);
    let set = KvOp::encode(&[KvOp::Set { key: b"k".to_vec(), value: b"v".to_vec() }]);
    let first = factory.make(&[], set);
    let add = KvOp::encode(&[KvOp::Add { counter: b"c".to_vec(), amount: -3 }, KvOp::Remove { key: b"k".to_vec() }]);
    let second = factory.make(&[first.id, DeltaId::hash_of(b"elsewhere")], add);
    // Claims a member's authorship (key 2 in the node tests) with the right id but `signer`'s
    // signature: it must never verify, mutated or not.
    let impostor = Keypair::from_secret_bytes([2; 32]).author_key();
    let forged_hlc = Hlc { physical_ms: 5, logical: 0, node: 1 };
    let forged_payload = KvOp::encode(&[KvOp::Set { key: b"k".to_vec(), value: b"forged".to_vec() }]);
    let forged_id = CausalDelta::compute_id(&context, &impostor, &[], &forged_hlc, &forged_payload);
    let forged = Arc::new(CausalDelta {
        id: forged_id,
        context,
        author: impostor,
        parents: vec![],
        hlc: forged_hlc,
        kind: crate::delta::DeltaKind::App,
        payload: forged_payload,
        signature: Keypair::from_secret_bytes(signer).sign_delta(&forged_id),
    });
    let mut named_heads = heads.to_vec();
    named_heads.push(second.id);
    let root = RootHash::hash_of(b"some root");
    let cursor = SinceCursor { height: 3, id: first.id };
    let gossip = vec![
        GossipMessage::encode_v1(GossipV1::Delta(first.clone())),
        GossipMessage::encode_v1(GossipV1::Delta(second.clone())),
        GossipMessage::encode_v1(GossipV1::Delta(forged.clone())),
        GossipMessage::encode_v1(GossipV1::Heartbeat(Heartbeat {
            context,
            sender: PeerId::hash_of(b"some sender"),
            sequence: 1,
            root,
            heads: named_heads.clone(),
            applied_count: 7,
        })),
    ];
    let requests = vec![
        SyncRequest::encode_v1(SyncRequestV1::Heads { context }),
        SyncRequest::encode_v1(SyncRequestV1::DeltasSince {
            context,
            known: heads.to_vec(),
            wanted: vec![second.id],
            after: Some(cursor),
            max_deltas: 10,
        }),
        SyncRequest::encode_v1(SyncRequestV1::DeltasSince {
            context,
            known: vec![],
            wanted: vec![],
            after: None,
            max_deltas: 500,
        }),
        SyncRequest::encode_v1(SyncRequestV1::SnapshotBegin { context }),
        SyncRequest::encode_v1(SyncRequestV1::SnapshotPage { context, snapshot_id: 1, page: 0 }),
        SyncRequest::encode_v2(crate::wire::SyncRequestV2::Key {
            context,
            epoch: crate::seal::KeyEpoch(1),
            key_id: crate::seal::KeyId([3; 16]),
        }),
    ];
    let responses = vec![
        SyncResponse::encode_v1(SyncResponseV1::Heads { context, heads: named_heads.clone(), root, applied_count: 2 }),
        SyncResponse::encode_v1(SyncResponseV1::Deltas {
            context,
            deltas: vec![first.clone(), second.clone(), forged],
            next: Some(cursor),
            gap_total: 5,
        }),
        SyncResponse::encode_v1(SyncResponseV1::SnapshotCheckpoint(SnapshotCheckpoint {
            context,
            snapshot_id: 1,
            heads: named_heads,
            root,
            state_bytes: 40,
            entry_count: 2,
            page_count: 1,
        })),
        SyncResponse::encode_v1(SyncResponseV1::SnapshotPage(SnapshotPage {
            context,
            snapshot_id: 1,
            page: 0,
            state_chunk: (0..40).collect(),
            entries: vec![first.header(), second.header()],
        })),
        SyncResponse::encode_v1(SyncResponseV1::Error(SyncErrorCode::GapTooLarge)),
        SyncResponse::encode_v2(crate::wire::SyncResponseV2::Key {
            context,
            epoch: crate::seal::KeyEpoch(1),
            key_id: crate::seal::KeyId([3; 16]),
            wrap: crate::seal::wrap_key(
                &Keypair::from_secret_bytes(signer),
                &impostor,
                &context,
                &crate::seal::ContextKey::new(crate::seal::KeyEpoch(1), [8; 32]),
            )
            .ok(),
        }),
    ];
    Samples { gossip, requests, responses, signed: vec![(*first).clone(), (*second).clone()] }
}

/// One edit of an encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: Index,
        mask: u8,
    },
    Truncate {
        at: Index,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Remove {
        at: Index,
        len: usize,
    },
    /// Overwrites four bytes, typically a length prefix, with a chosen value.
    Length {
        at: Index,
        value: u32,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let length_value = prop_oneof![Just(0u32), Just(1), 2u32..300, Just(1 << 31), Just(u32::MAX), any::<u32>()];
    prop_oneof![
        3 => (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        2 => (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<Index>(), 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
        2 => (any::<Index>(), length_value).prop_map(|(at, value)| Mutation::Length { at, value }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        match mutation {
            Mutation::Flip { at, mask } => {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] ^= mask;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at.index(bytes.len() + 1)),
            Mutation::Insert { at, bytes: inserted } => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Remove { at, len } => {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    let end = (at + len).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            Mutation::Length { at, value } => {
                if bytes.len() >= 4 {
                    let at = at.index(bytes.len() - 3);
                    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
    bytes
}

/// Random bytes, half of them behind a valid version tag and a plausible variant tag so the
/// parser gets past the envelope.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..2048),
        (0u8..6, vec(any::<u8>(), 0..2048)).prop_map(|(variant, rest)| {
            let mut bytes = vec![0, variant];
            bytes.extend(rest);
            bytes
        }),
    ]
}

/// `tight` half of the time, else the default bound.
fn maybe(tight: std::ops::Range<usize>, default: usize) -> impl Strategy<Value = usize> {
    prop_oneof![tight, Just(default)]
}

/// Small bounds (each one half of the time), so that size and field-bound checks are hit
/// often, alone and together.
fn tight_limits() -> impl Strategy<Value = Limits> {
    let d = Limits::default();
    (
        maybe(0..800, d.max_message_bytes),
        maybe(0..32, d.max_payload_bytes),
        maybe(0..3, d.max_parents_per_delta),
        maybe(0..3, d.max_heads_per_message),
        maybe(0..4, d.max_deltas_per_page),
        maybe(0..48, d.max_snapshot_page_bytes),
        maybe(0..3, d.max_snapshot_ids_per_page),
        maybe(0..3, d.max_snapshot_ids),
    )
        .prop_map(|(message, payload, parents, heads, deltas, page_bytes, page_ids, snapshot_ids)| Limits {
            max_message_bytes: message,
            max_payload_bytes: payload,
            max_parents_per_delta: parents,
            max_heads_per_message: heads,
            max_deltas_per_page: deltas,
            max_snapshot_page_bytes: page_bytes,
            max_snapshot_ids_per_page: page_ids,
            max_snapshot_ids: snapshot_ids,
            ..Limits::default()
        })
}

/// What every decode error must satisfy: the envelope checks come first, in a fixed order.
/// `versions` is how many version tags the decoder speaks (0 up to `versions - 1`).
fn check_error(bytes: &[u8], max_bytes: usize, versions: u8, error: &WireError) -> Result<(), TestCaseError> {
    if bytes.len() > max_bytes {
        prop_assert_eq!(error, &WireError::TooLarge { bytes: bytes.len(), max: max_bytes });
    } else if bytes.is_empty() {
        prop_assert_eq!(error, &WireError::Empty);
    } else if bytes[0] >= versions {
        prop_assert_eq!(error, &WireError::UnsupportedVersion(bytes[0]));
    } else if let WireError::FieldTooLarge { len, max, .. } = error {
        prop_assert!(len > max, "field error without an excess: {}", error);
    } else {
        prop_assert!(matches!(error, WireError::Malformed(_)), "unexpected error {:?}", error);
    }
    prop_assert!(!error.label().is_empty());
    prop_assert!(!error.to_string().is_empty());
    Ok(())
}

/// What every accepted message must satisfy: within the size bound, version 1, canonical.
fn check_accepted(bytes: &[u8], max_bytes: usize, reencoded: Vec<u8>) -> Result<(), TestCaseError> {
    prop_assert!(bytes.len() <= max_bytes);
    prop_assert_eq!(bytes.first(), Some(&0u8));
    prop_assert_eq!(reencoded, bytes.to_vec(), "accepted a non-canonical encoding");
    Ok(())
}

// ---- the documented field bounds, written out independently of the decoders ----

fn delta_fits(delta: &CausalDelta, limits: &Limits) -> bool {
    delta.payload.len() <= limits.max_payload_bytes && delta.parents.len() <= limits.max_parents_per_delta
}

fn gossip_fits(message: &Gossip, limits: &Limits) -> bool {
    match message {
        Gossip::Delta(delta) => delta_fits(delta, limits),
        Gossip::Heartbeat(heartbeat) => heartbeat.heads.len() <= limits.max_heads_per_message,
        Gossip::SignedHeartbeat(heartbeat) => {
            heartbeat.attestation.attestation.heads.len() <= limits.max_heads_per_message
        }
    }
}

/// A decoded gossip message encoded again under the version tag it came with (a delta
/// encodes alike in V1 and V2).
fn reencode_gossip(message: &Gossip, tag: u8) -> Vec<u8> {
    match message.clone() {
        Gossip::Delta(delta) if tag == 0 => GossipMessage::encode_v1(GossipV1::Delta(delta)),
        Gossip::Delta(delta) => GossipMessage::encode_v2(crate::wire::GossipV2::Delta(delta)),
        Gossip::Heartbeat(heartbeat) => GossipMessage::encode_v1(GossipV1::Heartbeat(heartbeat)),
        Gossip::SignedHeartbeat(heartbeat) => GossipMessage::encode_v2(crate::wire::GossipV2::Heartbeat(heartbeat)),
    }
}

fn request_fits(request: &SyncRequestV1, limits: &Limits) -> bool {
    match request {
        SyncRequestV1::DeltasSince { known, wanted, .. } => {
            known.len() <= limits.max_heads_per_message && wanted.len() <= limits.max_heads_per_message
        }
        SyncRequestV1::Heads { .. } | SyncRequestV1::SnapshotBegin { .. } | SyncRequestV1::SnapshotPage { .. } => true,
    }
}

fn response_fits(response: &SyncResponseV1, limits: &Limits) -> bool {
    match response {
        SyncResponseV1::Heads { heads, .. } => heads.len() <= limits.max_heads_per_message,
        SyncResponseV1::Deltas { deltas, .. } => {
            deltas.len() <= limits.max_deltas_per_page && deltas.iter().all(|delta| delta_fits(delta, limits))
        }
        // Every head of the snapshot: bounded like its ids, not like a heads message.
        SyncResponseV1::SnapshotCheckpoint(checkpoint) => checkpoint.heads.len() <= limits.max_snapshot_ids,
        SyncResponseV1::SnapshotPage(page) => {
            page.state_chunk.len() <= limits.max_snapshot_page_bytes
                && page.entries.len() <= limits.max_snapshot_ids_per_page
                && page.entries.iter().all(|entry| entry.parents.len() <= limits.max_parents_per_delta)
        }
        SyncResponseV1::Error(_) => true,
    }
}

/// A decoded delta verifies only if it is one of `signed`.
fn check_not_forged(delta: &DeltaRef, limits: &Limits, signed: &[CausalDelta]) -> Result<(), TestCaseError> {
    if delta.verify(limits).is_ok() {
        prop_assert!(signed.contains(delta), "a mutated delta verifies: {:?}", delta);
    }
    Ok(())
}

fn check_gossip(bytes: &[u8], limits: &Limits, signed: &[CausalDelta]) -> Result<(), TestCaseError> {
    match GossipMessage::decode(bytes, limits) {
        Ok(message) => {
            // Gossip has two versions: the tag is 0 or 1, and the bytes re-encode under it.
            prop_assert!(bytes.len() <= limits.max_message_bytes);
            let tag = bytes[0];
            prop_assert!(tag <= 1, "accepted version tag {}", tag);
            prop_assert_eq!(reencode_gossip(&message, tag), bytes.to_vec(), "accepted a non-canonical encoding");
            prop_assert!(gossip_fits(&message, limits), "accepted over a bound: {:?}", message);
            if let Gossip::Delta(delta) = &message {
                check_not_forged(delta, limits, signed)?;
                let reencoded = reencode_gossip(&message, tag);
                prop_assert_eq!(GossipMessage::decode(&reencoded, limits), Ok(message.clone()));
            }
        }
        Err(error) => check_error(bytes, limits.max_message_bytes, 2, &error)?,
    }
    Ok(())
}

fn check_request(bytes: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    match SyncRequest::decode(bytes, limits) {
        Ok(request) => {
            check_accepted(bytes, limits.max_message_bytes, SyncRequest::encode_v1(request.clone()))?;
            prop_assert!(request_fits(&request, limits), "accepted over a bound: {:?}", request);
        }
        Err(error) => check_error(bytes, limits.max_message_bytes, 1, &error)?,
    }
    Ok(())
}

fn check_response(bytes: &[u8], limits: &Limits, signed: &[CausalDelta]) -> Result<(), TestCaseError> {
    match SyncResponse::decode(bytes, limits) {
        Ok(response) => {
            check_accepted(bytes, limits.max_message_bytes, SyncResponse::encode_v1(response.clone()))?;
            prop_assert!(response_fits(&response, limits), "accepted over a bound: {:?}", response);
            if let SyncResponseV1::Deltas { deltas, .. } = &response {
                for delta in deltas {
                    check_not_forged(delta, limits, signed)?;
                }
            }
        }
        Err(error) => check_error(bytes, limits.max_message_bytes, 1, &error)?,
    }
    Ok(())
}

/// Every decoder, with `limits`.
/// Any version: what decodes re-encodes to the same bytes, and a V1 body keeps its bounds.
fn check_any_version(bytes: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    match SyncRequest::decode_any(bytes, limits) {
        Ok(request) => {
            prop_assert!(bytes.len() <= limits.max_message_bytes && bytes[0] <= 1);
            prop_assert_eq!(crate::wire::encode(&request), bytes.to_vec(), "accepted a non-canonical encoding");
            if let SyncRequest::V1(request) = &request {
                prop_assert!(request_fits(request, limits), "accepted over a bound: {:?}", request);
            }
        }
        Err(error) => check_error(bytes, limits.max_message_bytes, 2, &error)?,
    }
    match SyncResponse::decode_any(bytes, limits) {
        Ok(response) => {
            prop_assert!(bytes.len() <= limits.max_message_bytes && bytes[0] <= 1);
            prop_assert_eq!(crate::wire::encode(&response), bytes.to_vec(), "accepted a non-canonical encoding");
            if let SyncResponse::V1(response) = &response {
                prop_assert!(response_fits(response, limits), "accepted over a bound: {:?}", response);
            }
        }
        Err(error) => check_error(bytes, limits.max_message_bytes, 2, &error)?,
    }
    Ok(())
}

fn check_all(bytes: &[u8], limits: &Limits, signed: &[CausalDelta]) -> Result<(), TestCaseError> {
    check_gossip(bytes, limits, signed)?;
    check_request(bytes, limits)?;
    check_response(bytes, limits, signed)?;
    check_any_version(bytes, limits)
}

fn wire_context() -> ContextId {
    ContextId::hash_of(b"decode-props")
}

/// `bytes` (the encoding of `message`) decodes under `limits` exactly when it fits the size
/// bound and `fields_fit`, and then to `message`; and the size bound is exact: one byte less
/// refuses it as too large, exactly its size lets the field checks decide.
fn accepted_exactly_within<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    message: &T,
    fields_fit: bool,
    limits: &Limits,
    decode: impl Fn(&[u8], &Limits) -> Result<T, WireError>,
) -> Result<(), TestCaseError> {
    let fits = bytes.len() <= limits.max_message_bytes && fields_fit;
    let decoded = decode(bytes, limits);
    prop_assert_eq!(decoded.is_ok(), fits, "{:?} for {:?}", decoded, message);
    if let Ok(decoded) = decoded {
        prop_assert_eq!(&decoded, message);
    }
    let exact = Limits { max_message_bytes: bytes.len(), ..limits.clone() };
    prop_assert_eq!(decode(bytes, &exact).is_ok(), fields_fit);
    let short = Limits { max_message_bytes: bytes.len() - 1, ..limits.clone() };
    prop_assert_eq!(
        decode(bytes, &short).err(),
        Some(WireError::TooLarge { bytes: bytes.len(), max: bytes.len() - 1 })
    );
    Ok(())
}

// ---- arbitrary valid messages ----

fn arb_id() -> impl Strategy<Value = DeltaId> {
    any::<[u8; 32]>().prop_map(DeltaId::from_bytes)
}

fn arb_context() -> impl Strategy<Value = ContextId> {
    any::<[u8; 32]>().prop_map(ContextId::from_bytes)
}

fn arb_root() -> impl Strategy<Value = RootHash> {
    any::<[u8; 32]>().prop_map(RootHash::from_bytes)
}

fn arb_cursor() -> impl Strategy<Value = SinceCursor> {
    (any::<u64>(), arb_id()).prop_map(|(height, id)| SinceCursor { height, id })
}

/// A delta with arbitrary fields (not a valid id or signature: the wire does not care).
fn arb_delta() -> impl Strategy<Value = DeltaRef> {
    (
        arb_id(),
        arb_context(),
        any::<[u8; 32]>(),
        vec(arb_id(), 0..4),
        (any::<u64>(), any::<u32>(), any::<u64>()),
        vec(any::<u8>(), 0..64),
        any::<[u8; 64]>(),
    )
        .prop_map(|(id, context, author, parents, (physical_ms, logical, node), payload, signature)| {
            Arc::new(CausalDelta {
                id,
                context,
                author: crate::ids::AuthorKey::from_bytes(author),
                parents,
                hlc: Hlc { physical_ms, logical, node },
                kind: crate::delta::DeltaKind::App,
                payload,
                signature: Signature(signature),
            })
        })
}

fn arb_heartbeat(max_heads: usize) -> impl Strategy<Value = Heartbeat> {
    (arb_context(), any::<[u8; 32]>(), any::<u64>(), arb_root(), vec(arb_id(), 0..=max_heads), any::<u64>()).prop_map(
        |(context, sender, sequence, root, heads, applied_count)| Heartbeat {
            context,
            sender: PeerId::from_bytes(sender),
            sequence,
            root,
            heads,
            applied_count,
        },
    )
}

fn arb_gossip() -> impl Strategy<Value = GossipV1> {
    prop_oneof![arb_delta().prop_map(GossipV1::Delta), arb_heartbeat(40).prop_map(GossipV1::Heartbeat)]
}

fn arb_deltas_since(max_ids: usize) -> impl Strategy<Value = SyncRequestV1> {
    (
        arb_context(),
        vec(arb_id(), 0..=max_ids),
        vec(arb_id(), 0..=max_ids),
        proptest::option::of(arb_cursor()),
        any::<u32>(),
    )
        .prop_map(|(context, known, wanted, after, max_deltas)| SyncRequestV1::DeltasSince {
            context,
            known,
            wanted,
            after,
            max_deltas,
        })
}

fn arb_request() -> impl Strategy<Value = SyncRequestV1> {
    prop_oneof![
        arb_context().prop_map(|context| SyncRequestV1::Heads { context }),
        arb_deltas_since(40),
        arb_context().prop_map(|context| SyncRequestV1::SnapshotBegin { context }),
        (arb_context(), any::<u64>(), any::<u32>())
            .prop_map(|(context, snapshot_id, page)| SyncRequestV1::SnapshotPage { context, snapshot_id, page }),
    ]
}

fn arb_error_code() -> impl Strategy<Value = SyncErrorCode> {
    prop::sample::select(vec![
        SyncErrorCode::UnknownContext,
        SyncErrorCode::SnapshotRequired,
        SyncErrorCode::GapTooLarge,
        SyncErrorCode::SnapshotUnavailable,
        SyncErrorCode::Busy,
        SyncErrorCode::BadRequest,
        SyncErrorCode::StateTooLarge,
        SyncErrorCode::NotMember,
    ])
}

fn arb_response() -> impl Strategy<Value = SyncResponseV1> {
    prop_oneof![
        (arb_context(), vec(arb_id(), 0..40), arb_root(), any::<u64>()).prop_map(
            |(context, heads, root, applied_count)| SyncResponseV1::Heads { context, heads, root, applied_count }
        ),
        (arb_context(), vec(arb_delta(), 0..4), proptest::option::of(arb_cursor()), any::<u64>())
            .prop_map(|(context, deltas, next, gap_total)| SyncResponseV1::Deltas { context, deltas, next, gap_total }),
        (arb_context(), any::<u64>(), vec(arb_id(), 0..40), arb_root(), any::<u64>(), any::<u64>(), any::<u32>())
            .prop_map(|(context, snapshot_id, heads, root, state_bytes, entry_count, page_count)| {
                SyncResponseV1::SnapshotCheckpoint(SnapshotCheckpoint {
                    context,
                    snapshot_id,
                    heads,
                    root,
                    state_bytes,
                    entry_count,
                    page_count,
                })
            }),
        (
            arb_context(),
            any::<u64>(),
            any::<u32>(),
            vec(any::<u8>(), 0..256),
            vec(
                (arb_id(), vec(arb_id(), 0..3)).prop_map(|(id, parents)| crate::testing::stub_header(id, parents)),
                0..8
            )
        )
            .prop_map(|(context, snapshot_id, page, state_chunk, entries)| {
                SyncResponseV1::SnapshotPage(SnapshotPage { context, snapshot_id, page, state_chunk, entries })
            }),
        arb_error_code().prop_map(SyncResponseV1::Error),
    ]
}

// ---- a node under fuzzed input ----

fn node_genesis() -> crate::DeltaRef {
    let members = (1..=4u8).map(|n| Keypair::from_secret_bytes([n; 32]).author_key());
    crate::testing::genesis_of(&Keypair::from_secret_bytes([1; 32]), members, 0)
}

fn node_context() -> ContextId {
    node_genesis().context
}

/// Where the bytes of one fuzzed input come from.
#[derive(Debug, Clone)]
enum Source {
    Garbage(Vec<u8>),
    /// A mutated valid message of the input's kind (deltas in it are signed by a non-member,
    /// or claim a member's authorship with a non-member's signature).
    Sample {
        which: Index,
        mutations: Vec<Mutation>,
    },
}

#[derive(Debug, Clone)]
enum Which {
    /// One of the node's own outstanding requests.
    Outstanding(Index),
    Any(u64),
}

#[derive(Debug, Clone)]
enum FuzzInput {
    Gossip {
        stranger: bool,
        source: Source,
    },
    Request {
        stranger: bool,
        id: u64,
        source: Source,
    },
    Response {
        which: Which,
        source: Source,
    },
    /// Time passes (timers fire: heartbeats, syncs, request expiry).
    Tick {
        millis: u64,
    },
}

fn source() -> impl Strategy<Value = Source> {
    // Mostly lightly edited valid messages, which get past decoding into the node's logic.
    prop_oneof![
        1 => garbage().prop_map(Source::Garbage),
        3 => (any::<Index>(), vec(mutation(), 0..3)).prop_map(|(which, mutations)| Source::Sample { which, mutations }),
    ]
}

fn fuzz_input() -> impl Strategy<Value = FuzzInput> {
    let which = prop_oneof![
        2 => any::<Index>().prop_map(Which::Outstanding),
        1 => (0u64..8).prop_map(Which::Any),
        1 => any::<u64>().prop_map(Which::Any),
    ];
    prop_oneof![
        3 => (any::<bool>(), source()).prop_map(|(stranger, source)| FuzzInput::Gossip { stranger, source }),
        3 => (any::<bool>(), any::<u64>(), source())
            .prop_map(|(stranger, id, source)| FuzzInput::Request { stranger, id, source }),
        3 => (which, source()).prop_map(|(which, source)| FuzzInput::Response { which, source }),
        1 => (0u64..20_000).prop_map(|millis| FuzzInput::Tick { millis }),
    ]
}

fn resolve(source: &Source, pool: &[Vec<u8>]) -> Vec<u8> {
    match source {
        Source::Garbage(bytes) => bytes.clone(),
        Source::Sample { which, mutations } => mutate(pool[which.index(pool.len())].clone(), mutations),
    }
}

/// The node's applied state: what no unsigned input may change.
fn applied_state(node: &TestNode<KvCounterApplier>) -> (usize, usize, Vec<DeltaId>, RootHash) {
    let dag = node.dag(&node_context()).expect("joined");
    (dag.applied_len(), dag.pending_len(), dag.heads_vec(), node.root_hash(&node_context()))
}

/// Drains the node, checking everything it sends decodes. Returns the responses it made and
/// records the requests it sent in `outstanding`.
fn drain_checked(
    node: &mut TestNode<KvCounterApplier>,
    outstanding: &mut Vec<RequestId>,
) -> Result<Vec<(PeerId, InboundRequestId, Vec<u8>)>, TestCaseError> {
    let limits = node.config().limits.clone();
    let mut responded = Vec::new();
    while let Some(output) = node.poll_output() {
        match output {
            Output::Broadcast { bytes, .. } => {
                prop_assert!(GossipMessage::decode(&bytes, &limits).is_ok(), "node broadcast garbage");
            }
            Output::Request { request_id, bytes, .. } => {
                prop_assert!(SyncRequest::decode_any(&bytes, &limits).is_ok(), "node sent a bad request");
                outstanding.push(request_id);
            }
            Output::Respond { to, request_id, bytes } => {
                prop_assert!(SyncResponse::decode_any(&bytes, &limits).is_ok(), "node sent a bad response");
                responded.push((to, request_id, bytes));
            }
            Output::Event(Event::DeltaApplied { id, .. }) => {
                prop_assert!(false, "garbage input applied delta {}", id);
            }
            Output::Event(Event::SnapshotAdopted { root, .. }) => {
                prop_assert!(false, "garbage input adopted a snapshot with root {}", root);
            }
            Output::Event(_) | Output::EvictBlobs { .. } => {}
        }
    }
    Ok(responded)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic any decoder, under default and tight limits.
    #[test]
    fn decoding_garbage_never_panics(bytes in garbage(), tight in tight_limits()) {
        check_all(&bytes, &Limits::default(), &[])?;
        check_all(&bytes, &tight, &[])?;
    }

    /// Mutated valid messages never panic any decoder; what still decodes is canonical and
    /// within bounds, and no mutated delta verifies unless it is the original.
    #[test]
    fn decoding_mutated_messages_never_panics(
        kind in 0usize..3,
        which in any::<Index>(),
        mutations in vec(mutation(), 1..=4),
        tight in tight_limits(),
    ) {
        let samples = samples(wire_context(), [9; 32], &[DeltaId::hash_of(b"a head")]);
        let pool = match kind {
            0 => &samples.gossip,
            1 => &samples.requests,
            _ => &samples.responses,
        };
        let original = &pool[which.index(pool.len())];
        // The originals themselves decode under the default limits.
        let limits = Limits::default();
        match kind {
            0 => prop_assert!(GossipMessage::decode(original, &limits).is_ok()),
            1 => prop_assert!(SyncRequest::decode_any(original, &limits).is_ok()),
            _ => prop_assert!(SyncResponse::decode_any(original, &limits).is_ok()),
        }
        check_all(original, &limits, &samples.signed)?;
        check_all(original, &tight, &samples.signed)?;
        let bytes = mutate(original.clone(), &mutations);
        check_all(&bytes, &Limits::default(), &samples.signed)?;
        check_all(&bytes, &tight, &samples.signed)?;
    }

    /// Any valid message round-trips through its decoder.
    #[test]
    fn valid_messages_round_trip(gossip in arb_gossip(), request in arb_request(), response in arb_response()) {
        let limits = Limits::default();
        prop_assert_eq!(GossipMessage::decode(&GossipMessage::encode_v1(gossip.clone()), &limits), Ok(gossip.into()));
        prop_assert_eq!(SyncRequest::decode(&SyncRequest::encode_v1(request.clone()), &limits), Ok(request));
        prop_assert_eq!(SyncResponse::decode(&SyncResponse::encode_v1(response.clone()), &limits), Ok(response));
    }

    /// Under arbitrary (often tight) limits, a valid message is accepted exactly when it is
    /// within the size bound and every field bound, and then decodes to itself.
    #[test]
    fn valid_messages_are_accepted_exactly_within_the_bounds(
        gossip in arb_gossip(),
        request in arb_request(),
        response in arb_response(),
        limits in tight_limits(),
    ) {
        accepted_exactly_within(
            &GossipMessage::encode_v1(gossip.clone()),
            &Gossip::from(gossip.clone()),
            gossip_fits(&gossip.clone().into(), &limits),
            &limits,
            GossipMessage::decode,
        )?;
        accepted_exactly_within(
            &SyncRequest::encode_v1(request.clone()),
            &request,
            request_fits(&request, &limits),
            &limits,
            SyncRequest::decode,
        )?;
        accepted_exactly_within(
            &SyncResponse::encode_v1(response.clone()),
            &response,
            response_fits(&response, &limits),
            &limits,
            SyncResponse::decode,
        )?;
    }

    /// Heads and id lists are accepted exactly up to their bound and refused by field name
    /// beyond it.
    #[test]
    fn id_lists_are_accepted_exactly_up_to_their_bound(
        max in 0usize..6,
        heartbeat in arb_heartbeat(9),
        request in arb_deltas_since(9),
    ) {
        let limits = Limits { max_heads_per_message: max, ..Limits::default() };
        let decoded = GossipMessage::decode(&GossipMessage::encode_v1(GossipV1::Heartbeat(heartbeat.clone())), &limits);
        if heartbeat.heads.len() <= max {
            prop_assert_eq!(decoded, Ok(Gossip::Heartbeat(heartbeat)));
        } else {
            prop_assert_eq!(decoded, Err(WireError::FieldTooLarge { field: "heartbeat.heads", len: heartbeat.heads.len(), max }));
        }
        let SyncRequestV1::DeltasSince { known, wanted, .. } = &request else { unreachable!("arb_deltas_since") };
        let (known_len, wanted_len) = (known.len(), wanted.len());
        let decoded = SyncRequest::decode(&SyncRequest::encode_v1(request.clone()), &limits);
        if known_len > max {
            prop_assert_eq!(decoded, Err(WireError::FieldTooLarge { field: "deltas_since.known", len: known_len, max }));
        } else if wanted_len > max {
            prop_assert_eq!(decoded, Err(WireError::FieldTooLarge { field: "deltas_since.wanted", len: wanted_len, max }));
        } else {
            prop_assert_eq!(decoded, Ok(request));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// A node fed garbage and mutated messages (as gossip, requests and responses, including
    /// responses to its own outstanding requests) never panics, answers each request exactly
    /// once, sends only decodable messages, and applies nothing.
    #[test]
    fn node_survives_garbage_and_keeps_its_state(inputs in vec(fuzz_input(), 1..=12)) {
        let context = node_context();
        let mut node = TestNode::new(Config::default(), Keypair::from_secret_bytes([1; 32]), 1, KvCounterApplier::default(), T0);
        node.join_context(&node_genesis()).unwrap();
        for i in 0..3u8 {
            let payload = KvOp::encode(&[KvOp::Set { key: vec![i], value: vec![i] }]);
            node.local_delta(T0, context, payload).unwrap();
        }
        // A connected member peer; a delta of its with a parent nobody has (pending, and a
        // parent fetch outstanding); a heartbeat claiming more (a sync outstanding).
        let peer = Keypair::from_secret_bytes([2; 32]).peer_id();
        let stranger = PeerId::hash_of(b"stranger");
        node.handle_input(T0, Input::PeerUp { peer });
        let orphan = DeltaFactory::signed(context, [2; 32]).make(&[DeltaId::hash_of(b"absent")], KvOp::encode(&[]));
        node.handle_input(T0, Input::Gossip { from: peer, bytes: GossipMessage::encode_v1(GossipV1::Delta(orphan)) });
        let ahead = Heartbeat {
            context,
            sender: peer,
            sequence: 1,
            root: RootHash::hash_of(b"ahead"),
            heads: vec![DeltaId::hash_of(b"ahead")],
            applied_count: 100,
        };
        node.handle_input(T0, Input::Gossip { from: peer, bytes: GossipMessage::encode_v1(GossipV1::Heartbeat(ahead)) });
        let mut outstanding: Vec<RequestId> = Vec::new();
        while let Some(output) = node.poll_output() {
            if let Output::Request { request_id, .. } = output {
                outstanding.push(request_id);
            }
        }
        prop_assert!(outstanding.len() >= 2, "a parent fetch and a sync are outstanding: {:?}", outstanding);
        let before = applied_state(&node);
        prop_assert_eq!(before.1, 1, "the orphan is pending");

        let heads = node.dag(&context).unwrap().heads_vec();
        // Deltas in the samples are signed by key 9, not a member.
        let pools = samples(context, [9; 32], &heads);
        let mut now = T0;
        for input in &inputs {
            match input {
                FuzzInput::Gossip { stranger: is_stranger, source } => {
                    let from = if *is_stranger { stranger } else { peer };
                    node.handle_input(now, Input::Gossip { from, bytes: resolve(source, &pools.gossip) });
                    prop_assert!(drain_checked(&mut node, &mut outstanding)?.is_empty(), "gossip answered");
                }
                FuzzInput::Request { stranger: is_stranger, id, source } => {
                    let from = if *is_stranger { stranger } else { peer };
                    let request_id = InboundRequestId(*id);
                    node.handle_input(now, Input::Request { from, request_id, bytes: resolve(source, &pools.requests) });
                    let responded = drain_checked(&mut node, &mut outstanding)?;
                    prop_assert_eq!(responded.len(), 1, "a request gets exactly one response");
                    prop_assert_eq!(responded[0].0, from);
                    prop_assert_eq!(responded[0].1, request_id);
                }
                FuzzInput::Response { which, source } => {
                    let request_id = match which {
                        Which::Outstanding(index) if !outstanding.is_empty() => outstanding[index.index(outstanding.len())],
                        Which::Outstanding(index) => RequestId(index.index(8) as u64),
                        Which::Any(id) => RequestId(*id),
                    };
                    node.handle_input(now, Input::Response { request_id, bytes: resolve(source, &pools.responses) });
                    prop_assert!(drain_checked(&mut node, &mut outstanding)?.is_empty(), "response answered");
                }
                FuzzInput::Tick { millis } => {
                    now = now.add_millis(*millis);
                    node.handle_input(now, Input::Timeout);
                    prop_assert!(drain_checked(&mut node, &mut outstanding)?.is_empty(), "timer answered");
                }
            }
            prop_assert_eq!(&applied_state(&node), &before);
            node.dag(&context).unwrap().check_invariants();
        }
        // Still a working node.
        node.local_delta(now, context, KvOp::encode(&[KvOp::Add { counter: b"c".to_vec(), amount: 1 }])).unwrap();
        prop_assert_eq!(node.dag(&context).unwrap().applied_len(), before.0 + 1);
    }
}
