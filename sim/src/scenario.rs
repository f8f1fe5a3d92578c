//! Scenario files (`scenarios/*.toml`): nodes, links, workload, faults, checks, duration.
//! The format is documented in docs/SCENARIOS.md.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The largest world the simulator builds.
pub const MAX_NODES: usize = 1_000;

/// Most calls one arrival may make together.
pub const MAX_CALLS_PER_ARRIVAL: usize = 1_024;

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it exercises.
    #[serde(default)]
    pub description: String,
    /// Nodes at the start.
    pub nodes: usize,
    /// Seconds of workload and faults.
    pub duration_s: f64,
    /// Seconds, after the last fault and the last write, within which all live nodes must agree.
    pub liveness_s: f64,
    /// Gossip mesh.
    #[serde(default)]
    pub mesh: MeshConfig,
    /// Link profiles by name; `default` applies to every link without an override.
    #[serde(default)]
    pub profiles: BTreeMap<String, LinkProfile>,
    /// Links between groups that use another profile.
    #[serde(default)]
    pub links: Vec<LinkOverride>,
    /// The app and the calls.
    pub workload: Workload,
    /// The fault schedule.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Which checks run.
    #[serde(default)]
    pub checks: Checks,
    /// Node settings that differ from the defaults.
    #[serde(default)]
    pub node: NodeOverrides,
    /// Seeds that once found a bug: every sweep of this file runs them too, besides its range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regression_seeds: Vec<u64>,
}

/// The gossip mesh model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshConfig {
    /// Mesh peers per node.
    pub degree: usize,
    /// Message ids each node remembers to drop repeats.
    pub seen_cache_ids: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self { degree: 6, seen_cache_ids: 65_536 }
    }
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always this.
    Fixed(f64),
    /// Uniform in [min, max].
    Uniform([f64; 2]),
    /// Normal with [mean, standard deviation], clamped at zero.
    Normal([f64; 2]),
}

/// How one link behaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkProfile {
    /// One-way latency.
    pub latency_ms: Latency,
    /// Extra uniform delay in [0, jitter].
    #[serde(default)]
    pub jitter_ms: f64,
    /// Probability that a gossip message is lost (requests and responses ride a reliable
    /// stream: a loss costs a retransmission instead).
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message arrives twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a message is held back (up to 4× the base latency), so later ones
    /// overtake it.
    #[serde(default)]
    pub reorder: f64,
    /// Link bandwidth in kilobits per second; 0 means unlimited.
    #[serde(default)]
    pub bandwidth_kbps: u64,
}

impl Default for LinkProfile {
    fn default() -> Self {
        Self {
            latency_ms: Latency::Uniform([10.0, 50.0]),
            jitter_ms: 0.0,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            bandwidth_kbps: 0,
        }
    }
}

/// Links from one group of nodes to another that use a named profile (both directions unless
/// `one_way`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// Sending nodes.
    pub from: Vec<usize>,
    /// Receiving nodes.
    pub to: Vec<usize>,
    /// The profile's name.
    pub profile: String,
    /// Only from → to.
    #[serde(default)]
    pub one_way: bool,
}

/// The app every node runs and the calls made on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// `kv-store` (writes `set`) or `todo` (writes `add`, whose event handler writes on every
    /// other node).
    pub app: String,
    /// Writing calls per second per node (Poisson).
    pub calls_per_node_per_s: f64,
    /// Only these nodes write; empty means all.
    #[serde(default)]
    pub writers: Vec<usize>,
    /// Distinct keys.
    #[serde(default = "default_keys")]
    pub keys: u64,
    /// `uniform`, or `hot` (90 % of writes go to 10 % of the keys).
    #[serde(default = "default_distribution")]
    pub key_distribution: String,
    /// Writes stop at this second (default: the scenario's duration).
    #[serde(default)]
    pub stop_s: Option<f64>,
    /// Calls made together at each arrival: they reach the node at the same instant, so it
    /// runs them into one delta (up to its `max_calls_per_delta`).
    #[serde(default = "default_burst")]
    pub calls_per_arrival: usize,
}

fn default_burst() -> usize {
    1
}

fn default_keys() -> u64 {
    1_000
}

fn default_distribution() -> String {
    "uniform".to_owned()
}

