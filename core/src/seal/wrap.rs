//! Wrapping a context key to one member, under a key only that member and the sender can derive.
//!
//! The wrap key comes from static-static X25519 between the two ed25519 identities (each in its
//! Montgomery form), so a member needs no second key pair and the sender needs no randomness.
//! Static-static means no forward secrecy: whoever later steals either identity key can unwrap
//! every key ever wrapped between the two, which the context key's own rotation bounds.
//!
//! [`WrappedKey`] encoding (borsh, fixed size, [`WrappedKey::ENCODED_LEN`] bytes):
//!
//! ```text
//! recipient [u8; 32] | epoch u32 | nonce [u8; 24] | ciphertext [u8; 32] | tag [u8; 16]
//! ```

use super::context_key::{ContextKey, KeyEpoch};
use super::payload::{NONCE_LEN, TAG_LEN};
use crate::identity::Keypair;
use crate::ids::{AuthorKey, ContextId};
use borsh::{BorshDeserialize, BorshSerialize};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use ed25519_dalek::VerifyingKey;
use std::fmt;
use zeroize::Zeroizing;

/// Derives the wrap key and its nonce key from the shared secret and everything the wrap is for.
const WRAP_KEY_DOMAIN: &str = "rhizome 2026-11 seal key wrap v1";

/// A context key sealed to one recipient.
#[derive(Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WrappedKey {
    /// Whom it is for.
    pub recipient: AuthorKey,
    /// The epoch of the wrapped key.
    pub epoch: KeyEpoch,
    /// The synthetic nonce (see [`wrap_key`]).
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted key bytes followed by the tag.
    pub ciphertext: [u8; 32 + TAG_LEN],
}

impl WrappedKey {
    /// Bytes of the borsh encoding: fixed, so a wrapped key is never truncated but invalid.
    pub const ENCODED_LEN: usize = 32 + 4 + NONCE_LEN + 32 + TAG_LEN;
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("recipient", &self.recipient)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be wrapped to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    /// The recipient's bytes are not an ed25519 point.
    #[error("recipient key is not a valid ed25519 public key")]
    BadRecipientKey,
    /// The recipient's key is a low-order point: any shared secret with it is known to all.
    #[error("recipient key is a low-order point")]
    WeakRecipientKey,
}

impl WrapError {
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::BadRecipientKey => "bad_recipient_key",
            Self::WeakRecipientKey => "weak_recipient_key",
        }
    }
}

/// Why a wrapped key did not unwrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The key was wrapped to someone else.
    #[error("wrapped key is addressed to another recipient")]
    WrongRecipient,
    /// The sender's bytes are not an ed25519 point.
    #[error("sender key is not a valid ed25519 public key")]
    BadSenderKey,
    /// The sender's key is a low-order point.
    #[error("sender key is a low-order point")]
    WeakSenderKey,
    /// Authentication failed: another sender, context or epoch, or a tampered ciphertext.
    #[error("wrapped key does not authenticate")]
    Forged,
}

impl UnwrapError {
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::WrongRecipient => "wrong_recipient",
            Self::BadSenderKey => "bad_sender_key",
            Self::WeakSenderKey => "weak_sender_key",
            Self::Forged => "forged",
        }
    }
}

/// Why a peer's key cannot be agreed with; mapped to the sender's or recipient's error.
enum AgreementFault {
    NotAPoint,
    LowOrder,
}

/// X25519 between our identity and the peer's, both as Montgomery points.
fn shared_secret(own: &Keypair, peer: &AuthorKey) -> Result<Zeroizing<[u8; 32]>, AgreementFault> {
    let peer = VerifyingKey::from_bytes(peer.as_bytes()).map_err(|_| AgreementFault::NotAPoint)?;
    // A small-order point would make the shared secret one of eight public values.
    if peer.is_weak() {
        return Err(AgreementFault::LowOrder);
    }
    let shared = Zeroizing::new(peer.to_montgomery().mul_clamped(*own.x25519_secret()).to_bytes());
    // Clamping clears the cofactor, so after the check above this cannot be zero; checked
    // anyway, as X25519 implementations must, in case the two checks ever disagree.
    if *shared == [0u8; 32] {
        return Err(AgreementFault::LowOrder);
    }
    Ok(shared)
}

/// The cipher key and the nonce key for wrapping `epoch`'s key from `sender` to `recipient`
/// in `context`. Every input is fixed-width, so their concatenation is unambiguous; the order
/// of sender and recipient makes the two directions between a pair use different keys.
fn wrap_keys(
    shared: &[u8; 32],
    context: &ContextId,
    sender: &AuthorKey,
    recipient: &AuthorKey,
    epoch: KeyEpoch,
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut hasher = blake3::Hasher::new_derive_key(WRAP_KEY_DOMAIN);
    hasher.update(shared);
    hasher.update(context.as_bytes());
    hasher.update(sender.as_bytes());
    hasher.update(recipient.as_bytes());
    hasher.update(&epoch.0.to_le_bytes());
    let mut output = hasher.finalize_xof();
    let mut cipher_key = Zeroizing::new([0u8; 32]);
    let mut nonce_key = Zeroizing::new([0u8; 32]);
    output.fill(cipher_key.as_mut());
    output.fill(nonce_key.as_mut());
    (cipher_key, nonce_key)
}

