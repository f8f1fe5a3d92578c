//! Sampling the link model: latency, jitter, loss, duplication, reordering and bandwidth.

use crate::scenario::{Latency, LinkProfile};
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// A retransmission on a reliable stream after a loss.
const RETRANSMIT_DELAY: Duration = Duration::from_millis(200);
/// Losses in a row after which a reliable stream gives up (the request then times out).
const MAX_RETRANSMITS: u32 = 6;

/// A uniform draw in [0, 1).
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn sample_latency_ms(latency: Latency, rng: &mut ChaCha8Rng) -> f64 {
    match latency {
        Latency::Fixed(ms) => ms,
        Latency::Uniform([low, high]) => low + (high - low) * unit(rng),
        Latency::Normal([mean, deviation]) => {
            // Box–Muller.
            let u1 = unit(rng).max(f64::MIN_POSITIVE);
            let u2 = unit(rng);
            mean + deviation * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }
    .max(0.0)
}

fn mean_latency_ms(latency: Latency) -> f64 {
    match latency {
        Latency::Fixed(ms) => ms,
        Latency::Uniform([low, high]) => (low + high) / 2.0,
        Latency::Normal([mean, _]) => mean,
    }
}

/// What happens to one message on one link.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fate {
    /// Lost.
    Lost,
    /// Arrives after each of these delays (two for a duplicate).
    Arrives(Vec<Duration>),
}

/// Decides a message's fate. `serialization` is the time the link needs to put it on the wire
/// (bandwidth), already including any queue ahead of it.
pub(crate) fn fate(profile: &LinkProfile, reliable: bool, serialization: Duration, rng: &mut ChaCha8Rng) -> Fate {
    let mut extra = Duration::ZERO;
    if reliable {
        let mut losses = 0;
        while unit(rng) < profile.loss {
            losses += 1;
            if losses > MAX_RETRANSMITS {
                return Fate::Lost;
            }
            extra += RETRANSMIT_DELAY * losses;
        }
    } else if unit(rng) < profile.loss {
        return Fate::Lost;
    }
    let one = |rng: &mut ChaCha8Rng| {
        let mut ms = sample_latency_ms(profile.latency_ms, rng) + profile.jitter_ms * unit(rng);
        if unit(rng) < profile.reorder {
            ms += 4.0 * mean_latency_ms(profile.latency_ms) * unit(rng);
        }
        serialization + extra + Duration::from_micros((ms * 1_000.0) as u64)
    };
    let mut arrivals = vec![one(rng)];
    if unit(rng) < profile.duplicate {
        arrivals.push(one(rng));
    }
    Fate::Arrives(arrivals)
}

/// Time to serialize `bytes` on a link of `bandwidth_kbps` (zero when unlimited).
pub(crate) fn serialization_time(bytes: usize, bandwidth_kbps: u64) -> Duration {
    if bandwidth_kbps == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros((bytes as u64 * 8 * 1_000) / bandwidth_kbps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn loss_drops_gossip_but_only_delays_reliable_messages() {
        let profile = LinkProfile { loss: 0.5, ..LinkProfile::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let trials = 10_000;
        let lost = (0..trials).filter(|_| fate(&profile, false, Duration::ZERO, &mut rng) == Fate::Lost).count();
        assert!((4_500..5_500).contains(&lost), "{lost}");
        let lost_reliable =
            (0..trials).filter(|_| fate(&profile, true, Duration::ZERO, &mut rng) == Fate::Lost).count();
        assert!(lost_reliable < 200, "a stream gives up only after many losses in a row: {lost_reliable}");
    }

    #[test]
    fn latency_stays_in_its_distribution_and_bandwidth_adds_time() {
        let profile = LinkProfile::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..1_000 {
            let Fate::Arrives(delays) = fate(&profile, false, Duration::ZERO, &mut rng) else { panic!() };
            assert!(delays[0] >= Duration::from_millis(10) && delays[0] <= Duration::from_millis(50));
        }
        assert_eq!(serialization_time(125_000, 1_000), Duration::from_secs(1));
        assert_eq!(serialization_time(125_000, 0), Duration::ZERO);
    }
}
