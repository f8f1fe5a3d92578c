//! Ed25519 identities: signing deltas and checking their signatures.

use crate::ids::{AuthorKey, DeltaId, PeerId};
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey};
use std::fmt;
use zeroize::Zeroizing;

/// Domain separation, so a delta signature can never be replayed as a signature of anything else.
const DELTA_SIGNATURE_DOMAIN: &[u8] = b"rhizome/delta-signature/v1";

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({:02x}{:02x}{:02x}{:02x}..)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// A node's or author's signing key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair").field("public", &self.author_key()).finish_non_exhaustive()
    }
}

impl Keypair {
    /// A key from 32 secret bytes. Callers derive them from a seed (tests, simulator) or from
    /// the node's sealed key file; the core never draws OS randomness.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(&secret) }
    }

    /// The public key, as the author of the deltas this key signs.
    pub fn author_key(&self) -> AuthorKey {
        AuthorKey::from_bytes(self.signing.verifying_key().to_bytes())
    }

    /// The public key, as a network peer id.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_bytes(self.signing.verifying_key().to_bytes())
    }

    /// Signs a delta id.
    pub fn sign_delta(&self, id: &DeltaId) -> Signature {
        Signature(self.signing.sign(&delta_signing_message(id)).to_bytes())
    }

    /// Signs `message` as given. Only for [`crate::seal`], whose messages carry their own domain
    /// string (a different one, and a different length, from a delta's), so no signature made
    /// here can pass as a delta signature or the other way round.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    /// 32 secret bytes derived from this identity's secret, `domain` and `input`: what a node
    /// makes context keys from. Deterministic (the core draws no randomness) yet unknowable to
    /// anyone without the identity secret, who could unwrap every key wrapped to it anyway;
    /// `input` must name everything the key is for, so no two uses share bytes.
    pub(crate) fn derive_secret(&self, domain: &str, input: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut key_material = Zeroizing::new(self.signing.to_bytes().to_vec());
        key_material.extend_from_slice(input);
        Zeroizing::new(blake3::derive_key(domain, &key_material))
    }

    /// The X25519 secret of this identity: the unclamped scalar half of the expanded ed25519
    /// secret, which belongs to the Montgomery form of [`Self::author_key`]. [`crate::seal`]
    /// wraps context keys to members with it, so a member needs no second key pair to be
    /// invited; wiped when the caller drops it.
    pub(crate) fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_scalar_bytes())
    }
}

/// Why a signature did not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The author bytes are not a valid ed25519 point.
    #[error("author key is not a valid ed25519 public key")]
    BadAuthorKey,
    /// The signature does not verify under the author key.
    #[error("signature does not match author and delta id")]
    Mismatch,
}

/// Checks `signature` over a delta id under `author`: ed25519 with the cofactored equation and
/// strict encodings (see [`crate::signature_batch`] for the rule and why it is cofactored). The
/// same answer as checking it in a batch.
pub fn verify_delta_signature(author: &AuthorKey, id: &DeltaId, signature: &Signature) -> Result<(), SignatureError> {
    crate::signature_batch::verify_one(author, id, signature)
}

/// The bytes a delta signature covers.
pub(crate) fn delta_signing_message(id: &DeltaId) -> [u8; DELTA_SIGNATURE_DOMAIN.len() + 32] {
    let mut message = [0u8; DELTA_SIGNATURE_DOMAIN.len() + 32];
    message[..DELTA_SIGNATURE_DOMAIN.len()].copy_from_slice(DELTA_SIGNATURE_DOMAIN);
    message[DELTA_SIGNATURE_DOMAIN.len()..].copy_from_slice(id.as_bytes());
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_only_for_its_id_and_key() {
        let alice = Keypair::from_secret_bytes([1; 32]);
        let bob = Keypair::from_secret_bytes([2; 32]);
        let id = DeltaId::hash_of(b"x");
        let signature = alice.sign_delta(&id);
        assert_eq!(verify_delta_signature(&alice.author_key(), &id, &signature), Ok(()));
        assert_eq!(verify_delta_signature(&bob.author_key(), &id, &signature), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_delta_signature(&alice.author_key(), &DeltaId::hash_of(b"y"), &signature),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = Keypair::from_secret_bytes([7; 32]);
        assert!(!format!("{key:?}").contains("0707"));
    }
}
