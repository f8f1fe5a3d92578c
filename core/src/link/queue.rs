//! A link's send queue, which is what bandwidth means for latency.

use super::{Delivery, Fate, LinkProfile};
use rand_chacha::rand_core::RngCore;
use std::time::Duration;

/// One directed link's sending side: on a bandwidth-limited link a message waits for the ones
/// sent before it to be serialized, so a burst spreads out in time instead of arriving at once.
/// Keep one per directed link, for as long as the link lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkQueue {
    /// When the link finishes serializing what it already has (since the caller's epoch).
    busy_until: Duration,
}

impl LinkQueue {
    /// Sends `bytes` at `now` (since the caller's epoch, never earlier than a previous `now`):
    /// the message queues behind what the link is still serializing, then takes its own
    /// serialization time, then meets its [`Fate`]. An unlimited link queues nothing.
    pub fn transmit<R: RngCore + ?Sized>(
        &mut self,
        profile: &LinkProfile,
        now: Duration,
        bytes: usize,
        delivery: Delivery,
        rng: &mut R,
    ) -> Fate {
        let done = self.busy_until.max(now) + profile.bandwidth.serialization_time(bytes);
        if profile.bandwidth.is_limited() {
            self.busy_until = done;
        }
        profile.fate(delivery, done - now, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{Bitrate, LatencyDistribution};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn first_delay(fate: Fate) -> Duration {
        fate.delays().next().expect("nothing is lost")
    }

    #[test]
    fn a_burst_on_a_limited_link_queues_behind_itself_and_the_queue_drains() {
        // 1 Mbit/s: 125,000 bytes take a second; 10 ms of flight.
        let profile = LinkProfile {
            latency: LatencyDistribution::Fixed(Duration::from_millis(10)),
            bandwidth: Bitrate::from_kbps(1_000),
            ..LinkProfile::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut queue = LinkQueue::default();
        let now = Duration::from_secs(100);
        let burst: Vec<Duration> = (0..3)
            .map(|_| first_delay(queue.transmit(&profile, now, 125_000, Delivery::BestEffort, &mut rng)))
            .collect();
        let secs = |s: u64| Duration::from_secs(s) + Duration::from_millis(10);
        assert_eq!(burst, vec![secs(1), secs(2), secs(3)]);
        // Once the link has drained, a message waits only for itself.
        let later = now + Duration::from_secs(10);
        assert_eq!(first_delay(queue.transmit(&profile, later, 125_000, Delivery::BestEffort, &mut rng)), secs(1));
    }

    #[test]
    fn an_unlimited_link_never_queues() {
        let profile =
            LinkProfile { latency: LatencyDistribution::Fixed(Duration::from_millis(10)), ..LinkProfile::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut queue = LinkQueue::default();
        for _ in 0..3 {
            let fate = queue.transmit(&profile, Duration::from_secs(1), 1 << 20, Delivery::Reliable, &mut rng);
            assert_eq!(first_delay(fate), Duration::from_millis(10));
        }
        assert_eq!(queue, LinkQueue::default());
    }
}
