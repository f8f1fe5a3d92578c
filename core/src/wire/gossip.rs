//! Gossip messages: published on a context's topic to every subscriber.

use super::{bound, decode_envelope, encode, WireError};
use crate::attestation::SignedAttestation;
use crate::delta::DeltaRef;
use crate::ids::{ContextId, DeltaId, PeerId, RootHash};
use crate::limits::Limits;
use borsh::{BorshDeserialize, BorshSerialize};

/// The versioned gossip envelope. New versions are new variants; old ones stay decodable.
///
/// A sender uses the lowest version that can carry a message: deltas still go out as V1, so
/// a node that speaks only V1 keeps receiving them while others upgrade; only signed
/// heartbeats need V2 (a V1 decoder refuses the V2 tag as `unsupported_version` and misses
/// nothing but the heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GossipMessage {
    /// Version 1.
    V1(GossipV1),
    /// Version 2: adds signed heartbeats, which carry an attestation.
    V2(GossipV2),
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

/// Version 2 gossip. `Delta` is encoded as in V1 (V1 is still what deltas are sent as).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum GossipV2 {
    /// A new delta.
    Delta(DeltaRef),
    /// A heartbeat signed as an attestation of the sender's heads and root.
    Heartbeat(SignedHeartbeat),
}

/// A heartbeat whose context, sender, sequence, heads and root are a signed
/// [`crate::attestation::Attestation`] (the signer is the sender), so the statement "at these
/// heads my root is this" can vouch for a snapshot. The applied count is not signed: nothing
/// but a log line relies on it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedHeartbeat {
    /// The signed statement.
    pub attestation: SignedAttestation,
    /// How many deltas the sender has applied.
    pub applied_count: u64,
}

impl SignedHeartbeat {
    /// The heartbeat it stands for (its signature not checked here).
    pub fn heartbeat(&self) -> Heartbeat {
        let statement = &self.attestation.attestation;
        Heartbeat {
            context: statement.context,
            sender: statement.signer_peer(),
            sequence: statement.sequence,
            root: statement.root,
            heads: statement.heads.clone(),
            applied_count: self.applied_count,
        }
    }
}

/// A gossip message as decoded, whatever version carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gossip {
    /// A new delta.
    Delta(DeltaRef),
    /// An unsigned (V1) heartbeat: it informs sync and divergence checks but vouches for
    /// nothing.
    Heartbeat(Heartbeat),
    /// A signed (V2) heartbeat.
    SignedHeartbeat(SignedHeartbeat),
}

impl From<GossipV1> for Gossip {
    fn from(message: GossipV1) -> Self {
        match message {
            GossipV1::Delta(delta) => Self::Delta(delta),
            GossipV1::Heartbeat(heartbeat) => Self::Heartbeat(heartbeat),
        }
    }
}

impl From<GossipV2> for Gossip {
    fn from(message: GossipV2) -> Self {
        match message {
            GossipV2::Delta(delta) => Self::Delta(delta),
            GossipV2::Heartbeat(heartbeat) => Self::SignedHeartbeat(heartbeat),
        }
    }
}

const GOSSIP_VERSIONS: u8 = 2;

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

    /// Wraps a version-2 message and encodes it.
    pub fn encode_v2(message: GossipV2) -> Vec<u8> {
        encode(&GossipMessage::V2(message))
    }

    /// Decodes and bounds-checks a gossip message of any version this node speaks.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Gossip, WireError> {
        let message: Gossip = match decode_envelope(bytes, limits.max_message_bytes, GOSSIP_VERSIONS)? {
            GossipMessage::V1(message) => message.into(),
            GossipMessage::V2(message) => message.into(),
        };
        match &message {
            Gossip::Delta(delta) => {
                bound("delta.payload", delta.payload.len(), limits.max_payload_bytes)?;
                bound("delta.parents", delta.parents.len(), limits.max_parents_per_delta)?;
            }
            Gossip::Heartbeat(heartbeat) => {
                bound("heartbeat.heads", heartbeat.heads.len(), limits.max_heads_per_message)?;
            }
            Gossip::SignedHeartbeat(heartbeat) => {
                let heads = heartbeat.attestation.attestation.heads.len();
                bound("heartbeat.heads", heads, limits.max_heads_per_message)?;
            }
        }
        Ok(message)
    }
}
