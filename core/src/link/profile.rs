//! How one link behaves.

use super::{Bitrate, LatencyDistribution, Probability};
use std::time::Duration;

/// Everything the model knows about one directed link. Loss, duplication and reordering apply
/// to each message independently; bandwidth makes messages on the same link queue behind each
/// other (see [`LinkQueue`](super::LinkQueue)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkProfile {
    /// One-way latency.
    pub latency: LatencyDistribution,
    /// Extra delay, uniform in [0, jitter), on top of the latency.
    pub jitter: Duration,
    /// Chance that a best-effort message (gossip) is lost; on a reliable stream (requests and
    /// responses) each loss costs a retransmission instead.
    pub loss: Probability,
    /// Chance that a message arrives twice (each copy with its own delay).
    pub duplicate: Probability,
    /// Chance that a message is held back by up to
    /// [`REORDER_HOLD_FACTOR`](super::REORDER_HOLD_FACTOR) × the mean latency, so later ones
    /// overtake it.
    pub reorder: Probability,
    /// How fast the link serializes.
    pub bandwidth: Bitrate,
}

/// A WAN-ish link: 10–50 ms, nothing lost, duplicated or reordered, unlimited bandwidth. The
/// simulator's profile for every link a scenario does not describe.
impl Default for LinkProfile {
    fn default() -> Self {
        Self {
            latency: LatencyDistribution::Uniform { min: Duration::from_millis(10), max: Duration::from_millis(50) },
            jitter: Duration::ZERO,
            loss: Probability::ZERO,
            duplicate: Probability::ZERO,
            reorder: Probability::ZERO,
            bandwidth: Bitrate::Unlimited,
        }
    }
}
