//! Confidentiality for contexts: the context key, payloads sealed under it, the key wrapped to
//! each member, and invitation tokens that carry it to a new member.
//!
//! Like the rest of the core, nothing here reads a clock or draws randomness. Key bytes are
//! derived from the node's identity secret and the driver's entropy ([`rotation_key`]),
//! invitation ids come in from the driver, expiry checks take the time as `now_ms`, and every
//! nonce is synthetic: derived from a secret key and what it protects (a payload's: the
//! sealer's per-start salt and the delta's header), so the same inputs give the same bytes on
//! every replica and in every simulator run.
//!
//! Every derivation has its own versioned domain string (`"rhizome 2026-11 … v1"`), so no
//! key, nonce or signature made for one purpose is valid for another.

#![warn(missing_docs)]

mod context_key;
mod derive;
mod hex;
mod invitation;
mod keyring;
mod payload;
mod wrap;

pub use context_key::{ContextKey, KeyEpoch, KeyId};
pub use derive::{genesis_key, rotation_key};
pub use invitation::{
    AcceptedInvitation, Invitation, InvitationError, InvitationTerms, SignedInvitation, INVITATION_VERSION,
    MAX_BOOTSTRAP_ADDRESSES, MAX_BOOTSTRAP_ADDRESS_BYTES, MAX_INVITATION_BYTES, MAX_INVITATION_TEXT_BYTES, TEXT_PREFIX,
};
pub use keyring::{Keyring, KeyringOpenError};
pub use payload::{
    open_payload, open_payload_encoded, seal_payload, seal_payload_encoded, OpenError, SealHeader, SealedPayload,
    NONCE_LEN, TAG_LEN,
};
pub use wrap::{unwrap_key, wrap_key, UnwrapError, WrapError, WrappedKey};
