//! Swarm testing: each seed draws its own fault mix and intensities (FoundationDB and
//! TigerBeetle style), so a sweep explores combinations no hand-written schedule lists. The
//! draws themselves sit with the faults, in `faults/draw.rs`.

use crate::faults::draw_schedule;
use crate::scenario::Scenario;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `scenario` with its faults replaced by a random schedule drawn from `seed`.
pub fn swarm(scenario: &Scenario, seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0073_7761_726d);
    let mut out = scenario.clone();
    out.faults = draw_schedule(scenario, &mut rng);
    out.faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out.name = format!("{}-swarm-{seed}", scenario.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::TimedFault;

    #[test]
    fn each_seed_draws_a_valid_schedule_of_its_own() {
        let base: Scenario = toml::from_str(
            r#"
            name = "base"
            nodes = 5
            duration_s = 30
            liveness_s = 10
            [workload]
            app = "kv-store"
            calls_per_node_per_s = 1
            "#,
        )
        .unwrap();
        let schedules: Vec<Vec<TimedFault>> = (0..20).map(|seed| swarm(&base, seed).faults).collect();
        for seed in 0..20 {
            swarm(&base, seed).validate().unwrap();
            assert_eq!(swarm(&base, seed), swarm(&base, seed), "same seed, same schedule");
        }
        let distinct: std::collections::BTreeSet<String> =
            schedules.iter().map(|faults| format!("{faults:?}")).collect();
        assert!(distinct.len() > 10, "seeds draw different mixes");
    }
}
