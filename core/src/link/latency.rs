//! A link's one-way latency distribution.

use super::draw::unit;
use rand_chacha::rand_core::RngCore;
use std::time::Duration;

/// The one-way latency of a link, before jitter and reordering. Durations cannot be negative,
/// so only the normal distribution needs clamping (at zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyDistribution {
    /// Always this.
    Fixed(Duration),
    /// Uniform between `min` and `max` (in either order).
    Uniform {
        /// One end.
        min: Duration,
        /// The other end.
        max: Duration,
    },
    /// Normal, clamped at zero.
    Normal {
        /// The mean.
        mean: Duration,
        /// The standard deviation.
        std_dev: Duration,
    },
}

/// Milliseconds as `f64`: the model samples in milliseconds and rounds to the microsecond once,
/// at the end, so a profile written in whole (or decimal) milliseconds converts exactly.
pub(super) fn millis(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1e6
}

impl LatencyDistribution {
    /// A draw, in milliseconds, never negative. Fixed draws nothing, uniform draws once and
    /// normal twice (Box–Muller): the draw order is part of a seed's trace.
    pub(super) fn sample_millis<R: RngCore + ?Sized>(self, rng: &mut R) -> f64 {
        match self {
            Self::Fixed(latency) => millis(latency),
            Self::Uniform { min, max } => {
                let (low, high) = (millis(min), millis(max));
                low + (high - low) * unit(rng)
            }
            Self::Normal { mean, std_dev } => {
                let u1 = unit(rng).max(f64::MIN_POSITIVE);
                let u2 = unit(rng);
                millis(mean) + millis(std_dev) * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            }
        }
        .max(0.0)
    }

    /// The mean, in milliseconds (the normal's before clamping): the scale of reordering.
    pub(super) fn mean_millis(self) -> f64 {
        match self {
            Self::Fixed(latency) => millis(latency),
            Self::Uniform { min, max } => (millis(min) + millis(max)) / 2.0,
            Self::Normal { mean, .. } => millis(mean),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn fixed_is_exact_and_draws_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut untouched = rng.clone();
        assert_eq!(LatencyDistribution::Fixed(Duration::from_micros(12_500)).sample_millis(&mut rng), 12.5);
        assert_eq!(rng.next_u64(), untouched.next_u64());
    }

    #[test]
    fn uniform_stays_within_its_bounds_in_either_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for latency in [
            LatencyDistribution::Uniform { min: MS(10), max: MS(50) },
            LatencyDistribution::Uniform { min: MS(50), max: MS(10) },
        ] {
            let draws: Vec<f64> = (0..5_000).map(|_| latency.sample_millis(&mut rng)).collect();
            assert!(draws.iter().all(|ms| (10.0..=50.0).contains(ms)));
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            assert!((29.0..31.0).contains(&mean), "{mean}");
            assert_eq!(latency.mean_millis(), 30.0);
        }
    }

    #[test]
    fn normal_has_its_mean_and_spread_and_never_goes_negative() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let latency = LatencyDistribution::Normal { mean: MS(30), std_dev: MS(10) };
        let draws: Vec<f64> = (0..20_000).map(|_| latency.sample_millis(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance = draws.iter().map(|ms| (ms - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((29.5..30.5).contains(&mean), "{mean}");
        assert!((9.5..10.5).contains(&variance.sqrt()), "{}", variance.sqrt());
        let wide = LatencyDistribution::Normal { mean: MS(1), std_dev: MS(100) };
        assert!((0..5_000).all(|_| wide.sample_millis(&mut rng) >= 0.0));
    }
}
