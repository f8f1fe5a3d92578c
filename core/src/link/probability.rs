//! A probability, validated once where it is read.

use super::draw::unit;
use rand_chacha::rand_core::RngCore;
use std::fmt;

/// A probability in 0..=1. Built only through [`Probability::new`] (or `TryFrom<f64>`), so a
/// profile can never hold 1.5 or NaN: a bad value is an error where it is parsed, naming it,
/// instead of a link that silently always (or never) loses.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Probability(f64);

/// A value outside 0..=1 (or NaN) offered as a [`Probability`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("a probability must be within 0..=1 (got {0})")]
pub struct ProbabilityError(pub f64);

impl Probability {
    /// Never.
    pub const ZERO: Self = Self(0.0);
    /// Always.
    pub const ONE: Self = Self(1.0);

    /// `value`, if it is within 0..=1.
    pub fn new(value: f64) -> Result<Self, ProbabilityError> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ProbabilityError(value))
        }
    }

    /// The value, in 0..=1.
    pub const fn get(self) -> f64 {
        self.0
    }

    /// Draws whether the event happens. It draws even at 0 and 1, so the RNG's position after
    /// a decision does not depend on the probability: changing one profile value then moves
    /// only the outcomes it governs, not every later draw.
    pub fn happens<R: RngCore + ?Sized>(self, rng: &mut R) -> bool {
        unit(rng) < self.0
    }
}

impl TryFrom<f64> for Probability {
    type Error = ProbabilityError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Probability> for f64 {
    fn from(probability: Probability) -> Self {
        probability.0
    }
}

/// Shown as the bare number (`0.02`), as it is written in a scenario file.
impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn values_outside_zero_to_one_are_refused_with_the_value() {
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let error = Probability::new(bad).unwrap_err();
            assert!(error.to_string().contains("within 0..=1"), "{error}");
            assert_eq!(error.0.to_bits(), bad.to_bits());
        }
        assert_eq!(Probability::try_from(1.5).unwrap_err().to_string(), "a probability must be within 0..=1 (got 1.5)");
        for good in [0.0, 0.02, 1.0] {
            assert_eq!(Probability::new(good).map(f64::from), Ok(good));
        }
        assert_eq!(Probability::new(0.02).unwrap().to_string(), "0.02");
    }

    #[test]
    fn an_event_happens_at_its_rate_and_the_bounds_are_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let quarter = Probability::new(0.25).unwrap();
        let hits = (0..20_000).filter(|_| quarter.happens(&mut rng)).count();
        assert!((4_700..5_300).contains(&hits), "{hits}");
        assert!((0..1_000).all(|_| !Probability::ZERO.happens(&mut rng)));
        assert!((0..1_000).all(|_| Probability::ONE.happens(&mut rng)));
    }

    #[test]
    fn every_decision_draws_once_whatever_the_probability() {
        let mut a = ChaCha8Rng::seed_from_u64(5);
        let mut b = ChaCha8Rng::seed_from_u64(5);
        Probability::ZERO.happens(&mut a);
        Probability::new(0.7).unwrap().happens(&mut b);
        assert_eq!(a.next_u64(), b.next_u64());
    }
}
