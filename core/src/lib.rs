//! rhizome-core: the sans-IO protocol core of rhizome.
//!
//! This crate decides everything about replication — which deltas to apply, which to hold,
//! whom to ask for what, when to sync, when to snapshot, what to evict — and does none of the
//! doing. It has no async, no IO, no clock, no threads and no OS randomness: time comes in as a
//! [`Timestamp`], randomness from a seed, and messages as bytes through
//! [`Node::handle_input`]; decisions go out through [`Node::poll_output`], and
//! [`Node::poll_timeout`] says when to call again. The same code therefore runs under a real
//! network runtime and inside a deterministic simulator, and a seed reproduces a run exactly.

pub mod applier;
pub mod attestation;
pub mod config;
pub mod dag;
pub mod delta;
pub mod eviction;
pub mod gossip_buffer;
pub mod heartbeat;
pub mod hlc;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod link;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod reject;
pub mod seal;
pub mod signature_batch;
pub mod signature_memo;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod wire;

pub use applier::{Applier, ApplyError, SnapshotEntryFault, StateRecord};
pub use config::Config;
pub use dag::{AddOutcome, DagStore};
pub use delta::{CausalDelta, DeltaHeader, DeltaKind, DeltaRef};
pub use hlc::{Hlc, HlcClock};
pub use identity::{Keypair, Signature};
pub use ids::{AuthorKey, BlobId, ContextId, DeltaId, PeerId, RootHash};
pub use limits::Limits;
pub use membership::{MemberOp, MembershipView, Role};
pub use metrics::NodeMetrics;
pub use node::{
    Event, GossipVerdict, Handled, InboundRequestId, Input, InvariantDepth, Node, NodeError, Output, RequestFailure,
    RequestId, WriteBasis,
};
pub use reject::RejectReason;
pub use seal::{ContextKey, KeyEpoch, SealedPayload, SignedInvitation, WrappedKey};
pub use signature_memo::SignatureMemo;
pub use time::{Clocks, Timestamp};
