//! Sealed payloads: a delta's payload encrypted under the context key (XChaCha20-Poly1305) and
//! bound to the delta's header, so a sealed payload cannot be moved to another delta.
//!
//! Encoded layout (fixed-width fields little-endian):
//!
//! ```text
//! epoch u32 | key_id [u8; 16] | nonce [u8; 24] | ciphertext (plaintext length) | tag [u8; 16]
//! ```
//!
//! The key id names which key of the epoch sealed it, so admission can check that key was
//! handed to every member of the delta's causal past (concurrent rotations make several keys
//! of one epoch), and a replica opens it with one lookup.

use super::context_key::{ContextKey, KeyEpoch, KeyId};
use crate::hlc::Hlc;
use crate::ids::{AuthorKey, ContextId, DeltaId};
use borsh::BorshSerialize;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use std::fmt;

/// XChaCha20-Poly1305's nonce length.
pub const NONCE_LEN: usize = 24;
/// Poly1305's tag length.
pub const TAG_LEN: usize = 16;

/// The delta fields a sealed payload is bound to: the AEAD's associated data. Sealing and
/// opening must be given the same values, so a payload copied into a delta with another
/// context, author, parents or time does not open.
#[derive(Clone, Copy, Debug)]
pub struct SealHeader<'a> {
    /// The delta's context.
    pub context: &'a ContextId,
    /// The delta's author.
    pub author: &'a AuthorKey,
    /// The delta's parents, sorted and unique as the delta carries them.
    pub parents: &'a [DeltaId],
    /// The delta's HLC.
    pub hlc: &'a Hlc,
}

/// The associated data in its canonical (borsh) order. The epoch and key id are the sealing
/// key's, so a payload relabelled with another epoch does not open even under a key with the
/// same bytes.
#[derive(BorshSerialize)]
struct AssociatedData<'a> {
    context: &'a ContextId,
    author: &'a AuthorKey,
    parents: &'a [DeltaId],
    hlc: &'a Hlc,
    epoch: KeyEpoch,
    key_id: KeyId,
}

fn associated_data(header: &SealHeader<'_>, epoch: KeyEpoch, key_id: KeyId) -> Vec<u8> {
    let ad = AssociatedData {
        context: header.context,
        author: header.author,
        parents: header.parents,
        hlc: header.hlc,
        epoch,
        key_id,
    };
    // 32 + 32 + 4 + 32 per parent + 20 + 4 + 16.
    let mut bytes = Vec::with_capacity(108 + 32 * header.parents.len());
    // Writing into a Vec cannot fail; borsh only refuses slices over u32::MAX entries, which a
    // parent list in memory never is.
    borsh::to_writer(&mut bytes, &ad).expect("encoding the header never fails");
    bytes
}

/// A payload sealed under one [`KeyEpoch`] of a context's key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPayload {
    /// The epoch of the key it was sealed under.
    pub epoch: KeyEpoch,
    /// Which key of the epoch it was sealed under.
    pub key_id: KeyId,
    /// The synthetic nonce (see [`seal_payload`]).
    pub nonce: [u8; NONCE_LEN],
    /// The ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl SealedPayload {
    /// Bytes of the fields before the ciphertext: epoch, key id and nonce.
    pub(super) const PREFIX: usize = 4 + 16 + NONCE_LEN;
    /// Bytes an encoding adds to the plaintext: epoch, key id, nonce and tag.
    pub const OVERHEAD: usize = Self::PREFIX + TAG_LEN;

    /// The encoding's length.
    pub fn encoded_len(&self) -> usize {
        Self::PREFIX + self.ciphertext.len()
    }

    /// The encoding described in the [module docs](self).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.encoded_len());
        bytes.extend_from_slice(&self.epoch.0.to_le_bytes());
        bytes.extend_from_slice(&self.key_id.0);
        bytes.extend_from_slice(&self.nonce);
        bytes.extend_from_slice(&self.ciphertext);
        bytes
    }

    /// The key (epoch and id) an encoding names, without copying it, if it is long enough to
    /// be one.
    pub fn key_of(bytes: &[u8]) -> Option<(KeyEpoch, KeyId)> {
        if bytes.len() < Self::OVERHEAD {
            return None;
        }
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&bytes[..4]);
        let mut key_id = KeyId::default();
        key_id.0.copy_from_slice(&bytes[4..20]);
        Some((KeyEpoch(u32::from_le_bytes(epoch)), key_id))
    }

    /// Splits an encoding into its parts. Anything shorter than [`Self::OVERHEAD`] (an empty
    /// plaintext's encoding) is [`OpenError::Truncated`]; whether the rest is genuine is only
    /// known when it is opened.
    pub fn decode(bytes: &[u8]) -> Result<Self, OpenError> {
        let (epoch, key_id) = Self::key_of(bytes).ok_or(OpenError::Truncated { bytes: bytes.len() })?;
        let (nonce, ciphertext) = bytes[20..].split_at(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        Ok(Self { epoch, key_id, nonce: nonce_bytes, ciphertext: ciphertext.to_vec() })
    }
}

