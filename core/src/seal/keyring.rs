//! The context keys one replica holds, by epoch: what it opens payloads with and seals its
//! own under.

use super::{open_payload_encoded, ContextKey, KeyEpoch, KeyId, OpenError, SealHeader, SealedPayload};
use std::collections::BTreeMap;

/// Why a payload could not be opened with the keys held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyringOpenError {
    /// Not a sealed payload at all.
    #[error("the payload is too short to be sealed")]
    Unsealed,
    /// The key it names is not held (yet: a key a later membership delta grants, or a key
    /// request answers, opens it then).
    #[error("the key of epoch {0} it names is not held")]
    NoKey(KeyEpoch),
    /// The key it names is held, but does not open it: the payload is forged.
    #[error("the key of epoch {0} it names does not open it")]
    Forged(KeyEpoch),
}

impl KeyringOpenError {
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unsealed => "unsealed",
            Self::NoKey(_) => "no_key",
            Self::Forged(_) => "forged",
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

    /// Opens `payload` (a [`SealedPayload`] encoding) sealed under `header` with the key it
    /// names.
    pub fn open(&self, header: &SealHeader<'_>, payload: &[u8]) -> Result<Vec<u8>, KeyringOpenError> {
        let (epoch, key_id) = SealedPayload::key_of(payload).ok_or(KeyringOpenError::Unsealed)?;
        let key = self.get(epoch, &key_id).ok_or(KeyringOpenError::NoKey(epoch))?;
        open_payload_encoded(key, header, payload).map_err(|error| match error {
            OpenError::Forged | OpenError::WrongKey { .. } | OpenError::Truncated { .. } => {
                KeyringOpenError::Forged(epoch)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::ids::{AuthorKey, ContextId};
    use crate::seal::seal_payload;

    #[test]
    fn opens_with_the_key_it_names_among_those_of_its_epoch() {
        let context = ContextId::hash_of(b"c");
        let author = AuthorKey::from_bytes([1; 32]);
        let hlc = Hlc::default();
        let header = SealHeader { context: &context, author: &author, parents: &[], hlc: &hlc };
        let first = ContextKey::new(KeyEpoch(1), [1; 32]);
        let concurrent = ContextKey::new(KeyEpoch(1), [2; 32]);
        let sealed = seal_payload(&concurrent, &header, &[0; 32], b"hello").encode();
        let mut ring = Keyring::default();
        assert_eq!(ring.open(&header, &sealed), Err(KeyringOpenError::NoKey(KeyEpoch(1))));
        assert!(ring.insert(first.clone(), 8));
        assert!(!ring.insert(first, 8), "held already");
        assert_eq!(ring.open(&header, &sealed), Err(KeyringOpenError::NoKey(KeyEpoch(1))), "another key of the epoch");
        assert!(ring.insert(concurrent, 8));
        assert_eq!(ring.open(&header, &sealed).unwrap(), b"hello");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open(&header, &tampered), Err(KeyringOpenError::Forged(KeyEpoch(1))));
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
