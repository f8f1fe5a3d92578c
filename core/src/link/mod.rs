//! The link model: what one network link does to one message — latency drawn from a
//! distribution, jitter, loss, duplication, reordering and bandwidth.
//!
//! It lives in the core so that every harness that moves the core's messages around — the
//! in-process test cluster (`testing::Cluster`) and the simulator's transport — applies the
//! same model: a scenario tuned in one means the same thing in the other. Like the rest of the
//! core it is sans-IO and deterministic: it never reads a clock (times come in as a
//! [`Duration`](std::time::Duration) since an epoch the caller chooses) and never draws OS
//! randomness (every decision draws from the caller's seeded RNG), so a seed replays a run.
//!
//! Probabilities, bitrates and times are typed ([`Probability`], [`Bitrate`],
//! [`Duration`](std::time::Duration)), so an out-of-range value is refused where it is read
//! rather than silently clamped where it is used.

mod bitrate;
mod draw;
mod fate;
mod latency;
mod probability;
mod profile;
mod queue;

pub use bitrate::Bitrate;
pub use draw::unit;
pub use fate::{Delivery, Fate, MAX_RETRANSMITS, REORDER_HOLD_FACTOR, RETRANSMIT_DELAY};
pub use latency::LatencyDistribution;
pub use probability::{Probability, ProbabilityError};
pub use profile::LinkProfile;
pub use queue::LinkQueue;
