//! Sync requests and responses: point-to-point, one response per request.

use super::{bound, decode_envelope, encode, WireError};
use crate::dag::SinceCursor;
use crate::delta::DeltaHeader;
use crate::delta::DeltaRef;
use crate::ids::{ContextId, DeltaId, RootHash};
use crate::limits::Limits;
use crate::seal::{KeyEpoch, KeyId, WrappedKey};
use borsh::{BorshDeserialize, BorshSerialize};

/// The versioned request envelope. New versions are new variants; old ones stay decodable, and
/// a request goes out in the lowest version that carries it (every V1 request still as V1).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequest {
    /// Version 1.
    V1(SyncRequestV1),
    /// Version 2: adds key requests.
    V2(SyncRequestV2),
}

/// Version 2 requests: only what V1 cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequestV2 {
    /// "Wrap key `(epoch, key_id)` of this context to me": sent by a member that an applied
    /// membership delta lists as the key's recipient but that does not hold it (the wrap it was
    /// sent did not open).
    Key {
        /// The context.
        context: ContextId,
        /// The key's epoch.
        epoch: KeyEpoch,
        /// Which key of the epoch.
        key_id: KeyId,
    },
}

/// Version 1 requests.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncRequestV1 {
    /// "What are your heads and root?"
    Heads {
        /// The context.
        context: ContextId,
    },
    /// "Send what I lack": deltas reachable from `wanted` (your heads if empty) that are not
    /// reachable from `known`, in causal order, after `after`.
    DeltasSince {
        /// The context.
        context: ContextId,
        /// The requester's heads.
        known: Vec<DeltaId>,
        /// The deltas wanted (with their missing ancestors); empty means "your heads".
        wanted: Vec<DeltaId>,
        /// Resume point from the previous page.
        after: Option<SinceCursor>,
        /// Most deltas the requester wants in this page.
        max_deltas: u32,
    },
    /// "Freeze a snapshot of this context for me."
    SnapshotBegin {
        /// The context.
        context: ContextId,
    },
    /// "Send page `page` of snapshot `snapshot_id`."
    SnapshotPage {
        /// The context.
        context: ContextId,
        /// From the checkpoint.
        snapshot_id: u64,
        /// Zero-based page number.
        page: u32,
    },
}

/// The versioned response envelope: a response is in the version of its request.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncResponse {
    /// Version 1.
    V1(SyncResponseV1),
    /// Version 2.
    V2(SyncResponseV2),
}

/// Version 2 responses.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncResponseV2 {
    /// Answer to `Key`: the key wrapped from the responder to the requester, or `None` if the
    /// responder does not hold it or does not count the requester among its recipients.
    Key {
        /// The context.
        context: ContextId,
        /// The key's epoch.
        epoch: KeyEpoch,
        /// Which key of the epoch.
        key_id: KeyId,
        /// The wrapped key.
        wrap: Option<WrappedKey>,
    },
}

/// Version 1 responses.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SyncResponseV1 {
    /// Answer to `Heads`.
    Heads {
        /// The context.
        context: ContextId,
        /// The responder's heads, sorted.
        heads: Vec<DeltaId>,
        /// The responder's state root.
        root: RootHash,
        /// How many deltas the responder has applied.
        applied_count: u64,
    },
    /// Answer to `DeltasSince`.
    Deltas {
        /// The context.
        context: ContextId,
        /// Deltas in causal order.
        deltas: Vec<DeltaRef>,
        /// Resume point; `None` on the last page.
        next: Option<SinceCursor>,
        /// Size of the whole gap.
        gap_total: u64,
    },
    /// Answer to `SnapshotBegin`.
    SnapshotCheckpoint(SnapshotCheckpoint),
    /// Answer to `SnapshotPage`.
    SnapshotPage(SnapshotPage),
    /// The request could not be served.
    Error(SyncErrorCode),
}

/// What a frozen snapshot holds, announced before its pages.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotCheckpoint {
    /// The context.
    pub context: ContextId,
    /// Names this snapshot in page requests.
    pub snapshot_id: u64,
    /// Heads of the DAG the state corresponds to.
    pub heads: Vec<DeltaId>,
    /// Root the state must hash to.
    pub root: RootHash,
    /// Total state bytes over all pages.
    pub state_bytes: u64,
    /// Total checkpoint entries over all pages.
    pub entry_count: u64,
    /// Number of pages.
    pub page_count: u32,
}

