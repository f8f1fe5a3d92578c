//! Gossip messages: published on a context's topic to every subscriber.

use super::{bound, decode_envelope, encode, WireError};
use crate::delta::DeltaRef;
use crate::ids::{ContextId, DeltaId, RootHash};
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
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Heartbeat {
    /// The context.
    pub context: ContextId,
    /// The sender's state root.
    pub root: RootHash,
    /// The sender's DAG heads, sorted.
    pub heads: Vec<DeltaId>,
    /// How many deltas the sender has applied.
    pub applied_count: u64,
}

const GOSSIP_VERSIONS: u8 = 1;

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
