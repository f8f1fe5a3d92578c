//! The symmetric key of a context, one per key epoch.

use crate::ids::ContextId;
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;
use zeroize::Zeroize;

/// Derives a context key from a driver's seed; see [`ContextKey::from_seed`].
const FROM_SEED_DOMAIN: &str = "rhizome 2026-11 context key from seed v1";
/// The XChaCha20-Poly1305 key payloads are sealed under, kept apart from the nonce key so the
/// synthetic nonce never reveals anything about the cipher key.
const PAYLOAD_KEY_DOMAIN: &str = "rhizome 2026-11 seal payload key v1";
/// The BLAKE3 key a payload's synthetic nonce is computed under.
const NONCE_KEY_DOMAIN: &str = "rhizome 2026-11 seal payload nonce key v1";
/// A key's public fingerprint ([`KeyId`]).
const KEY_ID_DOMAIN: &str = "rhizome 2026-12 context key id v1";

/// A context key's public fingerprint: a one-way function of its secret, so membership deltas
/// can say which key they hand out (two keys of one epoch, made by concurrent rotations, are
/// told apart) without revealing anything about it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct KeyId(pub [u8; 16]);

/// Which generation of a context's key: it goes up by one each time the key is rotated (on a
/// member's removal, so the removed member cannot read what follows).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct KeyEpoch(pub u32);

impl KeyEpoch {
    /// The epoch after this one, or `None` once the counter is exhausted.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for KeyEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The secret every member of a context holds for one [`KeyEpoch`]: payloads are sealed under
/// it and it is wrapped to each member. Its `Debug` never prints the secret, and its bytes (and
/// the subkeys derived from them) are wiped when it is dropped.
///
/// There is deliberately no way to derive the next epoch's key from this one: a rotation must
/// shut out a removed member, who holds this key, so the next key comes from fresh secret input
/// ([`ContextKey::new`] or [`ContextKey::from_seed`] with a new seed).
#[derive(Clone)]
pub struct ContextKey {
    epoch: KeyEpoch,
    secret: [u8; 32],
    // Derived once here rather than per sealed payload: two BLAKE3 key derivations per call
    // would be a measurable share of sealing a small payload.
    payload_key: [u8; 32],
    nonce_key: [u8; 32],
    id: KeyId,
}

impl ContextKey {
    /// The key of `epoch` with these secret bytes. The driver draws them from the OS (or, in
    /// the simulator, from its seeded generator); the core never does.
    pub fn new(epoch: KeyEpoch, secret: [u8; 32]) -> Self {
        let payload_key = blake3::derive_key(PAYLOAD_KEY_DOMAIN, &secret);
        let nonce_key = blake3::derive_key(NONCE_KEY_DOMAIN, &secret);
        let mut id = KeyId::default();
        id.0.copy_from_slice(&blake3::derive_key(KEY_ID_DOMAIN, &secret)[..16]);
        Self { epoch, secret, payload_key, nonce_key, id }
    }

    /// The key of `epoch` derived from a 32-byte `seed`, bound to `context` and `epoch` so one
    /// seed reused by mistake still gives every context and epoch its own key. The seed must be
    /// fresh secret randomness for every rotation (the driver draws it from its seeded RNG).
    pub fn from_seed(context: &ContextId, epoch: KeyEpoch, seed: &[u8; 32]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(FROM_SEED_DOMAIN);
        hasher.update(seed);
        hasher.update(context.as_bytes());
        hasher.update(&epoch.0.to_le_bytes());
        let mut secret = *hasher.finalize().as_bytes();
        let key = Self::new(epoch, secret);
        secret.zeroize();
        key
    }

    /// The epoch this key belongs to.
    pub fn epoch(&self) -> KeyEpoch {
        self.epoch
    }

    /// The key's public fingerprint.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The secret bytes, for the driver to persist (encrypted at rest) and nothing else.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    pub(super) fn payload_key(&self) -> &[u8; 32] {
        &self.payload_key
    }

    pub(super) fn nonce_key(&self) -> &[u8; 32] {
        &self.nonce_key
    }
}

/// Keys are equal when their epochs and fingerprints are: comparing fingerprints never
/// compares secret bytes, so equality leaks nothing through timing.
impl PartialEq for ContextKey {
    fn eq(&self, other: &Self) -> bool {
        self.epoch == other.epoch && self.id == other.id
    }
}

impl Eq for ContextKey {}

impl fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextKey").field("epoch", &self.epoch).finish_non_exhaustive()
    }
}

impl Drop for ContextKey {
    fn drop(&mut self) {
        self.secret.zeroize();
        self.payload_key.zeroize();
        self.nonce_key.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let key = ContextKey::new(KeyEpoch(3), [0xab; 32]);
        assert_eq!(format!("{key:?}"), "ContextKey { epoch: KeyEpoch(3), .. }");
    }

    #[test]
    fn from_seed_binds_context_and_epoch() {
        let seed = [9; 32];
        let a = ContextId::hash_of(b"a");
        let b = ContextId::hash_of(b"b");
        let base = ContextKey::from_seed(&a, KeyEpoch(1), &seed);
        assert_eq!(base.secret_bytes(), ContextKey::from_seed(&a, KeyEpoch(1), &seed).secret_bytes());
        assert_ne!(base.secret_bytes(), ContextKey::from_seed(&b, KeyEpoch(1), &seed).secret_bytes());
        assert_ne!(base.secret_bytes(), ContextKey::from_seed(&a, KeyEpoch(2), &seed).secret_bytes());
        assert_ne!(base.secret_bytes(), ContextKey::from_seed(&a, KeyEpoch(1), &[8; 32]).secret_bytes());
        assert_eq!(base.epoch(), KeyEpoch(1));
    }

    #[test]
    fn subkeys_differ_from_the_secret_and_each_other() {
        let key = ContextKey::new(KeyEpoch(0), [1; 32]);
        assert_ne!(key.payload_key(), key.secret_bytes());
        assert_ne!(key.nonce_key(), key.secret_bytes());
        assert_ne!(key.payload_key(), key.nonce_key());
        assert_ne!(&key.id().0[..], &key.secret_bytes()[..16]);
        assert_ne!(key.id(), ContextKey::new(KeyEpoch(0), [2; 32]).id());
        assert_eq!(key.id(), ContextKey::new(KeyEpoch(5), [1; 32]).id(), "the id names the secret alone");
    }

    #[test]
    fn epoch_next_stops_at_the_end() {
        assert_eq!(KeyEpoch(4).next(), Some(KeyEpoch(5)));
        assert_eq!(KeyEpoch(u32::MAX).next(), None);
    }
}
