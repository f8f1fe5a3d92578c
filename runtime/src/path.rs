//! Paths into an application's state, and their canonical byte encoding as store keys.
//!
//! A path is a list of segments from the root map down to a value (`["todos", id, "title"]`).
//! Each segment is encoded as a 4-byte big-endian length and its bytes, so the encoding of a
//! path is a byte prefix of the encoding of every path below it: a prefix scan of the store
//! finds a map's whole subtree.

use borsh::{BorshDeserialize, BorshSerialize};

/// A path from the root map to a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
pub struct Path(pub Vec<Vec<u8>>);

/// Namespace byte of value slots.
pub(crate) const VALUE_NAMESPACE: u8 = b'v';
/// Namespace byte of removal markers.
pub(crate) const REMOVAL_NAMESPACE: u8 = b'r';

impl Path {
    /// A path from segments.
    pub fn new<S: AsRef<[u8]>>(segments: impl IntoIterator<Item = S>) -> Self {
        Self(segments.into_iter().map(|segment| segment.as_ref().to_vec()).collect())
    }

    /// Number of segments.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// Total bytes over all segments.
    pub fn byte_len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    /// The store key of the value slot at this path.
    pub(crate) fn value_key(&self) -> Vec<u8> {
        encode(VALUE_NAMESPACE, &self.0)
    }

    /// The store key of the removal marker at this path.
    pub(crate) fn removal_key(&self) -> Vec<u8> {
        encode(REMOVAL_NAMESPACE, &self.0)
    }

    /// Removal-marker keys of every non-empty prefix of this path, itself included.
    pub(crate) fn prefix_removal_keys(&self) -> Vec<Vec<u8>> {
        (1..=self.0.len()).map(|len| encode(REMOVAL_NAMESPACE, &self.0[..len])).collect()
    }

    /// Decodes the path of a value-slot key.
    pub(crate) fn from_value_key(key: &[u8]) -> Option<Self> {
        Self::from_key(VALUE_NAMESPACE, key)
    }

    /// Decodes the path of a removal-marker key.
    pub(crate) fn from_removal_key(key: &[u8]) -> Option<Self> {
        Self::from_key(REMOVAL_NAMESPACE, key)
    }

    /// Decodes the path of a key in `namespace`; `None` if the key is in another namespace or
    /// is not a sequence of length-prefixed segments.
    fn from_key(expected: u8, key: &[u8]) -> Option<Self> {
        let (&namespace, mut rest) = key.split_first()?;
        if namespace != expected {
            return None;
        }
        let mut segments = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(4)?;
            let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
            let (segment, tail) = tail.split_at_checked(len)?;
            segments.push(segment.to_vec());
            rest = tail;
        }
        Some(Self(segments))
    }
}

fn encode(namespace: u8, segments: &[Vec<u8>]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + segments.iter().map(|s| 4 + s.len()).sum::<usize>());
    key.push(namespace);
    for segment in segments {
        key.extend_from_slice(&(segment.len() as u32).to_be_bytes());
        key.extend_from_slice(segment);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_path_key_is_a_byte_prefix_of_its_children_and_round_trips() {
        let parent = Path::new(["todos"]);
        let child = Path::new(["todos", "a", "title"]);
        assert!(child.value_key().starts_with(&parent.value_key()));
        assert_eq!(Path::from_value_key(&child.value_key()), Some(child.clone()));
        // Segment boundaries are part of the encoding: ["ab"] is not a prefix of ["a", "b"].
        assert!(!Path::new(["a", "b"]).value_key().starts_with(&Path::new(["ab"]).value_key()));
        assert_eq!(child.prefix_removal_keys().len(), 3);
        assert_eq!(Path::from_value_key(b"v\x00\x00\x00\x09ab"), None, "truncated segment");
    }
}
