//! The one identity behind both peer ids: rhizome's `PeerId` is the 32-byte ed25519 public
//! key, libp2p's is a multihash of the protobuf-encoded public key. An ed25519 key is short
//! enough that libp2p inlines it (identity multihash), so either id converts to the other
//! without any lookup table.
//!
//! Topics live here too: a context's topic name is derived from its id and back.

use crate::error::NetError;
use libp2p::gossipsub::{IdentTopic, TopicHash};
use libp2p::identity::{ed25519, Keypair, PublicKey};
use libp2p::multiaddr::Protocol;
use libp2p::multihash::Multihash;
use libp2p::Multiaddr;
use rhizome_core::{ContextId, PeerId};

/// The multihash code of the identity hash, which holds the key inline.
const IDENTITY_MULTIHASH_CODE: u64 = 0;

/// Prefix of every context topic; the rest is the context id in lowercase hex.
const CONTEXT_TOPIC_PREFIX: &str = "rhizome/context/";

/// The libp2p keypair made from the same 32 secret bytes as the core's
/// `rhizome_core::Keypair::from_secret_bytes`, so both layers share one identity.
pub(crate) fn libp2p_keypair(mut secret: [u8; 32]) -> Result<Keypair, NetError> {
    Keypair::ed25519_from_bytes(&mut secret).map_err(|error| NetError::Key(error.to_string()))
}

/// The libp2p peer id of a rhizome peer. Fails if the bytes are not an ed25519 point.
pub fn to_libp2p_peer_id(peer: &PeerId) -> Result<libp2p::PeerId, NetError> {
    let key = ed25519::PublicKey::try_from_bytes(peer.as_bytes()).map_err(|error| NetError::Key(error.to_string()))?;
    Ok(libp2p::PeerId::from_public_key(&PublicKey::from(key)))
}

/// The rhizome peer id of a libp2p peer, or `None` if its key is not ed25519 (such peers cannot
/// take part: the core names peers by their ed25519 key).
pub fn to_core_peer_id(peer: &libp2p::PeerId) -> Option<PeerId> {
    let multihash: &Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH_CODE {
        return None;
    }
    let public = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    core_peer_of_key(public)
}

/// The rhizome peer id of a libp2p public key, if it is ed25519.
pub(crate) fn core_peer_of_key(public: PublicKey) -> Option<PeerId> {
    public.try_into_ed25519().ok().map(|key| PeerId::from_bytes(key.to_bytes()))
}

/// The peer id an address ends with (`/p2p/<id>`), if any.
pub fn peer_of_addr(addr: &Multiaddr) -> Option<libp2p::PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// The gossipsub topic of a context: `rhizome/context/<64 hex>`.
pub fn context_topic(context: &ContextId) -> IdentTopic {
    IdentTopic::new(format!("{CONTEXT_TOPIC_PREFIX}{}", hex::encode(context.as_bytes())))
}

/// The context a topic names, or `None` for a topic that is not a context's.
pub(crate) fn context_of_topic(topic: &TopicHash) -> Option<ContextId> {
    let hex_id = topic.as_str().strip_prefix(CONTEXT_TOPIC_PREFIX)?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id, &mut bytes).ok()?;
    Some(ContextId::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhizome_core::Keypair as CoreKeypair;

    #[test]
    fn both_layers_derive_the_same_identity_from_one_secret() {
        let secret = [9u8; 32];
        let core = CoreKeypair::from_secret_bytes(secret).peer_id();
        let libp2p_id = libp2p_keypair(secret).unwrap().public().to_peer_id();
        assert_eq!(to_libp2p_peer_id(&core).unwrap(), libp2p_id);
        assert_eq!(to_core_peer_id(&libp2p_id), Some(core));
    }

    #[test]
    fn a_non_ed25519_peer_has_no_core_id() {
        // A sha256-hashed peer id (what long keys such as RSA produce) does not hold its key.
        let hashed = libp2p::PeerId::from_multihash(Multihash::wrap(0x12, &[1u8; 32]).unwrap()).unwrap();
        assert_eq!(to_core_peer_id(&hashed), None);
    }

    #[test]
    fn bytes_off_the_curve_are_not_a_peer() {
        // The y-coordinate 2 has no x on the curve, so these bytes decompress to no point.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert!(to_libp2p_peer_id(&PeerId::from_bytes(bytes)).is_err());
    }

    #[test]
    fn context_topic_round_trips() {
        let context = ContextId::hash_of(b"ctx");
        let topic = context_topic(&context);
        assert_eq!(topic.hash().as_str().len(), CONTEXT_TOPIC_PREFIX.len() + 64);
        assert_eq!(context_of_topic(&topic.hash()), Some(context));
        assert_eq!(context_of_topic(&TopicHash::from_raw("rhizome/context/zz")), None);
        assert_eq!(context_of_topic(&TopicHash::from_raw("other")), None);
    }

    #[test]
    fn address_peer_suffix_is_found() {
        let peer = libp2p_keypair([1; 32]).unwrap().public().to_peer_id();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        assert_eq!(peer_of_addr(&addr), Some(peer));
        assert_eq!(peer_of_addr(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()), None);
    }
}
