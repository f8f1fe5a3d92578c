//! Attestations: a member's signed statement "at these heads, my state has this root".
//!
//! A snapshot is the serving member's word for a state. Attestations let other members vouch
//! for (or contradict) exactly that pair of heads and root, so that one member alone cannot
//! make a replica adopt a state of its choosing (see docs/SECURITY.md, "Snapshots: who
//! vouches"). Heartbeats carry them (`wire::SignedHeartbeat`).
//!
//! Signed message: [`SIGNATURE_DOMAIN`] followed by the BLAKE3 (derive-key mode,
//! [`DIGEST_DOMAIN`]) digest of the borsh encoding of [`Attestation`]. Both the prefix and the
//! length differ from a delta signature's message (`rhizome/delta-signature/v1 || id`) and an
//! invitation's, so no signature made for one can pass as another.

use crate::identity::{Keypair, Signature};
use crate::ids::{AuthorKey, ContextId, DeltaId, PeerId, RootHash};
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::VerifyingKey;

/// Hashes an attestation's fields into the digest that is signed.
const DIGEST_DOMAIN: &str = "rhizome 2026-12 attestation digest v1";
/// Prefixes the signed digest.
const SIGNATURE_DOMAIN: &[u8] = b"rhizome 2026-12 attestation v1";

/// What a member states about its replica of a context.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Attestation {
    /// The context.
    pub context: ContextId,
    /// The member that states it; its key signs.
    pub signer: AuthorKey,
    /// Strictly increasing per signer and context (the heartbeat sequence), so a replay of an
    /// older statement cannot replace a newer one.
    pub sequence: u64,
    /// The signer's DAG heads, sorted (at most `max_heads_per_message`).
    pub heads: Vec<DeltaId>,
    /// The signer's state root at those heads.
    pub root: RootHash,
}

/// An attestation and its signer's signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedAttestation {
    /// What is stated.
    pub attestation: Attestation,
    /// ed25519 by `attestation.signer` over the signed message (module docs).
    pub signature: Signature,
}

/// Why an attestation was refused; each has a stable label for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The signer bytes are not an ed25519 public key.
    #[error("attestation signer is not a valid ed25519 public key")]
    BadSignerKey,
    /// The signature does not verify under the signer's key.
    #[error("attestation signature does not verify")]
    BadSignature,
    /// The signer is not a member of the context at our heads.
    #[error("attestation signer is not a member")]
    NotMember,
    /// The signer is not the peer that published it.
    #[error("attestation signer is not its publisher")]
    Misattributed,
}

impl AttestationError {
    /// A stable, machine-readable name.
    pub fn label(&self) -> &'static str {
        match self {
            Self::BadSignerKey => "bad_signer_key",
            Self::BadSignature => "bad_signature",
            Self::NotMember => "not_member",
            Self::Misattributed => "misattributed",
        }
    }
}

impl Attestation {
    /// Signs as `keypair`, which becomes the signer.
    pub fn sign(mut self, keypair: &Keypair) -> SignedAttestation {
        self.signer = keypair.author_key();
        let signature = keypair.sign_raw(&self.signing_message());
        SignedAttestation { attestation: self, signature }
    }

    /// The signer as a network peer (a node's peer id is its key).
    pub fn signer_peer(&self) -> PeerId {
        PeerId::from_bytes(*self.signer.as_bytes())
    }

    fn signing_message(&self) -> [u8; SIGNATURE_DOMAIN.len() + 32] {
        let mut hasher = blake3::Hasher::new_derive_key(DIGEST_DOMAIN);
        // Writing into a hasher cannot fail; borsh refuses only collections over u32::MAX
        // entries, and a decoded attestation's heads are bounded far below that.
        borsh::to_writer(&mut hasher, self).expect("hashing an attestation never fails");
        let mut message = [0u8; SIGNATURE_DOMAIN.len() + 32];
        message[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
        message[SIGNATURE_DOMAIN.len()..].copy_from_slice(hasher.finalize().as_bytes());
        message
    }
}

impl SignedAttestation {
    /// Checks the signature under the signer's key (strict, non-malleable verification).
    pub fn verify(&self) -> Result<(), AttestationError> {
        let key =
            VerifyingKey::from_bytes(self.attestation.signer.as_bytes()).map_err(|_| AttestationError::BadSignerKey)?;
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature.0);
        key.verify_strict(&self.attestation.signing_message(), &signature).map_err(|_| AttestationError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Attestation {
        Attestation {
            context: ContextId::hash_of(b"c"),
            signer: AuthorKey::default(),
            sequence: 7,
            heads: vec![DeltaId::hash_of(b"h")],
            root: RootHash::hash_of(b"r"),
        }
    }

    #[test]
    fn a_signed_attestation_verifies_and_any_change_breaks_it() {
        let alice = Keypair::from_secret_bytes([1; 32]);
        let signed = statement().sign(&alice);
        assert_eq!(signed.attestation.signer, alice.author_key());
        assert_eq!(signed.verify(), Ok(()));
        let mut other_root = signed.clone();
        other_root.attestation.root = RootHash::hash_of(b"s");
        assert_eq!(other_root.verify(), Err(AttestationError::BadSignature));
        let mut other_signer = signed.clone();
        other_signer.attestation.signer = Keypair::from_secret_bytes([2; 32]).author_key();
        assert_eq!(other_signer.verify(), Err(AttestationError::BadSignature));
        let mut older = signed;
        older.attestation.sequence = 6;
        assert_eq!(older.verify(), Err(AttestationError::BadSignature));
    }

    #[test]
    fn an_attestation_signature_is_not_a_delta_signature() {
        let alice = Keypair::from_secret_bytes([1; 32]);
        let signed = statement().sign(&alice);
        // The same key's delta signature over any id never equals it, and does not verify as
        // an attestation either.
        let delta_signature = alice.sign_delta(&DeltaId::hash_of(b"h"));
        assert_ne!(delta_signature, signed.signature);
        let mut swapped = signed;
        swapped.signature = delta_signature;
        assert_eq!(swapped.verify(), Err(AttestationError::BadSignature));
    }

    #[test]
    fn labels_are_distinct() {
        let all = [
            AttestationError::BadSignerKey,
            AttestationError::BadSignature,
            AttestationError::NotMember,
            AttestationError::Misattributed,
        ];
        let labels: std::collections::BTreeSet<&str> = all.iter().map(AttestationError::label).collect();
        assert_eq!(labels.len(), all.len());
    }
}