/// Node groups for a partition: explicit lists, or a count of equal groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Groups {
    /// Split the nodes into this many groups of consecutive indices.
    Count(usize),
    /// These groups; nodes in none form one more group.
    Lists(Vec<Vec<usize>>),
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Cut every link between groups (connections drop: peers see each other go down).
    Partition {
        /// When.
        at_s: f64,
        /// The groups.
        groups: Groups,
    },
    /// Drop messages from `from` to `to` only (connections stay up).
    PartitionOneWay {
        /// When.
        at_s: f64,
        /// Senders.
        from: Vec<usize>,
        /// Receivers.
        to: Vec<usize>,
    },
    /// Restore every cut or one-way link.
    Heal {
        /// When.
        at_s: f64,
    },
    /// Silently drop everything to and from a node (no disconnect is seen).
    Clog {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
    },
    /// End a clog.
    Unclog {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
    },
    /// Kill a node: unsynced disk writes are lost (the last one torn, if asked).
    Crash {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
        /// Tear the last unsynced write.
        #[serde(default)]
        tear: bool,
    },
    /// Start a crashed node again from its disk.
    Restart {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
    },
    /// Stop scheduling a node's tasks.
    Pause {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
    },
    /// Resume a paused node.
    Resume {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
    },
    /// Start a fresh node (it joins the context and catches up).
    AddNode {
        /// When.
        at_s: f64,
    },
    /// Set the loss of every link.
    SetLoss {
        /// When.
        at_s: f64,
        /// The new loss probability.
        loss: f64,
    },
    /// Shift a node's clock.
    Skew {
        /// When.
        at_s: f64,
        /// The node.
        node: usize,
        /// Offset in milliseconds (may be negative).
        ms: i64,
    },
}

impl Fault {
    /// When it happens, in seconds.
    pub fn at_s(&self) -> f64 {
        match self {
            Self::Partition { at_s, .. }
            | Self::PartitionOneWay { at_s, .. }
            | Self::Heal { at_s }
            | Self::Clog { at_s, .. }
            | Self::Unclog { at_s, .. }
            | Self::Crash { at_s, .. }
            | Self::Restart { at_s, .. }
            | Self::Pause { at_s, .. }
            | Self::Resume { at_s, .. }
            | Self::AddNode { at_s }
            | Self::SetLoss { at_s, .. }
            | Self::Skew { at_s, .. } => *at_s,
        }
    }

    /// A short label for reports and plots.
    pub fn label(&self) -> String {
        match self {
            Self::Partition { groups, .. } => format!("partition {groups:?}"),
            Self::PartitionOneWay { from, to, .. } => format!("one-way {from:?}->{to:?}"),
            Self::Heal { .. } => "heal".to_owned(),
            Self::Clog { node, .. } => format!("clog n{node}"),
            Self::Unclog { node, .. } => format!("unclog n{node}"),
            Self::Crash { node, tear, .. } => format!("crash n{node}{}", if *tear { " (torn)" } else { "" }),
            Self::Restart { node, .. } => format!("restart n{node}"),
            Self::Pause { node, .. } => format!("pause n{node}"),
            Self::Resume { node, .. } => format!("resume n{node}"),
            Self::AddNode { .. } => "add node".to_owned(),
            Self::SetLoss { loss, .. } => format!("loss {loss}"),
            Self::Skew { node, ms, .. } => format!("skew n{node} {ms} ms"),
        }
    }
}

/// Which checks run (all by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Live nodes reach equal roots and heads within the liveness bound.
    pub convergence: bool,
    /// Every acknowledged write is applied on every live node.
    pub no_lost_writes: bool,
    /// Every event handler ran exactly once per node (apps with handlers).
    pub handlers_exactly_once: bool,
    /// Pending deltas and snapshot buffers stayed within their limits.
    pub bounded: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Self { convergence: true, no_lost_writes: true, handlers_exactly_once: true, bounded: true }
    }
}

