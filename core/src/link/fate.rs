//! What happens to one message on one link.

use super::draw::unit;
use super::latency::millis;
use super::LinkProfile;
use rand_chacha::rand_core::RngCore;
use std::time::Duration;

/// The wait before a reliable stream resends a lost message; the n-th loss in a row waits n
/// times this (a simple backoff).
pub const RETRANSMIT_DELAY: Duration = Duration::from_millis(200);
/// Losses in a row after which a reliable stream gives up: the message is lost, and the
/// requester learns of it only through its own timeout, as over a real stream.
pub const MAX_RETRANSMITS: u32 = 6;
/// A reordered message is held back by up to this many mean latencies.
pub const REORDER_HOLD_FACTOR: f64 = 4.0;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Like gossip: a loss loses it.
    BestEffort,
    /// Like a request or response on a stream: a loss delays it by a retransmission, and only
    /// more than [`MAX_RETRANSMITS`] losses in a row lose it.
    Reliable,
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Never arrives.
    Lost,
    /// Arrives `delay` after it was sent, and again after `duplicate` if the link duplicated it.
    Arrives {
        /// The first copy's delay.
        delay: Duration,
        /// The second copy's delay, if there is one (it may arrive first).
        duplicate: Option<Duration>,
    },
}

impl Fate {
    /// Every copy's delay: none if lost, two if duplicated.
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        let (first, second) = match self {
            Self::Lost => (None, None),
            Self::Arrives { delay, duplicate } => (Some(delay), duplicate),
        };
        first.into_iter().chain(second)
    }
}

impl LinkProfile {
    /// Decides a message's fate. `serialization` is the time the link needs to put it on the
    /// wire, any queue ahead of it included (see [`LinkQueue`](super::LinkQueue)); it delays
    /// every copy. Delays are rounded down to the microsecond.
    ///
    /// The draws, in order (a seed's trace depends on it, and the simulator's trace hashes
    /// with it): one per loss decision (a reliable stream draws again after each loss); then
    /// for the first copy the latency (see [`LatencyDistribution`](super::LatencyDistribution)),
    /// the jitter, the reorder decision and, if reordered, the hold-back; then the duplicate
    /// decision, and if duplicated the same again for the second copy.
    pub fn fate<R: RngCore + ?Sized>(&self, delivery: Delivery, serialization: Duration, rng: &mut R) -> Fate {
        let mut retransmitting = Duration::ZERO;
        match delivery {
            Delivery::Reliable => {
                let mut losses = 0;
                while self.loss.happens(rng) {
                    losses += 1;
                    if losses > MAX_RETRANSMITS {
                        return Fate::Lost;
                    }
                    retransmitting += RETRANSMIT_DELAY * losses;
                }
            }
            Delivery::BestEffort => {
                if self.loss.happens(rng) {
                    return Fate::Lost;
                }
            }
        }
        let before_flight = serialization + retransmitting;
        let delay = self.flight(before_flight, rng);
        let duplicate = self.duplicate.happens(rng).then(|| self.flight(before_flight, rng));
        Fate::Arrives { delay, duplicate }
    }

