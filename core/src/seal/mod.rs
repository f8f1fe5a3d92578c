//! Confidentiality for contexts: the context key, payloads sealed under it and the key wrapped
//! to each member.
//!
//! Like the rest of the core, nothing here reads a clock or draws randomness. Key bytes come in
//! from the driver and every nonce is synthetic: derived from a secret key and the content it
//! protects, so the same inputs give the same bytes on every replica and in every simulator run.
//!
//! Every derivation has its own versioned domain string (`"rhizome 2026-11 … v1"`), so no
//! key, nonce or signature made for one purpose is valid for another.

#![warn(missing_docs)]

mod context_key;
mod payload;
mod wrap;

pub use context_key::{ContextKey, KeyEpoch};
pub use payload::{open_payload, seal_payload, OpenError, SealHeader, SealedPayload, NONCE_LEN, TAG_LEN};
pub use wrap::{unwrap_key, wrap_key, UnwrapError, WrapError, WrappedKey};
