//! Where a node's new context keys come from: its identity secret, hedged with the driver's
//! entropy, and everything the key is for.
//!
//! The core draws no randomness, so a key is derived like a deterministic signature nonce: a
//! PRF, keyed by the identity secret, of the context, the epoch, the DAG point the key is made
//! at and its recipients. Nobody without the identity secret can compute it, and whoever holds
//! that secret could unwrap every key wrapped to this node anyway. Binding the point and the
//! recipients means a node that crashed before its rotation spread, and rotates again at the
//! same point for other members, makes a different key. The driver's entropy (the OS's on a
//! real node, the seed's in the simulator) is mixed in as a hedge against a weak identity.

use super::{ContextKey, KeyEpoch};
use crate::identity::Keypair;
use crate::ids::{AuthorKey, ContextId, DeltaId};

const GENESIS_KEY_DOMAIN: &str = "rhizome 2026-12 genesis context key v1";
const ROTATION_KEY_DOMAIN: &str = "rhizome 2026-12 rotation context key v1";

/// The epoch-0 key of a genesis by `own` with `nonce` for `recipients`.
pub fn genesis_key(own: &Keypair, entropy: &[u8; 32], nonce: &[u8; 32], recipients: &[AuthorKey]) -> ContextKey {
    let mut input = Vec::with_capacity(64 + 32 * recipients.len());
    input.extend_from_slice(entropy);
    input.extend_from_slice(nonce);
    for recipient in recipients {
        input.extend_from_slice(recipient.as_bytes());
    }
    ContextKey::new(KeyEpoch(0), *own.derive_secret(GENESIS_KEY_DOMAIN, &input))
}

/// The key of `epoch` that `own` rotates to in `context` on `parents`, for `recipients`.
pub fn rotation_key(
    own: &Keypair,
    entropy: &[u8; 32],
    context: &ContextId,
    epoch: KeyEpoch,
    parents: &[DeltaId],
    recipients: &[AuthorKey],
) -> ContextKey {
    let mut input = Vec::with_capacity(72 + 32 * (parents.len() + recipients.len()));
    input.extend_from_slice(entropy);
    input.extend_from_slice(context.as_bytes());
    input.extend_from_slice(&epoch.0.to_le_bytes());
    // Counts first, so where the parents end and the recipients begin is never ambiguous.
    input.extend_from_slice(&(parents.len() as u32).to_le_bytes());
    for parent in parents {
        input.extend_from_slice(parent.as_bytes());
    }
    for recipient in recipients {
        input.extend_from_slice(recipient.as_bytes());
    }
    ContextKey::new(epoch, *own.derive_secret(ROTATION_KEY_DOMAIN, &input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_everything_they_are_for() {
        let own = Keypair::from_secret_bytes([1; 32]);
        let context = ContextId::hash_of(b"c");
        let members = [AuthorKey::from_bytes([2; 32]), AuthorKey::from_bytes([3; 32])];
        let parents = [DeltaId::hash_of(b"p")];
        let base = rotation_key(&own, &[0; 32], &context, KeyEpoch(1), &parents, &members);
        let again = rotation_key(&own, &[0; 32], &context, KeyEpoch(1), &parents, &members);
        assert_eq!(base.id(), again.id(), "deterministic");
        assert_eq!(base.epoch(), KeyEpoch(1));
        let others = [
            rotation_key(&Keypair::from_secret_bytes([9; 32]), &[0; 32], &context, KeyEpoch(1), &parents, &members),
            rotation_key(&own, &[1; 32], &context, KeyEpoch(1), &parents, &members),
            rotation_key(&own, &[0; 32], &ContextId::hash_of(b"d"), KeyEpoch(1), &parents, &members),
            rotation_key(&own, &[0; 32], &context, KeyEpoch(2), &parents, &members),
            rotation_key(&own, &[0; 32], &context, KeyEpoch(1), &[], &members),
            rotation_key(&own, &[0; 32], &context, KeyEpoch(1), &parents, &members[..1]),
        ];
        for other in others {
            assert_ne!(other.id(), base.id());
        }
        let genesis = genesis_key(&own, &[0; 32], &[5; 32], &members);
        assert_eq!(genesis.epoch(), KeyEpoch(0));
        assert_ne!(genesis.id(), genesis_key(&own, &[0; 32], &[6; 32], &members).id());
    }
}
