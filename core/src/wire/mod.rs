//! The wire: one versioned borsh enum for gossip, one for sync requests and one for responses.
//!
//! Decoding is bounded twice: the whole message against `max_message_bytes` before any parsing,
//! then every variable-length field against its own limit after parsing. Garbage gives a
//! [`WireError`], never a panic: borsh reads lengths before it allocates and caps what it
//! preallocates, and the size check bounds the rest.

pub mod gossip;
pub mod sync;

pub use gossip::{GossipMessage, GossipV1, Heartbeat};
pub use sync::{
    SnapshotCheckpoint, SnapshotPage, SyncErrorCode, SyncRequest, SyncRequestV1, SyncResponse, SyncResponseV1,
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

/// Encodes any wire message.
pub fn encode<T: BorshSerialize>(message: &T) -> Vec<u8> {
    borsh::to_vec(message).expect("encoding into a Vec never fails")
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
