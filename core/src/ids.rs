//! Fixed-size identifiers: contexts, deltas, peers, authors, roots and blobs.
//!
//! Every id is 32 bytes. Delta ids and roots are BLAKE3 outputs, so their first eight bytes are
//! already uniformly distributed: [`IdHasher`] uses them directly instead of hashing again.

use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// An id whose bytes are BLAKE3 of `data`; handy for tests and for names.
            pub fn hash_of(data: &[u8]) -> Self {
                Self(*blake3::hash(data).as_bytes())
            }
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                state.write_u64(prefix_u64(&self.0));
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0[..6])?;
                write!(f, ")")
            }
        }
    };
}

id_type!(
    /// Names one replicated application instance (a context) and its gossip topic.
    ContextId
);
id_type!(
    /// BLAKE3 of a delta's canonical encoding; see [`crate::delta::CausalDelta::compute_id`].
    DeltaId
);
id_type!(
    /// A node on the network: the bytes of its ed25519 public key.
    PeerId
);
id_type!(
    /// The ed25519 public key that signed a delta.
    AuthorKey
);
id_type!(
    /// The Merkle root of an application's state, as reported by the [`crate::Applier`].
    RootHash
);
id_type!(
    /// A content-addressed blob: BLAKE3 of its bytes.
    BlobId
);

fn prefix_u64(bytes: &[u8; 32]) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(prefix)
}

/// Lowercase hex of `bytes` (at most 32), written in one piece: ids are printed on hot paths
/// (every JSON-RPC answer names its delta), and `{:02x}` per byte costs a formatter call each.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 64];
    let bytes = &bytes[..bytes.len().min(32)];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    let text = std::str::from_utf8(&text[..bytes.len() * 2]).map_err(|_| fmt::Error)?;
    f.write_str(text)
}

/// A hasher for 32-byte ids that takes their first eight bytes as the hash.
///
/// Fixed (no per-process random key), so map behaviour is reproducible from a seed. The ids it
/// sees are BLAKE3 outputs; grinding colliding ids needs a member's signing key, and the worst an
/// attacker gets is longer probe sequences, not wrong answers.
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if an id is hashed through a path other than `Hash` above; fold the
        // bytes in so the hasher is still correct, merely slower.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A hash map keyed by ids, deterministic and fast.
pub type IdMap<K, V> = hashbrown::HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hash set of ids, deterministic and fast.
pub type IdSet<K> = hashbrown::HashSet<K, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_full_hex_and_debug_is_short() {
        let id = DeltaId::from_bytes([0xab; 32]);
        assert_eq!(id.to_string().len(), 64);
        assert_eq!(format!("{id:?}"), "DeltaId(abababababab)");
    }

    #[test]
    fn id_map_finds_what_it_stored() {
        let mut map: IdMap<DeltaId, u32> = IdMap::default();
        for i in 0..1000u32 {
            map.insert(DeltaId::hash_of(&i.to_le_bytes()), i);
        }
        for i in 0..1000u32 {
            assert_eq!(map.get(&DeltaId::hash_of(&i.to_le_bytes())), Some(&i));
        }
    }
}