impl fmt::Debug for SealedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedPayload")
            .field("epoch", &self.epoch)
            .field("key_id", &format_args!("{:02x}{:02x}..", self.key_id.0[0], self.key_id.0[1]))
            .field(
                "nonce",
                &format_args!("{:02x}{:02x}{:02x}{:02x}..", self.nonce[0], self.nonce[1], self.nonce[2], self.nonce[3]),
            )
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Why a sealed payload did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It names another key (another epoch's, or another of the epoch) than the one given.
    #[error("payload is sealed under a key of epoch {sealed}, the key given is another (epoch {have})")]
    WrongKey {
        /// The epoch of the key given.
        have: KeyEpoch,
        /// The epoch the payload names.
        sealed: KeyEpoch,
    },
    /// Too short to hold an epoch, a nonce and a tag.
    #[error("sealed payload of {bytes} bytes is truncated")]
    Truncated {
        /// The bytes there were (of the whole encoding).
        bytes: usize,
    },
    /// Authentication failed: the ciphertext, the header or the key is not the one it was
    /// sealed with.
    #[error("sealed payload does not authenticate")]
    Forged,
}

impl OpenError {
    /// A short stable snake_case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::WrongKey { .. } => "wrong_key",
            Self::Truncated { .. } => "truncated",
            Self::Forged => "forged",
        }
    }
}

/// The nonce for sealing under associated data `ad`: a keyed BLAKE3 (a PRF under a key only
/// key holders have) over the sealer's `salt` and `ad`, cut to 24 bytes.
///
/// No randomness is needed (the core has none) and no pass over the plaintext: the header
/// already differs between any two payloads one honest node seals, since its HLC grows with
/// every write it makes, and the salt (fresh at every start of the node, see
/// [`crate::Node::set_key_entropy`]) keeps two runs apart even if a crash and a clock stepped
/// back made the same header twice. Two different plaintexts share a nonce only if one node
/// seals them under the same key, salt and header, which an honest node never does.
fn synthetic_nonce(key: &ContextKey, salt: &[u8; 32], ad: &[u8]) -> [u8; NONCE_LEN] {
    let mut hasher = blake3::Hasher::new_keyed(key.nonce_key());
    hasher.update(salt);
    hasher.update(ad);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&hasher.finalize().as_bytes()[..NONCE_LEN]);
    nonce
}

/// Seals `plaintext` under `key`, bound to `header`. `salt` is the sealing node's per-start
/// entropy (see [`synthetic_nonce`]). Deterministic: the same key, salt, header and plaintext
/// always give the same bytes.
pub fn seal_payload(key: &ContextKey, header: &SealHeader<'_>, salt: &[u8; 32], plaintext: &[u8]) -> SealedPayload {
    SealedPayload::decode(&seal_payload_encoded(key, header, salt, plaintext)).expect("a fresh encoding decodes")
}

/// [`seal_payload`], straight into its encoding: one buffer, encrypted in place, which is what
/// a writer puts in its delta.
pub fn seal_payload_encoded(key: &ContextKey, header: &SealHeader<'_>, salt: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let ad = associated_data(header, key.epoch(), key.id());
    let nonce = synthetic_nonce(key, salt, &ad);
    let cipher = XChaCha20Poly1305::new(key.payload_key().into());
    let mut bytes = Vec::with_capacity(SealedPayload::OVERHEAD + plaintext.len());
    bytes.extend_from_slice(&key.epoch().0.to_le_bytes());
    bytes.extend_from_slice(&key.id().0);
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(plaintext);
    // The AEAD refuses only plaintexts over 256 GiB, far beyond any payload bound.
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &ad, &mut bytes[SealedPayload::PREFIX..])
        .expect("payloads are far below the AEAD's length limit");
    bytes.extend_from_slice(&tag);
    bytes
}

/// Opens a payload sealed by [`seal_payload`] under `key` and `header`.
pub fn open_payload(key: &ContextKey, header: &SealHeader<'_>, sealed: &SealedPayload) -> Result<Vec<u8>, OpenError> {
    open_payload_encoded(key, header, &sealed.encode())
}