/// Wraps `key` from `sender` to `recipient` for `context`.
///
/// The wrap key is unique to (sender, recipient, context, epoch), so a fixed nonce would be
/// safe as long as each such tuple wraps one key only. That is not ours to enforce (a sender
/// that restarts and rotates the same epoch again with a fresh seed would wrap two keys under
/// one wrap key), so the nonce is synthetic instead: a PRF of the wrapped bytes under a key
/// derived with the wrap key. Two different keys never share a nonce, and no randomness is used.
pub fn wrap_key(
    sender: &Keypair,
    recipient: &AuthorKey,
    context: &ContextId,
    key: &ContextKey,
) -> Result<WrappedKey, WrapError> {
    let shared = shared_secret(sender, recipient).map_err(|fault| match fault {
        AgreementFault::NotAPoint => WrapError::BadRecipientKey,
        AgreementFault::LowOrder => WrapError::WeakRecipientKey,
    })?;
    let (cipher_key, nonce_key) = wrap_keys(&shared, context, &sender.author_key(), recipient, key.epoch());
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&blake3::keyed_hash(&nonce_key, key.secret_bytes()).as_bytes()[..NONCE_LEN]);
    let mut ciphertext = [0u8; 32 + TAG_LEN];
    let (body, tag_slot) = ciphertext.split_at_mut(32);
    body.copy_from_slice(key.secret_bytes());
    // No associated data: the wrap key already binds context, sender, recipient and epoch.
    let tag = XChaCha20Poly1305::new((&*cipher_key).into())
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &[], body)
        .expect("32 bytes are far below the AEAD's length limit");
    tag_slot.copy_from_slice(&tag);
    Ok(WrappedKey { recipient: *recipient, epoch: key.epoch(), nonce, ciphertext })
}