/// One page of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotPage {
    /// The context.
    pub context: ContextId,
    /// Which snapshot.
    pub snapshot_id: u64,
    /// Zero-based page number.
    pub page: u32,
    /// The next slice of the state bytes.
    pub state_chunk: Vec<u8>,
    /// The next slice of the applied ids, parents first.
    pub entries: Vec<DeltaHeader>,
}

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, thiserror::Error)]
pub enum SyncErrorCode {
    /// The responder does not replicate the context.
    #[error("unknown context")]
    UnknownContext,
    /// Part of the gap is only held as snapshot state: ask for a snapshot.
    #[error("snapshot required")]
    SnapshotRequired,
    /// The gap is too large to walk: ask for a snapshot.
    #[error("gap too large")]
    GapTooLarge,
    /// The snapshot expired or never existed.
    #[error("snapshot unavailable")]
    SnapshotUnavailable,
    /// The responder is at its limit of served snapshots.
    #[error("busy")]
    Busy,
    /// The request did not decode or broke a bound.
    #[error("bad request")]
    BadRequest,
    /// The state is larger than the responder may serve.
    #[error("state too large")]
    StateTooLarge,
    /// The requesting peer is not a member of the context.
    #[error("not a member")]
    NotMember,
}

impl SyncErrorCode {
    /// A stable, machine-readable name.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownContext => "unknown_context",
            Self::SnapshotRequired => "snapshot_required",
            Self::GapTooLarge => "gap_too_large",
            Self::SnapshotUnavailable => "snapshot_unavailable",
            Self::Busy => "busy",
            Self::BadRequest => "bad_request",
            Self::StateTooLarge => "state_too_large",
            Self::NotMember => "not_member",
        }
    }
}

const SYNC_VERSIONS: u8 = 2;

impl SyncRequest {
    /// Wraps a version-1 request and encodes it.
    pub fn encode_v1(request: SyncRequestV1) -> Vec<u8> {
        encode(&SyncRequest::V1(request))
    }

    /// Wraps a version-2 request and encodes it.
    pub fn encode_v2(request: SyncRequestV2) -> Vec<u8> {
        encode(&SyncRequest::V2(request))
    }

    /// Decodes and bounds-checks a request of any version this node speaks.
    pub fn decode_any(bytes: &[u8], limits: &Limits) -> Result<SyncRequest, WireError> {
        match decode_envelope(bytes, limits.max_message_bytes, SYNC_VERSIONS)? {
            SyncRequest::V1(request) => Self::bound_v1(request, limits).map(SyncRequest::V1),
            // Fixed-size fields only.
            request @ SyncRequest::V2(_) => Ok(request),
        }
    }

    /// Decodes and bounds-checks a version-1 request; any other version is
    /// [`WireError::UnsupportedVersion`].
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<SyncRequestV1, WireError> {
        // The envelope decoder refuses every tag past V1 before parsing.
        match decode_envelope(bytes, limits.max_message_bytes, 1)? {
            SyncRequest::V1(request) => Self::bound_v1(request, limits),
            SyncRequest::V2(_) => Err(WireError::UnsupportedVersion(1)),
        }
    }

    fn bound_v1(request: SyncRequestV1, limits: &Limits) -> Result<SyncRequestV1, WireError> {
        if let SyncRequestV1::DeltasSince { known, wanted, .. } = &request {
            bound("deltas_since.known", known.len(), limits.max_heads_per_message)?;
            bound("deltas_since.wanted", wanted.len(), limits.max_heads_per_message)?;
        }
        Ok(request)
    }
}

impl SyncResponse {
    /// Wraps a version-1 response and encodes it.
    pub fn encode_v1(response: SyncResponseV1) -> Vec<u8> {
        encode(&SyncResponse::V1(response))
    }

    /// Wraps a version-2 response and encodes it.
    pub fn encode_v2(response: SyncResponseV2) -> Vec<u8> {
        encode(&SyncResponse::V2(response))
    }

    /// Decodes and bounds-checks a response of any version this node speaks.
    pub fn decode_any(bytes: &[u8], limits: &Limits) -> Result<SyncResponse, WireError> {
        match decode_envelope(bytes, limits.max_message_bytes, SYNC_VERSIONS)? {
            SyncResponse::V1(response) => Self::bound_v1(response, limits).map(SyncResponse::V1),
            // Fixed-size fields only.
            response @ SyncResponse::V2(_) => Ok(response),
        }
    }

    /// Decodes and bounds-checks a version-1 response; any other version is
    /// [`WireError::UnsupportedVersion`].
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<SyncResponseV1, WireError> {
        // The envelope decoder refuses every tag past V1 before parsing.
        match decode_envelope(bytes, limits.max_message_bytes, 1)? {
            SyncResponse::V1(response) => Self::bound_v1(response, limits),
            SyncResponse::V2(_) => Err(WireError::UnsupportedVersion(1)),
        }
    }

