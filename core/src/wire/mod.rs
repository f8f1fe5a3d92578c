//! The wire: one versioned borsh enum for gossip, one for sync requests and one for responses.
//!
//! Decoding is bounded twice: the whole message against `max_message_bytes` before any parsing,
//! then every variable-length field against its own limit after parsing. Garbage gives a
//! [`WireError`], never a panic: borsh reads lengths before it allocates and caps what it
//! preallocates, and the size check bounds the rest.

pub mod gossip;
pub mod sync;

pub use gossip::{gossip_message_id, Gossip, GossipMessage, GossipV1, GossipV2, Heartbeat, SignedHeartbeat};
pub use sync::{
    SnapshotCheckpoint, SnapshotPage, SyncErrorCode, SyncRequest, SyncRequestV1, SyncRequestV2, SyncResponse,
    SyncResponseV1, SyncResponseV2,
};

use borsh::{BorshDeserialize, BorshSerialize};

/// Why bytes from a peer were not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message is larger than `max_message_bytes`.
    #[error("message of {bytes} bytes, over the limit of {max}")]
    TooLarge {
        /// Message size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Empty input.
    #[error("empty message")]
    Empty,
    /// A version this node does not speak.
    #[error("unsupported message version tag {0}")]
    UnsupportedVersion(u8),
    /// The bytes are not a valid encoding.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A field is over its bound.
    #[error("field {field} has {len} items, over the limit of {max}")]
    FieldTooLarge {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl WireError {
    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Empty => "empty",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::Malformed(_) => "malformed",
            Self::FieldTooLarge { .. } => "field_too_large",
        }
    }
}

/// Encodes any wire message (or any borsh value) into a buffer of exactly its length.
///
/// `borsh::to_vec` starts every buffer at 1 KiB. A delta's payload is kept in memory for as
/// long as the delta is in the DAG, so that default cost a real node about 1 KB of resident
/// memory per delta (a heap profile of `bench-node memory`), and every transient encoding
/// asked the allocator for 1 KiB.
pub fn encode<T: BorshSerialize>(message: &T) -> Vec<u8> {
    let length = borsh::object_length(message).expect("measuring an encoding never fails");
    let mut bytes = Vec::with_capacity(length);
    message.serialize(&mut bytes).expect("encoding into a Vec never fails");
    bytes
}

/// Decodes a versioned envelope: checks size and version tag, then parses all of the bytes.
pub(crate) fn decode_envelope<T: BorshDeserialize>(
    bytes: &[u8],
    max_bytes: usize,
    known_versions: u8,
) -> Result<T, WireError> {
    if bytes.len() > max_bytes {
        return Err(WireError::TooLarge { bytes: bytes.len(), max: max_bytes });
    }
    let tag = *bytes.first().ok_or(WireError::Empty)?;
    if tag >= known_versions {
        return Err(WireError::UnsupportedVersion(tag));
    }
    borsh::from_slice(bytes).map_err(|error| WireError::Malformed(error.to_string()))
}

/// Fails if `len > max`.
pub(crate) fn bound(field: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        return Err(WireError::FieldTooLarge { field, len, max });
    }
    Ok(())
}
#[cfg(test)]
mod decode_props;

#[cfg(test)]
mod encode_tests {
    /// Encoded bytes are often kept (a delta's payload lives as long as the delta), so the
    /// buffer must not carry borsh's 1 KiB starting capacity along.
    #[test]
    fn encoding_allocates_exactly_its_length() {
        for value in [vec![], vec![7u8; 10], vec![1u8; 5_000]] {
            let bytes = super::encode(&value);
            assert_eq!(bytes, borsh::to_vec(&value).unwrap());
            assert_eq!(bytes.capacity(), bytes.len());
        }
    }
}