/// Unwraps a key `sender` wrapped to `recipient` for `context`.
pub fn unwrap_key(
    recipient: &Keypair,
    sender: &AuthorKey,
    context: &ContextId,
    wrapped: &WrappedKey,
) -> Result<ContextKey, UnwrapError> {
    let own = recipient.author_key();
    if wrapped.recipient != own {
        return Err(UnwrapError::WrongRecipient);
    }
    let shared = shared_secret(recipient, sender).map_err(|fault| match fault {
        AgreementFault::NotAPoint => UnwrapError::BadSenderKey,
        AgreementFault::LowOrder => UnwrapError::WeakSenderKey,
    })?;
    let (cipher_key, _) = wrap_keys(&shared, context, sender, &own, wrapped.epoch);
    let (body, tag) = wrapped.ciphertext.split_at(32);
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(body);
    XChaCha20Poly1305::new((&*cipher_key).into())
        .decrypt_in_place_detached(XNonce::from_slice(&wrapped.nonce), &[], secret.as_mut(), Tag::from_slice(tag))
        .map_err(|_| UnwrapError::Forged)?;
    Ok(ContextKey::new(wrapped.epoch, *secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Keypair {
        Keypair::from_secret_bytes([1; 32])
    }

    fn bob() -> Keypair {
        Keypair::from_secret_bytes([2; 32])
    }

    fn context() -> ContextId {
        ContextId::hash_of(b"ctx")
    }

    fn key() -> ContextKey {
        ContextKey::new(KeyEpoch(7), [0x42; 32])
    }

    /// 32 bytes that do not decompress to an ed25519 point (y = 2 has no x on the curve).
    fn not_a_point() -> AuthorKey {
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        AuthorKey::from_bytes(bytes)
    }

    #[test]
    fn round_trips_and_encodes_at_a_fixed_size() {
        let wrapped = wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap();
        assert_eq!(wrapped.recipient, bob().author_key());
        assert_eq!(wrapped.epoch, KeyEpoch(7));
        assert_eq!(borsh::to_vec(&wrapped).unwrap().len(), WrappedKey::ENCODED_LEN);
        let unwrapped = unwrap_key(&bob(), &alice().author_key(), &context(), &wrapped).unwrap();
        assert_eq!(unwrapped.secret_bytes(), key().secret_bytes());
        assert_eq!(unwrapped.epoch(), KeyEpoch(7));
        // Deterministic, and wrapping to oneself works (an admin keeping its own copy).
        assert_eq!(wrapped, wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap());
        let own = wrap_key(&alice(), &alice().author_key(), &context(), &key()).unwrap();
        assert_eq!(unwrap_key(&alice(), &alice().author_key(), &context(), &own).unwrap().secret_bytes(), &[0x42; 32]);
    }

    #[test]
    fn another_recipient_cannot_unwrap() {
        let wrapped = wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap();
        let carol = Keypair::from_secret_bytes([3; 32]);
        assert_eq!(
            unwrap_key(&carol, &alice().author_key(), &context(), &wrapped).unwrap_err(),
            UnwrapError::WrongRecipient
        );
        // Relabelling the recipient does not help: carol derives another wrap key.
        let relabelled = WrappedKey { recipient: carol.author_key(), ..wrapped };
        assert_eq!(
            unwrap_key(&carol, &alice().author_key(), &context(), &relabelled).unwrap_err(),
            UnwrapError::Forged
        );
    }

    #[test]
    fn wrong_sender_context_epoch_or_ciphertext_is_forged() {
        let wrapped = wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap();
        let carol = Keypair::from_secret_bytes([3; 32]).author_key();
        assert_eq!(unwrap_key(&bob(), &carol, &context(), &wrapped).unwrap_err(), UnwrapError::Forged);
        let other_context = ContextId::hash_of(b"other");
        assert_eq!(
            unwrap_key(&bob(), &alice().author_key(), &other_context, &wrapped).unwrap_err(),
            UnwrapError::Forged
        );
        let relabelled = WrappedKey { epoch: KeyEpoch(8), ..wrapped.clone() };
        assert_eq!(
            unwrap_key(&bob(), &alice().author_key(), &context(), &relabelled).unwrap_err(),
            UnwrapError::Forged
        );
        let mut tampered = wrapped.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(unwrap_key(&bob(), &alice().author_key(), &context(), &tampered).unwrap_err(), UnwrapError::Forged);
        let mut tampered = wrapped;
        tampered.nonce[0] ^= 1;
        assert_eq!(unwrap_key(&bob(), &alice().author_key(), &context(), &tampered).unwrap_err(), UnwrapError::Forged);
    }

    #[test]
    fn bad_and_low_order_keys_are_typed_errors() {
        assert!(VerifyingKey::from_bytes(not_a_point().as_bytes()).is_err());
        assert_eq!(wrap_key(&alice(), &not_a_point(), &context(), &key()).unwrap_err(), WrapError::BadRecipientKey);
        let wrapped = wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap();
        assert_eq!(unwrap_key(&bob(), &not_a_point(), &context(), &wrapped).unwrap_err(), UnwrapError::BadSenderKey);

        // The identity point (y = 1) and the order-2 point (y = -1): valid encodings, small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        for bytes in [identity, minus_one] {
            let weak = AuthorKey::from_bytes(bytes);
            assert!(VerifyingKey::from_bytes(weak.as_bytes()).is_ok());
            assert_eq!(wrap_key(&alice(), &weak, &context(), &key()).unwrap_err(), WrapError::WeakRecipientKey);
            assert_eq!(unwrap_key(&bob(), &weak, &context(), &wrapped).unwrap_err(), UnwrapError::WeakSenderKey);
        }
    }

    #[test]
    fn different_keys_for_one_epoch_get_different_nonces() {
        let a = wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap();
        let b = wrap_key(&alice(), &bob().author_key(), &context(), &ContextKey::new(KeyEpoch(7), [0x43; 32])).unwrap();
        assert_ne!(a.nonce, b.nonce);
    }

    #[test]
    fn encoding_is_pinned() {
        // Pins the key agreement, the derivations and the layout: a change here makes every
        // wrapped key (and so every outstanding invitation) unreadable.
        let wrapped = wrap_key(&alice(), &bob().author_key(), &context(), &key()).unwrap();
        let bytes = borsh::to_vec(&wrapped).unwrap();
        assert_eq!(&bytes[..32], bob().author_key().as_bytes());
        assert_eq!(&bytes[32..36], &7u32.to_le_bytes());
        assert_eq!(&bytes[36..60], &wrapped.nonce);
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            "cf9ec82f4f498c0da6718d1c75cef1ddda764b699462426f6b5ea4f94b3ea2cf"
        );
    }

    #[test]
    fn error_labels_are_stable() {
        assert_eq!(WrapError::BadRecipientKey.label(), "bad_recipient_key");
        assert_eq!(WrapError::WeakRecipientKey.label(), "weak_recipient_key");
        assert_eq!(UnwrapError::WrongRecipient.label(), "wrong_recipient");
        assert_eq!(UnwrapError::BadSenderKey.label(), "bad_sender_key");
        assert_eq!(UnwrapError::WeakSenderKey.label(), "weak_sender_key");
        assert_eq!(UnwrapError::Forged.label(), "forged");
    }
}
