//! "bounded": every node's pending queue and snapshot buffer stay within their limits. The
//! pending queue is followed continuously: the core reports every delta that enters or leaves
//! it (`DeltaPending`, `PendingEvicted`, `PendingReleased`), and the node's observer
//! (`record::PendingTracker`) holds it to its limit on every output. The snapshot buffer has
//! no events, so it is judged on every status the simulator reads (each sample during the
//! fault phase, each poll of the liveness phase). The first breach is kept with its node and
//! time.

use crate::outcome::{CheckName, CheckResult};
use rhizome_core::Limits;

/// The largest queues seen so far, and the first that broke a limit.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueBounds {
    max_pending: usize,
    max_snapshot_buffer: usize,
    first_breach: Option<String>,
}

impl QueueBounds {
    /// Notes one node's queues at `t_s` simulated seconds.
    pub(crate) fn observe(&mut self, limits: &Limits, t_s: f64, node: usize, pending: usize, snapshot_buffer: usize) {
        self.max_pending = self.max_pending.max(pending);
        self.max_snapshot_buffer = self.max_snapshot_buffer.max(snapshot_buffer);
        if self.first_breach.is_some() {
            return;
        }
        if pending > limits.max_pending_deltas {
            self.first_breach = Some(format!(
                "n{node} held {pending} pending deltas at {t_s:.3} s (limit {})",
                limits.max_pending_deltas
            ));
        } else if snapshot_buffer > limits.max_snapshot_buffer_deltas {
            self.first_breach = Some(format!(
                "n{node} buffered {snapshot_buffer} deltas for a snapshot at {t_s:.3} s (limit {})",
                limits.max_snapshot_buffer_deltas
            ));
        }
    }

    /// Records a breach seen elsewhere (the observers' event-by-event pending check), unless
    /// an earlier one is already kept.
    pub(crate) fn note_breach(&mut self, breach: String) {
        self.first_breach.get_or_insert(breach);
    }

    /// The verdict.
    pub(crate) fn verdict(&self, limits: &Limits) -> CheckResult {
        let maxima = format!(
            "max pending {} (limit {}), max snapshot buffer {} (limit {})",
            self.max_pending, limits.max_pending_deltas, self.max_snapshot_buffer, limits.max_snapshot_buffer_deltas
        );
        match &self.first_breach {
            None => CheckResult::new(CheckName::Bounded, true, maxima),
            Some(breach) => CheckResult::new(CheckName::Bounded, false, format!("{breach}; {maxima}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breach_between_quiet_observations_fails_and_names_the_node() {
        let limits = Limits { max_pending_deltas: 10, max_snapshot_buffer_deltas: 5, ..Limits::default() };
        let mut bounds = QueueBounds::default();
        bounds.observe(&limits, 1.0, 0, 3, 0);
        bounds.observe(&limits, 1.2, 2, 11, 0);
        bounds.observe(&limits, 1.5, 2, 0, 0);
        let verdict = bounds.verdict(&limits);
        assert!(!verdict.passed);
        assert!(verdict.detail.starts_with("n2 held 11 pending deltas at 1.200 s"), "{}", verdict.detail);
        assert!(verdict.detail.contains("max pending 11 (limit 10)"), "{}", verdict.detail);
    }

    #[test]
    fn queues_within_their_limits_pass_with_the_maxima() {
        let limits = Limits { max_pending_deltas: 10, max_snapshot_buffer_deltas: 5, ..Limits::default() };
        let mut bounds = QueueBounds::default();
        bounds.observe(&limits, 1.0, 0, 10, 5);
        let verdict = bounds.verdict(&limits);
        assert!(verdict.passed, "{}", verdict.detail);
        assert_eq!(verdict.detail, "max pending 10 (limit 10), max snapshot buffer 5 (limit 5)");
    }
}