/// Opens a payload's encoding (as a delta carries it) sealed under `key` and `header`, copying
/// its body once.
///
/// The nonce is not recomputed: the tag already authenticates everything, and anyone able to
/// seal a wrong nonce holds the key and could seal anything anyway.
pub fn open_payload_encoded(key: &ContextKey, header: &SealHeader<'_>, bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
    let (epoch, key_id) = SealedPayload::key_of(bytes).ok_or(OpenError::Truncated { bytes: bytes.len() })?;
    if epoch != key.epoch() || key_id != key.id() {
        return Err(OpenError::WrongKey { have: key.epoch(), sealed: epoch });
    }
    let (sealed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let (prefix, body) = sealed.split_at(SealedPayload::PREFIX);
    let ad = associated_data(header, epoch, key_id);
    let cipher = XChaCha20Poly1305::new(key.payload_key().into());
    let mut plaintext = body.to_vec();
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(&prefix[20..]), &ad, &mut plaintext, Tag::from_slice(tag))
        .map_err(|_| OpenError::Forged)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fields {
        context: ContextId,
        author: AuthorKey,
        parents: Vec<DeltaId>,
        hlc: Hlc,
    }

    impl Fields {
        fn sample() -> Self {
            let mut parents = vec![DeltaId::hash_of(b"p1"), DeltaId::hash_of(b"p2")];
            parents.sort_unstable();
            Self {
                context: ContextId::hash_of(b"ctx"),
                author: AuthorKey::hash_of(b"author"),
                parents,
                hlc: Hlc { physical_ms: 1_700_000_000_000, logical: 2, node: 7 },
            }
        }

        fn header(&self) -> SealHeader<'_> {
            SealHeader { context: &self.context, author: &self.author, parents: &self.parents, hlc: &self.hlc }
        }
    }

    fn key() -> ContextKey {
        ContextKey::new(KeyEpoch(3), [5; 32])
    }

    const SALT: [u8; 32] = [0x5a; 32];

    #[test]
    fn round_trips_through_the_encoding() {
        let fields = Fields::sample();
        for plaintext in [&b""[..], b"x", &[7u8; 1000][..]] {
            let sealed = seal_payload(&key(), &fields.header(), &SALT, plaintext);
            assert_eq!(sealed.encoded_len(), plaintext.len() + SealedPayload::OVERHEAD);
            let bytes = sealed.encode();
            assert_eq!(bytes.len(), sealed.encoded_len());
            assert_eq!(&bytes[..4], &3u32.to_le_bytes());
            let decoded = SealedPayload::decode(&bytes).unwrap();
            assert_eq!(decoded, sealed);
            assert_eq!(open_payload(&key(), &fields.header(), &decoded).unwrap(), plaintext);
        }
    }

    #[test]
    fn tampered_ciphertext_tag_or_nonce_is_forged() {
        let fields = Fields::sample();
        let sealed = seal_payload(&key(), &fields.header(), &SALT, b"hello world");
        for index in [0, 10, sealed.ciphertext.len() - 1] {
            let mut tampered = sealed.clone();
            tampered.ciphertext[index] ^= 1;
            assert_eq!(open_payload(&key(), &fields.header(), &tampered), Err(OpenError::Forged));
        }
        let mut tampered = sealed.clone();
        tampered.nonce[0] ^= 1;
        assert_eq!(open_payload(&key(), &fields.header(), &tampered), Err(OpenError::Forged));
    }

    #[test]
    fn every_header_field_is_bound() {
        let fields = Fields::sample();
        let sealed = seal_payload(&key(), &fields.header(), &SALT, b"hello");
        let check =
            |fields: &Fields| assert_eq!(open_payload(&key(), &fields.header(), &sealed), Err(OpenError::Forged));

        check(&Fields { context: ContextId::hash_of(b"other"), ..Fields::sample() });
        check(&Fields { author: AuthorKey::hash_of(b"other"), ..Fields::sample() });
        check(&Fields { parents: vec![DeltaId::hash_of(b"p1")], ..Fields::sample() });
        check(&Fields { parents: vec![], ..Fields::sample() });
        let mut hlc = fields.hlc;
        hlc.logical += 1;
        check(&Fields { hlc, ..Fields::sample() });
        let mut hlc = fields.hlc;
        hlc.node += 1;
        check(&Fields { hlc, ..Fields::sample() });
    }

    #[test]
    fn the_epoch_is_checked_and_bound() {
        let fields = Fields::sample();
        let sealed = seal_payload(&key(), &fields.header(), &SALT, b"hello");
        let mut relabelled = sealed.clone();
        relabelled.epoch = KeyEpoch(4);
        assert_eq!(
            open_payload(&key(), &fields.header(), &relabelled),
            Err(OpenError::WrongKey { have: KeyEpoch(3), sealed: KeyEpoch(4) })
        );
        // Same secret under the relabelled epoch: the epoch is in the associated data.
        let same_bytes = ContextKey::new(KeyEpoch(4), *key().secret_bytes());
        assert_eq!(open_payload(&same_bytes, &fields.header(), &relabelled), Err(OpenError::Forged));
    }

    #[test]
    fn another_key_of_the_epoch_is_refused_by_its_id_and_a_relabelled_id_does_not_open() {
        let fields = Fields::sample();
        let sealed = seal_payload(&key(), &fields.header(), &SALT, b"hello");
        assert_eq!(sealed.key_id, key().id());
        let other = ContextKey::new(KeyEpoch(3), [6; 32]);
        assert_eq!(
            open_payload(&other, &fields.header(), &sealed),
            Err(OpenError::WrongKey { have: KeyEpoch(3), sealed: KeyEpoch(3) })
        );
        let mut relabelled = sealed.clone();
        relabelled.key_id = other.id();
        assert_eq!(open_payload(&other, &fields.header(), &relabelled), Err(OpenError::Forged));
    }

    #[test]
    fn truncated_input_is_refused() {
        let fields = Fields::sample();
        let bytes = seal_payload(&key(), &fields.header(), &SALT, b"").encode();
        assert_eq!(bytes.len(), SealedPayload::OVERHEAD);
        for len in [0, 3, 4, 27, 28, 47, SealedPayload::OVERHEAD - 1] {
            assert_eq!(SealedPayload::decode(&bytes[..len]), Err(OpenError::Truncated { bytes: len }));
        }
        // A struct built by hand with less than a tag is refused the same way.
        let short = SealedPayload {
            epoch: KeyEpoch(3),
            key_id: key().id(),
            nonce: [0; NONCE_LEN],
            ciphertext: vec![0; TAG_LEN - 1],
        };
        assert_eq!(open_payload(&key(), &fields.header(), &short), Err(OpenError::Truncated { bytes: 59 }));
        // Cutting a longer payload short leaves a decodable prefix that does not authenticate.
        let bytes = seal_payload(&key(), &fields.header(), &SALT, b"hello world").encode();
        let cut = SealedPayload::decode(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(open_payload(&key(), &fields.header(), &cut), Err(OpenError::Forged));
    }

    #[test]
    fn sealing_is_deterministic_and_nonces_follow_the_header_key_and_salt() {
        let fields = Fields::sample();
        let a = seal_payload(&key(), &fields.header(), &SALT, b"one");
        assert_eq!(a.encode(), seal_payload(&key(), &fields.header(), &SALT, b"one").encode());
        // Another run of the node (another salt) never repeats a nonce for the same header.
        assert_ne!(a.nonce, seal_payload(&key(), &fields.header(), &[0x5b; 32], b"two").nonce);
        let other_hlc = Fields { hlc: Hlc { logical: 9, ..fields.hlc }, ..Fields::sample() };
        assert_ne!(a.nonce, seal_payload(&key(), &other_hlc.header(), &SALT, b"one").nonce);
        assert_ne!(
            a.nonce,
            seal_payload(&ContextKey::new(KeyEpoch(3), [6; 32]), &fields.header(), &SALT, b"one").nonce
        );
    }

    #[test]
    fn encoding_is_pinned() {
        // Pins the layout and the derivations: a change here makes every sealed payload unreadable.
        let fields = Fields::sample();
        let sealed = seal_payload(&key(), &fields.header(), &SALT, b"pin");
        let bytes = sealed.encode();
        assert_eq!(bytes.len(), 3 + SealedPayload::OVERHEAD);
        assert_eq!(&bytes[4..20], &key().id().0);
        assert_eq!(&bytes[20..44], &sealed.nonce);
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            "2173031cef68e937394039037b0bb4540cc365539be4adfb74a9eda372c06eac"
        );
    }

    #[test]
    fn error_labels_are_stable() {
        assert_eq!(OpenError::WrongKey { have: KeyEpoch(1), sealed: KeyEpoch(2) }.label(), "wrong_key");
        assert_eq!(OpenError::Truncated { bytes: 1 }.label(), "truncated");
        assert_eq!(OpenError::Forged.label(), "forged");
    }
}
