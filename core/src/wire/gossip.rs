//! Gossip messages: published on a context's topic to every subscriber.

use super::{bound, decode_envelope, encode, WireError};
use crate::delta::DeltaRef;
use crate::ids::{ContextId, DeltaId, PeerId, RootHash};
use crate::limits::Limits;
use borsh::{BorshDeserialize, BorshSerialize};

/// The versioned gossip envelope. New versions are new variants; old ones stay decodable.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GossipMessage {
    /// Version 1.
    V1(GossipV1),
}

/// Version 1 gossip.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GossipV1 {
    /// A new delta.
    Delta(DeltaRef),
    /// A context's root hash and heads, for divergence detection.
    Heartbeat(Heartbeat),
}

/// A periodic summary of one context's state on the sending node.
///
/// Gossip message ids are the hash of the bytes, and gossipsub refuses to publish (and peers
/// drop) a message whose id it has seen. So every heartbeat must differ from every other one:
/// it names its sender and a sequence number that only grows, even across restarts. Without
/// them, a quiet node's heartbeats (unchanged, or equal to a peer's) never left it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Heartbeat {
    /// The context.
    pub context: ContextId,
    /// The node that sent it; must be the gossip message's publisher.
    pub sender: PeerId,
    /// Strictly increasing per sender and context: the greater of the last one plus one and the
    /// sender's wall-clock milliseconds, so a restarted node does not repeat an earlier
    /// heartbeat.
    pub sequence: u64,
    /// The sender's state root.
    pub root: RootHash,
    /// The sender's DAG heads, sorted.
    pub heads: Vec<DeltaId>,
    /// How many deltas the sender has applied.
    pub applied_count: u64,
}

const GOSSIP_VERSIONS: u8 = 1;

/// A gossip message's id: the BLAKE3 hash of its bytes. The real transport gives gossipsub
/// this rule and the simulated one uses it too, so both drop a repeat of the same bytes: a
/// node receives a message once, and publishing bytes it has already seen sends nothing.
pub fn gossip_message_id(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

impl GossipMessage {
    /// Wraps a version-1 message and encodes it.
    pub fn encode_v1(message: GossipV1) -> Vec<u8> {
        encode(&GossipMessage::V1(message))
    }

    /// Decodes and bounds-checks a gossip message.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<GossipV1, WireError> {
        let GossipMessage::V1(message) = decode_envelope(bytes, limits.max_message_bytes, GOSSIP_VERSIONS)?;
        match &message {
            GossipV1::Delta(delta) => {
                bound("delta.payload", delta.payload.len(), limits.max_payload_bytes)?;
                bound("delta.parents", delta.parents.len(), limits.max_parents_per_delta)?;
            }
            GossipV1::Heartbeat(heartbeat) => {
                bound("heartbeat.heads", heartbeat.heads.len(), limits.max_heads_per_message)?;
            }
        }
        Ok(message)
    }
}
