//! Replicated membership: who may read and write a context is state of the context, changed
//! only by signed deltas in its DAG, so every replica derives the same members at the same
//! causal point. See docs/SECURITY.md for the rules and their limits.

mod change;
mod contest;
mod key_share;
mod ledger;
mod role;
mod view;

pub use change::{genesis_context_id, Genesis, MemberOp, MembershipChange};
pub use key_share::{genesis_wrap_context, KeyHandout, KeyShare};
pub use ledger::{Judged, MembershipLedger, SealedKey};
pub use role::Role;
pub use view::{MembershipView, SharedView, MAX_KEYS_PER_EPOCH, MAX_MEMBERS};
