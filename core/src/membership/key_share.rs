//! Context keys handed out inside membership deltas: a genesis gives the first key to every
//! initial member, a rotation gives a new key to every member after the change, and grants
//! give keys that already exist to members who lack them (a member just added, who must read
//! the history sealed under them).

use crate::identity::Keypair;
use crate::ids::{AuthorKey, ContextId};
use crate::seal::{unwrap_key, wrap_key, ContextKey, KeyEpoch, KeyId, UnwrapError, WrapError, WrappedKey};
use borsh::{BorshDeserialize, BorshSerialize};

/// Domain of the context a genesis's key wraps are bound to. A genesis cannot bind its wraps to
/// its own context id, which is a hash of the genesis, wraps included; it binds them to its
/// creator and nonce instead, which the id also covers.
const GENESIS_WRAP_CONTEXT_DOMAIN: &str = "rhizome 2026-12 genesis key wrap context v1";

/// One context key, wrapped to each of its recipients.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct KeyShare {
    /// The key's epoch.
    pub epoch: KeyEpoch,
    /// The key's fingerprint: which key of the epoch this is.
    pub key_id: KeyId,
    /// The key wrapped to each recipient, sorted by recipient, one each.
    pub wraps: Vec<WrappedKey>,
}

impl KeyShare {
    /// Wraps `key` from `sender` to every key in `recipients` (sorted and deduplicated here).
    /// `bound_to` is the context the wraps are bound to (see [`genesis_wrap_context`]).
    pub fn wrap(
        sender: &Keypair,
        bound_to: &ContextId,
        key: &ContextKey,
        recipients: impl IntoIterator<Item = AuthorKey>,
    ) -> Result<Self, WrapError> {
        let mut recipients: Vec<AuthorKey> = recipients.into_iter().collect();
        recipients.sort_unstable();
        recipients.dedup();
        let wraps =
            recipients.iter().map(|recipient| wrap_key(sender, recipient, bound_to, key)).collect::<Result<_, _>>()?;
        Ok(Self { epoch: key.epoch(), key_id: key.id(), wraps })
    }

    /// Whom the key is for, in order.
    pub fn recipients(&self) -> impl Iterator<Item = &AuthorKey> {
        self.wraps.iter().map(|wrap| &wrap.recipient)
    }

    /// True if the share lists at least one and at most `max_wraps` recipients, strictly
    /// sorted, every wrap of the share's epoch: the shape every replica can check alone.
    pub fn is_well_formed(&self, max_wraps: usize) -> bool {
        !self.wraps.is_empty()
            && self.wraps.len() <= max_wraps
            && self.wraps.iter().all(|wrap| wrap.epoch == self.epoch)
            && self.wraps.windows(2).all(|pair| pair[0].recipient < pair[1].recipient)
    }

    /// True if the recipients are exactly `members`, in order.
    pub fn is_for_exactly<'a>(&self, members: impl ExactSizeIterator<Item = &'a AuthorKey>) -> bool {
        members.len() == self.wraps.len() && self.recipients().eq(members)
    }

    /// Unwraps the key addressed to `own`, if there is one. `sender` is the delta's author.
    /// A key whose fingerprint is not the one announced is refused as forged: the sender lied
    /// about which key it handed out.
    pub fn unwrap_for(
        &self,
        own: &Keypair,
        sender: &AuthorKey,
        bound_to: &ContextId,
    ) -> Option<Result<ContextKey, UnwrapError>> {
        let own_key = own.author_key();
        let index = self.wraps.binary_search_by(|wrap| wrap.recipient.cmp(&own_key)).ok()?;
        let unwrapped = unwrap_key(own, sender, bound_to, &self.wraps[index]).and_then(|key| {
            if key.id() == self.key_id {
                Ok(key)
            } else {
                Err(UnwrapError::Forged)
            }
        });
        Some(unwrapped)
    }

    /// Which key the share hands out and to whom, without the wraps: what membership views
    /// keep.
    pub fn handout(&self) -> KeyHandout {
        KeyHandout { epoch: self.epoch, key_id: self.key_id, recipients: self.recipients().copied().collect() }
    }

    /// Bytes of the borsh encoding: epoch, key id, wrap count, then fixed-size wraps.
    pub fn encoded_len(&self) -> usize {
        4 + 16 + 4 + WrappedKey::ENCODED_LEN * self.wraps.len()
    }
}

/// Which key a [`KeyShare`] handed out, and to whom (sorted).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyHandout {
    /// The key's epoch.
    pub epoch: KeyEpoch,
    /// Which key of the epoch.
    pub key_id: KeyId,
    /// Its recipients, sorted.
    pub recipients: Vec<AuthorKey>,
}

/// The context a genesis by `creator` with `nonce` binds its key wraps to.
pub fn genesis_wrap_context(creator: &AuthorKey, nonce: &[u8; 32]) -> ContextId {
    let mut hasher = blake3::Hasher::new_derive_key(GENESIS_WRAP_CONTEXT_DOMAIN);
    hasher.update(creator.as_bytes());
    hasher.update(nonce);
    ContextId::from_bytes(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(n: u8) -> Keypair {
        Keypair::from_secret_bytes([n; 32])
    }

    #[test]
    fn wraps_to_each_recipient_in_order_and_only_they_unwrap() {
        let context = ContextId::hash_of(b"c");
        let key = ContextKey::new(KeyEpoch(3), [7; 32]);
        let recipients = [keypair(3).author_key(), keypair(2).author_key(), keypair(3).author_key()];
        let share = KeyShare::wrap(&keypair(1), &context, &key, recipients).unwrap();
        assert!(share.is_well_formed(2));
        assert!(!share.is_well_formed(1));
        assert_eq!(share.encoded_len(), borsh::to_vec(&share).unwrap().len());
        let sender = keypair(1).author_key();
        let opened = share.unwrap_for(&keypair(2), &sender, &context).unwrap().unwrap();
        assert_eq!(opened.secret_bytes(), key.secret_bytes());
        assert!(share.unwrap_for(&keypair(4), &sender, &context).is_none(), "not a recipient");
        let elsewhere = ContextId::hash_of(b"d");
        assert!(share.unwrap_for(&keypair(2), &sender, &elsewhere).unwrap().is_err(), "bound to its context");
    }

    #[test]
    fn a_share_that_lies_about_its_key_is_refused() {
        let context = ContextId::hash_of(b"c");
        let key = ContextKey::new(KeyEpoch(0), [7; 32]);
        let mut share = KeyShare::wrap(&keypair(1), &context, &key, [keypair(2).author_key()]).unwrap();
        share.key_id = ContextKey::new(KeyEpoch(0), [8; 32]).id();
        let sender = keypair(1).author_key();
        assert_eq!(share.unwrap_for(&keypair(2), &sender, &context).unwrap().unwrap_err(), UnwrapError::Forged);
    }
}
