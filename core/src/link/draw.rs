//! The one uniform draw every link decision is made of.

use rand_chacha::rand_core::RngCore;

/// A uniform draw in [0, 1) from the top 53 bits of one `u64`: every value is an exact `f64`,
/// and each call consumes exactly one `u64`, so the draw order (and with it a seed's trace)
/// depends only on which decisions are made, never on the values drawn. Public so a harness's
/// own choices (a workload's arrivals, a fault schedule) draw the same way.
pub fn unit<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn draws_stay_in_the_half_open_unit_interval_and_spread_evenly() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let draws: Vec<f64> = (0..10_000).map(|_| unit(&mut rng)).collect();
        assert!(draws.iter().all(|draw| (0.0..1.0).contains(draw)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.49..0.51).contains(&mean), "{mean}");
    }

    #[test]
    fn the_same_seed_draws_the_same_values() {
        let mut a = ChaCha8Rng::seed_from_u64(9);
        let mut b = ChaCha8Rng::seed_from_u64(9);
        assert_eq!((0..100).map(|_| unit(&mut a).to_bits()).collect::<Vec<_>>(), {
            (0..100).map(|_| unit(&mut b).to_bits()).collect::<Vec<_>>()
        });
    }
}
