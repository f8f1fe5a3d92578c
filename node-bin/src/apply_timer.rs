//! Delta apply latency, measured on the node loop through its [`Observer`] window.
//!
//! What it measures: for each delta from a peer, the wall-clock time from the moment the node
//! loop handed the core the input that carried it (a gossip message, a sync response) or that
//! unblocked it (the parent whose arrival cascaded it out of the pending queue) until the core
//! reported it applied. That covers decoding, signature and membership checks, the DAG and the
//! WASM merge; the commit that makes it durable comes after and is not included. Deltas this
//! node writes (calls, event handlers) enter the core outside any input and are not timed.

use crate::metrics::Metrics;
use rhizome_core::{Event, Input, Output, Timestamp};
use rhizome_node::Observer;
use std::sync::Arc;
use std::time::Instant;

/// Feeds `rhizome_delta_apply_seconds`.
#[derive(Debug)]
pub struct ApplyTimer {
    metrics: Arc<Metrics>,
    /// When the current input was handed to the core.
    input_started: Option<Instant>,
}

impl ApplyTimer {
    /// A timer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics, input_started: None }
    }
}

impl Observer for ApplyTimer {
    fn on_input(&mut self, _now: rhizome_core::Clocks, _input: &Input) {
        // The binary may read the wall clock; the node's own time may be skewed or virtual.
        self.input_started = Some(Instant::now());
    }

    fn on_output(&mut self, _now: Timestamp, output: &Output) {
        if let Output::Event(Event::DeltaApplied { local: false, .. }) = output {
            if let Some(started) = self.input_started {
                self.metrics.observe_delta_apply(started.elapsed());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhizome_core::{AuthorKey, ContextId, DeltaId, PeerId};

    fn applied(local: bool) -> Output {
        Output::Event(Event::DeltaApplied {
            context: ContextId::hash_of(b"c"),
            id: DeltaId::hash_of(b"d"),
            author: AuthorKey::from_bytes([1; 32]),
            local,
        })
    }

    fn count(metrics: &Metrics) -> String {
        let text = metrics.render(None, crate::metrics::Detail::PerContext);
        text.lines().find(|line| line.starts_with("rhizome_delta_apply_seconds_count")).unwrap_or_default().to_owned()
    }

    #[test]
    fn peer_deltas_applied_during_an_input_are_timed_and_local_ones_are_not() {
        let metrics = Arc::new(Metrics::new());
        let mut timer = ApplyTimer::new(metrics.clone());
        timer.on_output(Timestamp::ZERO, &applied(false));
        assert_eq!(count(&metrics), "rhizome_delta_apply_seconds_count 0", "nothing timed before any input");
        timer.on_input(
            rhizome_core::Clocks::new(Timestamp::ZERO, 0),
            &Input::PeerUp { peer: PeerId::from_bytes([2; 32]) },
        );
        timer.on_output(Timestamp::ZERO, &applied(false));
        timer.on_output(Timestamp::ZERO, &applied(false));
        timer.on_output(Timestamp::ZERO, &applied(true));
        assert_eq!(count(&metrics), "rhizome_delta_apply_seconds_count 2");
    }
}
