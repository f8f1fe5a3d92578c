//! Anti-entropy: per-context sync tracking, sync sessions, and snapshot transfer.

pub mod failure;
pub mod session;
pub mod snapshot;
pub mod tracking;
pub mod vouches;

pub use failure::SyncFailure;
pub use session::{SyncMode, SyncReason, SyncSession};
pub use tracking::{SyncTrack, TrackingPolicy};
pub use vouches::{Judgement, SingleVoucherAdoption, Vouches};
