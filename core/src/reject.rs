//! Why a delta was refused. Each reason has a stable label used by metrics.

use crate::hlc::HlcError;
use crate::identity::SignatureError;

/// Why a delta was refused without being stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The id carried does not match the id recomputed from the contents.
    #[error("delta id does not match its contents")]
    IdMismatch,
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
    /// Parents are not sorted and deduplicated, so the encoding is not canonical.
    #[error("parents are not sorted and unique")]
    NonCanonicalParents,
    /// More parents than allowed.
    #[error("{count} parents, over the limit of {max}")]
    TooManyParents {
        /// Parents named.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is over the size bound.
    #[error("payload of {bytes} bytes, over the limit of {max}")]
    PayloadTooLarge {
        /// Payload size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The delta belongs to another context than the store it was given to.
    #[error("delta belongs to another context")]
    WrongContext,
    /// The author is not a member of the context.
    #[error("author is not a member of the context")]
    NotMember,
    /// The delta's clock is too far in the future.
    #[error("{0}")]
    Clock(HlcError),
    /// The node does not replicate this context.
    #[error("unknown context")]
    UnknownContext,
    /// The author was a member at the delta's causal point, but its role does not allow the
    /// membership change it makes.
    #[error("membership change not permitted to its author")]
    NotPermitted,
    /// A delta without parents that is not its context's genesis: every delta descends from
    /// the genesis.
    #[error("delta without parents is not the context's genesis")]
    NoGenesis,
    /// A genesis that does not create this context (its fields do not give the context id),
    /// or that names parents.
    #[error("genesis does not match its context")]
    BadGenesis,
    /// A kind whose fields break their bounds: an unsorted or oversized member list, a
    /// membership change with no ops, or a payload on a delta that may not carry one.
    #[error("malformed delta kind")]
    MalformedKind,
    /// An application payload sealed under another key epoch than its causal past's, or a
    /// rotation to another epoch than the next one.
    #[error("sealed under key epoch {sealed}, expected {expected}")]
    WrongKeyEpoch {
        /// The epoch the delta names.
        sealed: u32,
        /// The epoch its causal past calls for.
        expected: u32,
    },
    /// An application payload too short to be sealed: every payload is.
    #[error("application payload is not sealed")]
    Unsealed,
    /// An application payload sealed under a key of the right epoch that its causal past did
    /// not hand to exactly its members (a key given to only some, or to a non-member too).
    #[error("sealed under a key of epoch {epoch} not handed to exactly the members")]
    KeyNotShared {
        /// The epoch of the key it names.
        epoch: u32,
    },
    /// A key share that does not go to exactly the members it must (a genesis's to the initial
    /// members, a rotation's to the members after its ops, a grant's to current members only),
    /// or of an epoch that does not exist yet.
    #[error("key share with the wrong recipients or epoch")]
    BadKeyShare,
}

impl RejectReason {
    /// A short stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::IdMismatch => "id_mismatch",
            Self::BadSignature(_) => "bad_signature",
            Self::NonCanonicalParents => "non_canonical_parents",
            Self::TooManyParents { .. } => "too_many_parents",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::WrongContext => "wrong_context",
            Self::NotMember => "not_member",
            Self::Clock(_) => "hlc_too_far_ahead",
            Self::UnknownContext => "unknown_context",
            Self::NotPermitted => "not_permitted",
            Self::NoGenesis => "no_genesis",
            Self::BadGenesis => "bad_genesis",
            Self::MalformedKind => "malformed_kind",
            Self::WrongKeyEpoch { .. } => "wrong_key_epoch",
            Self::Unsealed => "unsealed",
            Self::KeyNotShared { .. } => "key_not_shared",
            Self::BadKeyShare => "bad_key_share",
        }
    }
}