/// Node settings a scenario may change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOverrides {
    /// Transport request timeout.
    pub request_timeout_ms: Option<u64>,
    /// A sync gap above this many deltas falls back to a snapshot.
    pub snapshot_gap_threshold_deltas: Option<usize>,
    /// Heartbeat interval.
    pub heartbeat_interval_ms: Option<u64>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Unreadable file.
    #[error("reading {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// Bad TOML or unknown fields.
    #[error("parsing {path}: {error}")]
    Parse {
        /// The file.
        path: String,
        /// The error.
        error: Box<toml::de::Error>,
    },
    /// Inconsistent values.
    #[error("{0}")]
    Invalid(String),
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ScenarioError::Io { path: path.display().to_string(), error })?;
        let scenario: Self = toml::from_str(&text)
            .map_err(|error| ScenarioError::Parse { path: path.display().to_string(), error: Box::new(error) })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The scenario as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# could not encode: {error}\n"))
    }

    /// Nodes that ever exist: the initial ones plus those added by faults.
    pub fn total_nodes(&self) -> usize {
        self.nodes + self.faults.iter().filter(|fault| matches!(fault, Fault::AddNode { .. })).count()
    }

    /// When writes stop.
    pub fn writes_stop_s(&self) -> f64 {
        self.workload.stop_s.unwrap_or(self.duration_s).min(self.duration_s)
    }

    /// The link profile named `name`, or the default.
    pub fn profile(&self, name: &str) -> LinkProfile {
        self.profiles.get(name).copied().unwrap_or_default()
    }

    /// Checks the values that serde cannot.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::Invalid(format!("{}: {message}", self.name)));
        let total = self.total_nodes();
        if self.nodes == 0 || total > MAX_NODES {
            return invalid(format!("nodes must be 1..={MAX_NODES} in all (got {total})"));
        }
        if !(self.duration_s > 0.0 && self.liveness_s > 0.0) {
            return invalid("duration_s and liveness_s must be positive".to_owned());
        }
        if !matches!(self.workload.app.as_str(), "kv-store" | "todo") {
            return invalid(format!("unknown app {:?} (kv-store or todo)", self.workload.app));
        }
        if !matches!(self.workload.key_distribution.as_str(), "uniform" | "hot") {
            return invalid(format!("unknown key_distribution {:?}", self.workload.key_distribution));
        }
        if self.workload.calls_per_node_per_s < 0.0 || self.workload.keys == 0 {
            return invalid("calls_per_node_per_s must be >= 0 and keys > 0".to_owned());
        }
        if !(1..=MAX_CALLS_PER_ARRIVAL).contains(&self.workload.calls_per_arrival) {
            return invalid(format!("calls_per_arrival must be 1..={MAX_CALLS_PER_ARRIVAL}"));
        }
        for profile in self.profiles.values() {
            for probability in [profile.loss, profile.duplicate, profile.reorder] {
                if !(0.0..=1.0).contains(&probability) {
                    return invalid("probabilities must be within 0..=1".to_owned());
                }
            }
        }
        for link in &self.links {
            if !self.profiles.contains_key(&link.profile) {
                return invalid(format!("link names unknown profile {:?}", link.profile));
            }
        }
        let node_ok = |node: usize| node < total;
        for fault in &self.faults {
            if fault.at_s() < 0.0 || fault.at_s() > self.duration_s {
                return invalid(format!("fault {} at {} s is outside 0..=duration_s", fault.label(), fault.at_s()));
            }
            let nodes: Vec<usize> = match fault {
                Fault::Clog { node, .. }
                | Fault::Unclog { node, .. }
                | Fault::Crash { node, .. }
                | Fault::Restart { node, .. }
                | Fault::Pause { node, .. }
                | Fault::Resume { node, .. }
                | Fault::Skew { node, .. } => vec![*node],
                Fault::PartitionOneWay { from, to, .. } => from.iter().chain(to).copied().collect(),
                Fault::Partition { groups: Groups::Lists(lists), .. } => lists.iter().flatten().copied().collect(),
                Fault::Partition { groups: Groups::Count(count), .. } => {
                    if *count < 2 {
                        return invalid("a partition needs at least 2 groups".to_owned());
                    }
                    Vec::new()
                }
                Fault::SetLoss { loss, .. } => {
                    if !(0.0..=1.0).contains(loss) {
                        return invalid("loss must be within 0..=1".to_owned());
                    }
                    Vec::new()
                }
                Fault::Heal { .. } | Fault::AddNode { .. } => Vec::new(),
            };
            if let Some(node) = nodes.into_iter().find(|node| !node_ok(*node)) {
                return invalid(format!("fault {} names node {node}, but there are {total}", fault.label()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses_and_validates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut count = 0;
        let files = std::fs::read_dir(&root).unwrap().chain(std::fs::read_dir(root.join("long")).unwrap());
        for entry in files {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let scenario = Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
                let again: Scenario = toml::from_str(&scenario.to_toml()).unwrap();
                assert_eq!(again, scenario, "{} round-trips through TOML", path.display());
                count += 1;
            }
        }
        assert!(count >= 11, "the nine scenarios the issue lists and the two long ones ship ({count} found)");
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let text = r#"
            name = "bad"
            nodes = 3
            duration_s = 10
            liveness_s = 5
            [workload]
            app = "kv-store"
            calls_per_node_per_s = 1
            [[faults]]
            kind = "crash"
            at_s = 1
            node = 7
        "#;
        let scenario: Scenario = toml::from_str(text).unwrap();
        let error = scenario.validate().unwrap_err().to_string();
        assert!(error.contains("names node 7"), "{error}");
        assert!(toml::from_str::<Scenario>("name = 1").is_err());
    }
}