    /// One copy's delay: `before_flight` plus latency, jitter and any reordering hold-back.
    fn flight<R: RngCore + ?Sized>(&self, before_flight: Duration, rng: &mut R) -> Duration {
        let mut ms = self.latency.sample_millis(rng) + millis(self.jitter) * unit(rng);
        if self.reorder.happens(rng) {
            ms += REORDER_HOLD_FACTOR * self.latency.mean_millis() * unit(rng);
        }
        before_flight + Duration::from_micros((ms * 1_000.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{LatencyDistribution, Probability};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn probability(value: f64) -> Probability {
        Probability::new(value).unwrap()
    }

    fn fixed(ms: u64) -> LinkProfile {
        LinkProfile { latency: LatencyDistribution::Fixed(Duration::from_millis(ms)), ..LinkProfile::default() }
    }

    #[test]
    fn loss_loses_best_effort_messages_at_its_rate() {
        let profile = LinkProfile { loss: probability(0.3), ..fixed(10) };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let lost =
            (0..10_000).filter(|_| profile.fate(Delivery::BestEffort, Duration::ZERO, &mut rng) == Fate::Lost).count();
        assert!((2_800..3_200).contains(&lost), "{lost}");
    }

    #[test]
    fn a_reliable_stream_retransmits_with_backoff_and_gives_up_after_max_retransmits() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let half = LinkProfile { loss: probability(0.5), ..fixed(10) };
        let mut lost = 0;
        for _ in 0..10_000 {
            match half.fate(Delivery::Reliable, Duration::ZERO, &mut rng) {
                Fate::Lost => lost += 1,
                Fate::Arrives { delay, .. } => {
                    // 10 ms of flight plus 200 ms × (1 + 2 + … + n) for n losses in a row.
                    let waited = delay - Duration::from_millis(10);
                    let triangular = (0..=MAX_RETRANSMITS).map(|n| RETRANSMIT_DELAY * (n * (n + 1) / 2));
                    assert!(triangular.clone().any(|expected| expected == waited), "{waited:?}");
                }
            }
        }
        // Seven losses in a row: 0.5^7 ≈ 0.8 %.
        assert!((40..130).contains(&lost), "{lost}");
        let always = LinkProfile { loss: Probability::ONE, ..fixed(10) };
        assert_eq!(always.fate(Delivery::Reliable, Duration::ZERO, &mut rng), Fate::Lost);
        let never = fixed(10);
        let arrives = Fate::Arrives { delay: Duration::from_millis(10), duplicate: None };
        assert_eq!(never.fate(Delivery::Reliable, Duration::ZERO, &mut rng), arrives);
    }

    #[test]
    fn duplication_sends_a_second_copy_at_its_rate() {
        let profile = LinkProfile { duplicate: probability(0.2), ..LinkProfile::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut copies = [0usize; 3];
        for _ in 0..10_000 {
            let fate = profile.fate(Delivery::BestEffort, Duration::ZERO, &mut rng);
            assert!(fate
                .delays()
                .all(|delay| (Duration::from_millis(10)..=Duration::from_millis(50)).contains(&delay)));
            copies[fate.delays().count()] += 1;
        }
        assert_eq!(copies[0], 0, "nothing is lost without loss");
        assert!((1_800..2_200).contains(&copies[2]), "{copies:?}");
        assert_eq!(Fate::Lost.delays().count(), 0);
    }

    #[test]
    fn jitter_and_reordering_add_bounded_delay() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let jittery = LinkProfile { jitter: Duration::from_millis(5), ..fixed(10) };
        let delays: Vec<Duration> =
            (0..2_000).flat_map(|_| jittery.fate(Delivery::BestEffort, Duration::ZERO, &mut rng).delays()).collect();
        assert!(delays.iter().all(|delay| (Duration::from_millis(10)..Duration::from_millis(15)).contains(delay)));
        assert!(delays.iter().any(|delay| *delay > Duration::from_millis(12)));
        let reordering = LinkProfile { reorder: Probability::ONE, ..fixed(10) };
        let delays: Vec<Duration> =
            (0..2_000).flat_map(|_| reordering.fate(Delivery::BestEffort, Duration::ZERO, &mut rng).delays()).collect();
        // Held back by up to 4 × 10 ms.
        assert!(delays.iter().all(|delay| (Duration::from_millis(10)..Duration::from_millis(50)).contains(delay)));
        assert!(delays.iter().any(|delay| *delay > Duration::from_millis(40)));
    }

    #[test]
    fn serialization_delays_every_copy() {
        let profile = LinkProfile { duplicate: Probability::ONE, ..fixed(10) };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let fate = profile.fate(Delivery::BestEffort, Duration::from_millis(7), &mut rng);
        let expected = Some(Duration::from_millis(17));
        assert_eq!(fate, Fate::Arrives { delay: Duration::from_millis(17), duplicate: expected });
    }

    #[test]
    fn the_same_seed_gives_the_same_fates() {
        let profile = LinkProfile {
            latency: LatencyDistribution::Normal {
                mean: Duration::from_millis(30),
                std_dev: Duration::from_millis(10),
            },
            jitter: Duration::from_millis(10),
            loss: probability(0.3),
            duplicate: probability(0.1),
            reorder: probability(0.2),
            ..LinkProfile::default()
        };
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..500)
                .map(|i| {
                    profile.fate(
                        if i % 2 == 0 { Delivery::Reliable } else { Delivery::BestEffort },
                        Duration::ZERO,
                        &mut rng,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(6), run(6));
        assert_ne!(run(6), run(7));
    }
}
