//! The run's figures: convergence and propagation percentiles, traffic per delta, from what
//! the recorder saw and when the network was cut.

use crate::network::NetStats;
use crate::outcome::{Figures, Percentiles};
use crate::record::SharedRecorder;
use std::time::Duration;

fn percentiles(mut values: Vec<Duration>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_unstable();
    let at = |q: f64| values[((values.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1_000.0;
    Percentiles { p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1.0), count: values.len() }
}

/// The spans of simulated time during which some link was cut or a node clogged.
#[derive(Debug, Clone, Default)]
pub(crate) struct CutWindows {
    closed: Vec<(Duration, Duration)>,
    open_since: Option<Duration>,
}

impl CutWindows {
    /// Notes the network's state at `now` (after a fault was applied).
    pub(crate) fn observe(&mut self, now: Duration, cut: bool) {
        match (cut, self.open_since) {
            (true, None) => self.open_since = Some(now),
            (false, Some(since)) => {
                self.closed.push((since, now));
                self.open_since = None;
            }
            _ => {}
        }
    }

    fn contains(&self, at: Duration) -> bool {
        self.open_since.is_some_and(|since| at >= since) || self.closed.iter().any(|(from, to)| at >= *from && at < *to)
    }
}

/// What the world hands over at the end of a run to compute its figures.
pub(crate) struct RunTotals<'a> {
    pub(crate) recorder: &'a SharedRecorder,
    pub(crate) cuts: &'a CutWindows,
    pub(crate) network: &'a NetStats,
    pub(crate) per_node_convergence: &'a [Duration],
    pub(crate) converged_at: Option<Duration>,
    pub(crate) writes: usize,
    pub(crate) simulated: Duration,
    pub(crate) live_nodes: usize,
}

pub(crate) fn figures(totals: RunTotals<'_>) -> Figures {
    let RunTotals { recorder, cuts, network, per_node_convergence, converged_at, writes, simulated, live_nodes } =
        totals;
    let recorder = recorder.lock();
    let mut all = Vec::new();
    let (mut connected, mut cut) = (Vec::new(), Vec::new());
    let mut each = Vec::new();
    for (id, arrivals) in &recorder.arrivals {
        each.extend(arrivals.iter().map(|(_, delay)| *delay));
        let nodes: std::collections::BTreeSet<usize> = arrivals.iter().map(|(node, _)| *node).collect();
        if nodes.len() + 1 >= live_nodes {
            let slowest = arrivals.iter().map(|(_, delay)| *delay).max().unwrap_or_default();
            all.push(slowest);
            let written_at = recorder.authored.get(id).copied().unwrap_or_default();
            if cuts.contains(written_at) {
                cut.push(slowest);
            } else {
                connected.push(slowest);
            }
        }
    }
    let deltas = recorder.authored.len().max(1);
    Figures {
        convergence: percentiles(per_node_convergence.to_vec()),
        converged_after_ms: converged_at.map(|at| at.as_secs_f64() * 1_000.0),
        propagation_all: percentiles(all),
        propagation_connected: percentiles(connected),
        propagation_cut: percentiles(cut),
        propagation_each: percentiles(each),
        writes_acknowledged: writes,
        deltas_authored: recorder.authored.len(),
        network: network.clone(),
        messages_per_delta: network.messages as f64 / deltas as f64,
        bytes_per_delta: network.bytes as f64 / deltas as f64,
        max_pending: recorder.samples.iter().map(|sample| sample.max_pending).max().unwrap_or(0),
        trace_events: recorder.events,
        simulated_s: simulated.as_secs_f64(),
        wall_s: 0.0,
        live_nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_windows_cover_from_the_cut_to_the_heal_and_stay_open_until_healed() {
        let secs = Duration::from_secs;
        let mut cuts = CutWindows::default();
        cuts.observe(secs(10), true);
        cuts.observe(secs(15), true);
        cuts.observe(secs(20), false);
        cuts.observe(secs(30), true);
        assert!(!cuts.contains(secs(9)));
        assert!(cuts.contains(secs(10)) && cuts.contains(secs(19)));
        assert!(!cuts.contains(secs(20)) && !cuts.contains(secs(29)));
        assert!(cuts.contains(secs(45)), "a cut not yet healed is still open");
    }

    #[test]
    fn percentiles_pick_ranks_from_sorted_values() {
        let values = (1..=100).map(Duration::from_millis).collect();
        let figures = percentiles(values);
        assert_eq!((figures.p50_ms.round(), figures.p99_ms, figures.max_ms, figures.count), (51.0, 99.0, 100.0, 100));
    }
}
