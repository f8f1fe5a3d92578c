//! What a run produced: check verdicts, figures, samples and the trace hash. A leaf module:
//! the world fills these in, the checks and the figures produce parts of them and the reports
//! read them, so none of those needs to import another.

use crate::network::NetStats;
use crate::record::Sample;

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Check results.
    pub checks: Vec<CheckResult>,
    /// Figures.
    pub figures: Figures,
    /// Samples over time.
    pub samples: Vec<Sample>,
    /// (seconds, label) of every fault applied.
    pub faults: Vec<(f64, String)>,
    /// The trace hash.
    pub trace_hash: String,
    /// The readable trace, when asked for.
    pub trace_lines: Vec<String>,
}

impl RunOutcome {
    /// An outcome for a run that could not even be set up (or panicked): one failed check.
    pub fn setup_failure(check: &str, error: String) -> Self {
        Self {
            checks: vec![CheckResult::new(check, false, error)],
            figures: Figures::default(),
            samples: Vec::new(),
            faults: Vec::new(),
            trace_hash: String::new(),
            trace_lines: Vec::new(),
        }
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    /// The check.
    pub name: String,
    /// Passed?
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

impl CheckResult {
    /// A verdict.
    pub fn new(name: &str, passed: bool, detail: String) -> Self {
        Self { name: name.to_owned(), passed, detail }
    }
}

/// p50, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Samples.
    pub count: usize,
}

/// The run's figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Figures {
    /// Per-node time to its final state in the liveness phase.
    pub convergence: Percentiles,
    /// When all live nodes agreed, after the liveness phase began (ms).
    pub converged_after_ms: Option<f64>,
    /// Per delta: time until every node that applied it had (all-node propagation), for deltas
    /// that reached every live node.
    pub propagation_all: Percentiles,
    /// [`Self::propagation_all`] for deltas written while the network was whole.
    pub propagation_connected: Percentiles,
    /// [`Self::propagation_all`] for deltas written while some link was cut: they wait for the
    /// heal, so they measure the heal, not gossip.
    pub propagation_cut: Percentiles,
    /// Per (delta, node): time from authoring to application there.
    pub propagation_each: Percentiles,
    /// Acknowledged writes.
    pub writes_acknowledged: usize,
    /// Deltas authored (writes and handler deltas).
    pub deltas_authored: usize,
    /// Network traffic.
    pub network: NetStats,
    /// Messages per authored delta.
    pub messages_per_delta: f64,
    /// Bytes per authored delta.
    pub bytes_per_delta: f64,
    /// Largest pending queue seen.
    pub max_pending: usize,
    /// Core inputs and outputs traced.
    pub trace_events: u64,
    /// Simulated seconds.
    pub simulated_s: f64,
    /// Wall seconds (filled in by the caller).
    pub wall_s: f64,
    /// Live nodes at the end.
    pub live_nodes: usize,
}
