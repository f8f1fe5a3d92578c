//! The context keys one replica holds, by epoch: what it opens payloads with and seals its
//! own under.

use super::{open_payload, ContextKey, KeyEpoch, KeyId, OpenError, SealHeader, SealedPayload};
use std::collections::BTreeMap;

/// Why a payload could not be opened with the keys held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyringOpenError {
    /// Not a sealed payload at all.
    #[error("the payload is too short to be sealed")]
    Unsealed,
    /// No key of the payload's epoch is held (yet: a key a later membership delta grants
    /// opens it then).
    #[error("no key of epoch {0} is held")]
    NoKey(KeyEpoch),
    /// Keys of the epoch are held, but none opens it: it was sealed under a key of that epoch
    /// not held yet (two concurrent rotations), or it is forged.
    #[error("no key of epoch {0} held opens it")]
    NoKeyOpens(KeyEpoch),
}

impl KeyringOpenError {
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unsealed => "unsealed",
            Self::NoKey(_) => "no_key",
            Self::NoKeyOpens(_) => "no_key_opens",
        }
    }
}

/// A replica's context keys, at most `max_keys` of them.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    /// Keys by epoch and fingerprint: concurrent rotations may make two keys of one epoch.
    keys: BTreeMap<(KeyEpoch, KeyId), ContextKey>,
    /// Keys not kept because the ring was full.
    refused_at_bound: u64,
}

impl Keyring {
    /// Keeps `key` unless it is held already or the ring holds `max_keys`. True if it is new
    /// and kept.
    pub fn insert(&mut self, key: ContextKey, max_keys: usize) -> bool {
        let slot = (key.epoch(), key.id());
        if self.keys.contains_key(&slot) {
            return false;
        }
        if self.keys.len() >= max_keys {
            self.refused_at_bound += 1;
            return false;
        }
        self.keys.insert(slot, key);
        true
    }

    /// The key `(epoch, id)`, if held.
    pub fn get(&self, epoch: KeyEpoch, id: &KeyId) -> Option<&ContextKey> {
        self.keys.get(&(epoch, *id))
    }

    /// True if the key `(epoch, id)` is held.
    pub fn holds(&self, epoch: KeyEpoch, id: &KeyId) -> bool {
        self.keys.contains_key(&(epoch, *id))
    }

    /// The keys of `epoch`, by fingerprint.
    pub fn of_epoch(&self, epoch: KeyEpoch) -> impl Iterator<Item = &ContextKey> {
        self.keys.range((epoch, KeyId([0; 16]))..=(epoch, KeyId([0xff; 16]))).map(|(_, key)| key)
    }

    /// Every key held, by epoch and fingerprint.
    pub fn iter(&self) -> impl Iterator<Item = &ContextKey> {
        self.keys.values()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys not kept because the ring was full.
    pub fn refused_at_bound(&self) -> u64 {
        self.refused_at_bound
    }

    /// Opens `payload` (a [`SealedPayload`] encoding) sealed under `header`, trying each key
    /// of its epoch.
    pub fn open(&self, header: &SealHeader<'_>, payload: &[u8]) -> Result<Vec<u8>, KeyringOpenError> {
        let sealed = SealedPayload::decode(payload).map_err(|_| KeyringOpenError::Unsealed)?;
        let mut tried = false;
        for key in self.of_epoch(sealed.epoch) {
            tried = true;
            match open_payload(key, header, &sealed) {
                Ok(plaintext) => return Ok(plaintext),
                Err(OpenError::Forged | OpenError::WrongEpoch { .. } | OpenError::Truncated { .. }) => {}
            }
        }
        Err(if tried { KeyringOpenError::NoKeyOpens(sealed.epoch) } else { KeyringOpenError::NoKey(sealed.epoch) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::ids::{AuthorKey, ContextId};
    use crate::seal::seal_payload;

    #[test]
    fn opens_with_whichever_key_of_the_epoch_sealed_it() {
        let context = ContextId::hash_of(b"c");
        let author = AuthorKey::from_bytes([1; 32]);
        let hlc = Hlc::default();
        let header = SealHeader { context: &context, author: &author, parents: &[], hlc: &hlc };
        let first = ContextKey::new(KeyEpoch(1), [1; 32]);
        let concurrent = ContextKey::new(KeyEpoch(1), [2; 32]);
        let sealed = seal_payload(&concurrent, &header, b"hello").encode();
        let mut ring = Keyring::default();
        assert_eq!(ring.open(&header, &sealed), Err(KeyringOpenError::NoKey(KeyEpoch(1))));
        assert!(ring.insert(first.clone(), 8));
        assert!(!ring.insert(first, 8), "held already");
        assert_eq!(ring.open(&header, &sealed), Err(KeyringOpenError::NoKeyOpens(KeyEpoch(1))));
        assert!(ring.insert(concurrent, 8));
        assert_eq!(ring.open(&header, &sealed).unwrap(), b"hello");
        assert_eq!(ring.open(&header, b"short"), Err(KeyringOpenError::Unsealed));
    }

    #[test]
    fn a_full_ring_refuses_new_keys_and_counts_them() {
        let mut ring = Keyring::default();
        assert!(ring.insert(ContextKey::new(KeyEpoch(0), [1; 32]), 1));
        assert!(!ring.insert(ContextKey::new(KeyEpoch(1), [2; 32]), 1));
        assert_eq!((ring.len(), ring.refused_at_bound()), (1, 1));
    }
}