    fn bound_v1(response: SyncResponseV1, limits: &Limits) -> Result<SyncResponseV1, WireError> {
        match &response {
            SyncResponseV1::Heads { heads, .. } => bound("heads.heads", heads.len(), limits.max_heads_per_message)?,
            SyncResponseV1::Deltas { deltas, .. } => {
                bound("deltas.deltas", deltas.len(), limits.max_deltas_per_page)?;
                for delta in deltas {
                    bound("delta.payload", delta.payload.len(), limits.max_payload_bytes)?;
                    bound("delta.parents", delta.parents.len(), limits.max_parents_per_delta)?;
                }
            }
            SyncResponseV1::SnapshotCheckpoint(checkpoint) => {
                // A checkpoint lists every head, however many; the message bound caps it.
                bound("checkpoint.heads", checkpoint.heads.len(), limits.max_snapshot_ids)?;
            }
            SyncResponseV1::SnapshotPage(page) => {
                bound("page.state_chunk", page.state_chunk.len(), limits.max_snapshot_page_bytes)?;
                bound("page.entries", page.entries.len(), limits.max_snapshot_ids_per_page)?;
                for entry in &page.entries {
                    bound("entry.parents", entry.parents.len(), limits.max_parents_per_delta)?;
                }
            }
            SyncResponseV1::Error(_) => {}
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::DeltaFactory;
    use crate::wire::{GossipMessage, GossipV1, Heartbeat};

    #[test]
    fn every_message_round_trips() {
        let limits = Limits::default();
        let mut factory = DeltaFactory::signed(ContextId::hash_of(b"c"), [9; 32]);
        let delta = factory.make(&[DeltaId::hash_of(b"p")], vec![1, 2, 3]);
        let gossip = GossipV1::Delta(delta.clone());
        assert_eq!(GossipMessage::decode(&GossipMessage::encode_v1(gossip.clone()), &limits), Ok(gossip.into()));
        let heartbeat = GossipV1::Heartbeat(Heartbeat {
            context: delta.context,
            sender: crate::ids::PeerId::hash_of(b"s"),
            sequence: 9,
            root: RootHash::hash_of(b"r"),
            heads: vec![delta.id],
            applied_count: 4,
        });
        assert_eq!(GossipMessage::decode(&GossipMessage::encode_v1(heartbeat.clone()), &limits), Ok(heartbeat.into()));
        let request = SyncRequestV1::DeltasSince {
            context: delta.context,
            known: vec![delta.id],
            wanted: vec![],
            after: Some(SinceCursor { height: 3, id: delta.id }),
            max_deltas: 10,
        };
        assert_eq!(SyncRequest::decode(&SyncRequest::encode_v1(request.clone()), &limits), Ok(request));
        let response = SyncResponseV1::Deltas { context: delta.context, deltas: vec![delta], next: None, gap_total: 1 };
        assert_eq!(SyncResponse::decode(&SyncResponse::encode_v1(response.clone()), &limits), Ok(response));
    }

    #[test]
    fn key_requests_and_answers_round_trip_and_a_v1_decoder_refuses_them() {
        let limits = Limits::default();
        let context = ContextId::hash_of(b"c");
        let request = SyncRequest::V2(SyncRequestV2::Key { context, epoch: KeyEpoch(2), key_id: KeyId([4; 16]) });
        let bytes = crate::wire::encode(&request);
        assert_eq!(SyncRequest::decode_any(&bytes, &limits), Ok(request));
        assert_eq!(SyncRequest::decode(&bytes, &limits), Err(WireError::UnsupportedVersion(1)));
        let answer = SyncResponseV2::Key { context, epoch: KeyEpoch(2), key_id: KeyId([4; 16]), wrap: None };
        let bytes = SyncResponse::encode_v2(answer.clone());
        assert_eq!(SyncResponse::decode_any(&bytes, &limits), Ok(SyncResponse::V2(answer)));
        assert_eq!(SyncResponse::decode(&bytes, &limits), Err(WireError::UnsupportedVersion(1)));
    }

    #[test]
    fn oversized_and_unknown_version_messages_are_typed_errors() {
        let limits = Limits { max_message_bytes: 8, ..Limits::default() };
        assert_eq!(GossipMessage::decode(&[0; 9], &limits), Err(WireError::TooLarge { bytes: 9, max: 8 }));
        assert_eq!(GossipMessage::decode(&[], &limits), Err(WireError::Empty));
        assert_eq!(GossipMessage::decode(&[7, 0], &limits), Err(WireError::UnsupportedVersion(7)));
        assert!(matches!(SyncResponse::decode(&[0, 200], &limits), Err(WireError::Malformed(_))));
    }

    #[test]
    fn field_bounds_are_enforced_after_parsing() {
        let limits = Limits { max_heads_per_message: 1, ..Limits::default() };
        let heartbeat = GossipV1::Heartbeat(Heartbeat {
            context: ContextId::default(),
            sender: crate::ids::PeerId::default(),
            sequence: 0,
            root: RootHash::default(),
            heads: vec![DeltaId::hash_of(b"a"), DeltaId::hash_of(b"b")],
            applied_count: 0,
        });
        assert_eq!(
            GossipMessage::decode(&GossipMessage::encode_v1(heartbeat), &limits),
            Err(WireError::FieldTooLarge { field: "heartbeat.heads", len: 2, max: 1 })
        );
    }

    #[test]
    fn a_length_prefix_claiming_gigabytes_fails_without_allocating_it() {
        // V1, Delta variant, then a parents length of u32::MAX with no data behind it.
        let mut bytes = vec![0u8, 0u8];
        bytes.extend_from_slice(&[0u8; 96]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(GossipMessage::decode(&bytes, &Limits::default()), Err(WireError::Malformed(_))));
    }
}
