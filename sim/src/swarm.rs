//! Swarm testing: each seed draws its own fault mix and intensities (FoundationDB and
//! TigerBeetle style), so a sweep explores combinations no hand-written schedule lists.

use crate::scenario::{Fault, Groups, Scenario};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `scenario` with its faults replaced by a random schedule drawn from `seed`. Every fault is
/// undone before the end of the fault window, and a crashed node is restarted.
pub fn swarm(scenario: &Scenario, seed: u64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0073_7761_726d);
    let mut out = scenario.clone();
    out.faults.clear();
    let window = scenario.duration_s * 0.8;
    let nodes = scenario.nodes;
    let pick = |rng: &mut ChaCha8Rng| (rng.next_u64() % nodes as u64) as usize;
    let at = |rng: &mut ChaCha8Rng, base: f64, spread: f64| {
        let length = base + unit(rng) * spread;
        let start = unit(rng) * (window - length).max(0.0);
        (start, (start + length).min(window))
    };
    if unit(&mut rng) < 0.6 && nodes >= 2 {
        for _ in 0..1 + rng.next_u64() % 2 {
            let (from, to) = at(&mut rng, 2.0, 8.0);
            let groups = 2 + (rng.next_u64() % 2) as usize;
            out.faults.push(Fault::Partition { at_s: from, groups: Groups::Count(groups.min(nodes)) });
            out.faults.push(Fault::Heal { at_s: to });
        }
    }
    if unit(&mut rng) < 0.5 {
        for _ in 0..1 + rng.next_u64() % 3 {
            let node = pick(&mut rng);
            let (from, to) = at(&mut rng, 1.0, 4.0);
            out.faults.push(Fault::Crash { at_s: from, node, tear: unit(&mut rng) < 0.5 });
            out.faults.push(Fault::Restart { at_s: to, node });
        }
    }
    if unit(&mut rng) < 0.4 {
        let node = pick(&mut rng);
        let (from, to) = at(&mut rng, 1.0, 5.0);
        out.faults.push(Fault::Clog { at_s: from, node });
        out.faults.push(Fault::Unclog { at_s: to, node });
    }
    if unit(&mut rng) < 0.4 {
        let (from, to) = at(&mut rng, 2.0, 8.0);
        out.faults.push(Fault::SetLoss { at_s: from, loss: (unit(&mut rng) * 0.3 * 100.0).round() / 100.0 });
        out.faults.push(Fault::SetLoss { at_s: to, loss: scenario.profile("default").loss });
    }
    if unit(&mut rng) < 0.4 {
        let node = pick(&mut rng);
        let ms = (unit(&mut rng) * 6_000.0) as i64 - 3_000;
        out.faults.push(Fault::Skew { at_s: unit(&mut rng) * window, node, ms });
    }
    if unit(&mut rng) < 0.3 {
        let node = pick(&mut rng);
        let (from, to) = at(&mut rng, 0.5, 3.0);
        out.faults.push(Fault::Pause { at_s: from, node });
        out.faults.push(Fault::Resume { at_s: to, node });
    }
    out.faults.sort_by(|a, b| a.at_s().total_cmp(&b.at_s()));
    out.name = format!("{}-swarm-{seed}", scenario.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let schedules: Vec<Vec<Fault>> = (0..20).map(|seed| swarm(&base, seed).faults).collect();
        for seed in 0..20 {
            swarm(&base, seed).validate().unwrap();
            assert_eq!(swarm(&base, seed), swarm(&base, seed), "same seed, same schedule");
        }
        let distinct: std::collections::BTreeSet<String> =
            schedules.iter().map(|faults| format!("{faults:?}")).collect();
        assert!(distinct.len() > 10, "seeds draw different mixes");
    }
}
