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
    pub fn setup_failure(check: CheckName, error: String) -> Self {
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

/// Which check a verdict is for. The name is a type, so a verdict cannot be filed under a
/// misspelt check; its text (in reports and JSON) is the one the reports always printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum CheckName {
    /// The world could be built (apps read, nodes started).
    #[serde(rename = "setup")]
    Setup,
    /// The run finished without a panic.
    #[serde(rename = "no panic")]
    NoPanic,
    /// Every node opened its database and committed.
    #[serde(rename = "storage")]
    Storage,
    /// Live nodes reached equal roots and heads within the liveness bound.
    #[serde(rename = "convergence")]
    Convergence,
    /// Every acknowledged write is on every live node.
    #[serde(rename = "no lost writes")]
    NoLostWrites,
    /// Every event handler ran exactly once per node.
    #[serde(rename = "handlers exactly once")]
    HandlersExactlyOnce,
    /// Queues and buffers stayed within their limits.
    #[serde(rename = "bounded")]
    Bounded,
    /// The admin made every scheduled membership change.
    #[serde(rename = "membership")]
    Membership,
    /// Outsiders hold no key and open no payload.
    #[serde(rename = "outsiders read nothing")]
    OutsidersReadNothing,
    /// A removed member opens nothing written after its removal.
    #[serde(rename = "removed read nothing")]
    RemovedReadNothing,
    /// Every forged delta was refused by every honest node.
    #[serde(rename = "forgeries refused")]
    ForgeriesRefused,
    /// No honest node adopted a byzantine member's fake head or forged snapshot.
    #[serde(rename = "forced snapshots refused")]
    ForcedSnapshotsRefused,
    /// Invited nodes refused a forged and a replayed invitation, and joined by the real one.
    #[serde(rename = "invitations refused")]
    InvitationsRefused,
}

impl CheckName {
    /// The name as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::NoPanic => "no panic",
            Self::Storage => "storage",
            Self::Convergence => "convergence",
            Self::NoLostWrites => "no lost writes",
            Self::HandlersExactlyOnce => "handlers exactly once",
            Self::Bounded => "bounded",
            Self::Membership => "membership",
            Self::OutsidersReadNothing => "outsiders read nothing",
            Self::RemovedReadNothing => "removed read nothing",
            Self::ForgeriesRefused => "forgeries refused",
            Self::ForcedSnapshotsRefused => "forced snapshots refused",
            Self::InvitationsRefused => "invitations refused",
        }
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    /// The check.
    pub name: CheckName,
    /// Passed?
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

impl CheckResult {
    /// A verdict.
    pub fn new(name: CheckName, passed: bool, detail: String) -> Self {
        Self { name, passed, detail }
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [CheckName; 7] = [
        CheckName::Setup,
        CheckName::NoPanic,
        CheckName::Storage,
        CheckName::Convergence,
        CheckName::NoLostWrites,
        CheckName::HandlersExactlyOnce,
        CheckName::Bounded,
    ];

    #[test]
    fn a_check_serialises_as_the_name_reports_print() {
        for name in ALL {
            assert_eq!(serde_json::to_value(name).unwrap(), serde_json::Value::from(name.as_str()));
            assert_eq!(name.to_string(), name.as_str());
        }
        let names: std::collections::BTreeSet<_> = ALL.iter().map(|name| name.as_str()).collect();
        assert_eq!(names.len(), ALL.len(), "two checks share a name");
    }
}
