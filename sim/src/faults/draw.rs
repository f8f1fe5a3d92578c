//! How swarm mode draws faults: each seed its own mix and intensities. The draws happen in a
//! fixed order from one RNG, so a seed always draws the same schedule: add new kinds at the
//! end, or every seed's schedule changes.

use super::{FaultKind, Groups, TimedFault};
use crate::scenario::Scenario;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use rhizome_core::link::{unit, Probability};

/// A random fault schedule for `scenario`, unsorted. Faults that come in pairs (partition and
/// heal, crash and restart, clog and unclog, pause and resume, loss and its old value) are
/// undone within 80 % of the duration; a skew is lifted by the liveness phase, and an added
/// node stays.
pub fn draw_schedule(scenario: &Scenario, rng: &mut ChaCha8Rng) -> Vec<TimedFault> {
    let mut faults = Vec::new();
    let window = scenario.duration_s * 0.8;
    let nodes = scenario.nodes;
    let pick = |rng: &mut ChaCha8Rng| (rng.next_u64() % nodes as u64) as usize;
    let at = |rng: &mut ChaCha8Rng, base: f64, spread: f64| {
        let length = base + unit(rng) * spread;
        let start = unit(rng) * (window - length).max(0.0);
        (start, (start + length).min(window))
    };
    let mut push = |at_s: f64, kind: FaultKind| faults.push(TimedFault::new(at_s, kind));
    if unit(rng) < 0.6 && nodes >= 2 {
        for _ in 0..1 + rng.next_u64() % 2 {
            let (from, to) = at(rng, 2.0, 8.0);
            let groups = 2 + (rng.next_u64() % 2) as usize;
            push(from, FaultKind::Partition { groups: Groups::Count(groups.min(nodes)) });
            push(to, FaultKind::Heal {});
        }
    }
    if unit(rng) < 0.5 {
        for _ in 0..1 + rng.next_u64() % 3 {
            let node = pick(rng);
            let (from, to) = at(rng, 1.0, 4.0);
            push(from, FaultKind::Crash { node, tear: unit(rng) < 0.5 });
            push(to, FaultKind::Restart { node });
        }
    }
    if unit(rng) < 0.4 {
        let node = pick(rng);
        let (from, to) = at(rng, 1.0, 5.0);
        push(from, FaultKind::Clog { node });
        push(to, FaultKind::Unclog { node });
    }
    if unit(rng) < 0.4 {
        let (from, to) = at(rng, 2.0, 8.0);
        let loss = Probability::new((unit(rng) * 0.3 * 100.0).round() / 100.0).expect("0..=0.3 is a probability");
        push(from, FaultKind::SetLoss { loss });
        push(to, FaultKind::SetLoss { loss: scenario.profile(crate::scenario::DEFAULT_PROFILE).loss });
    }
    if unit(rng) < 0.4 {
        let node = pick(rng);
        let ms = (unit(rng) * 6_000.0) as i64 - 3_000;
        push(unit(rng) * window, FaultKind::Skew { node, ms });
    }
    if unit(rng) < 0.3 {
        let node = pick(rng);
        let (from, to) = at(rng, 0.5, 3.0);
        push(from, FaultKind::Pause { node });
        push(to, FaultKind::Resume { node });
    }
    // Drawn after the others, so the schedules seeds drew before these two kinds existed here
    // keep every fault they had.
    if unit(rng) < 0.3 && nodes >= 2 {
        let sender = pick(rng);
        let receiver = (sender + 1 + (rng.next_u64() % (nodes as u64 - 1)) as usize) % nodes;
        let (from, to) = at(rng, 1.0, 5.0);
        push(from, FaultKind::PartitionOneWay { from: vec![sender], to: vec![receiver] });
        push(to, FaultKind::Heal {});
    }
    if unit(rng) < 0.2 {
        push(unit(rng) * window, FaultKind::AddNode {});
    }
    faults
}
