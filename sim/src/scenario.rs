//! Scenario files (`scenarios/*.toml`): nodes, links, workload, faults, checks, duration.
//! The format is documented in docs/SCENARIOS.md.

use crate::faults::{FaultKind, TimedFault};
use crate::roles::{MemberEvent, Roles};
use rhizome_core::link::LinkProfile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The largest world the simulator builds.
pub const MAX_NODES: usize = 1_000;

/// The link profile that applies to every link without an override.
pub const DEFAULT_PROFILE: &str = "default";

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
    /// Link profiles by name; `default` applies to every link without an override. A file
    /// writes them as crate::link_toml reads them; a value out of range is a parse error.
    #[serde(default, with = "crate::link_toml::profiles")]
    pub profiles: BTreeMap<String, LinkProfile>,
    /// Links between groups that use another profile.
    #[serde(default)]
    pub links: Vec<LinkOverride>,
    /// The app and the calls.
    pub workload: Workload,
    /// The fault schedule.
    #[serde(default)]
    pub faults: Vec<TimedFault>,
    /// Membership changes the admin (node 0) makes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub membership: Vec<MemberEvent>,
    /// Which checks run.
    #[serde(default)]
    pub checks: Checks,
    /// Node settings that differ from the defaults.
    #[serde(default)]
    pub node: NodeOverrides,
    /// Seeds that once found a bug: every sweep of this file runs them too, besides its range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regression_seeds: Vec<u64>,
    /// Byzantine members, outsiders and invited nodes (default: every node an honest member).
    #[serde(default, skip_serializing_if = "is_default")]
    pub roles: Roles,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
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
    /// The app.
    pub app: App,
    /// Writing calls per second per node (Poisson).
    pub calls_per_node_per_s: f64,
    /// Only these nodes write; empty means all.
    #[serde(default)]
    pub writers: Vec<usize>,
    /// Distinct keys.
    #[serde(default = "default_keys")]
    pub keys: u64,
    /// How writes pick their keys.
    #[serde(default)]
    pub key_distribution: KeyDistribution,
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

/// The apps a workload can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum App {
    /// `kv-store`: writes are `set` of a key.
    KvStore,
    /// `todo`: writes are `add`, whose event handler writes a counter on every other node.
    Todo,
}

impl App {
    /// The module's file in the WASM build directory.
    pub fn wasm_file(self) -> &'static str {
        match self {
            Self::KvStore => "kv_store.wasm",
            Self::Todo => "todo.wasm",
        }
    }

    /// Whether its deltas run event handlers (so "handlers exactly once" applies).
    pub fn has_event_handlers(self) -> bool {
        match self {
            Self::KvStore => false,
            Self::Todo => true,
        }
    }
}

/// How writes pick their keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDistribution {
    /// Every key alike.
    #[default]
    Uniform,
    /// 90 % of writes go to 10 % of the keys.
    Hot,
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
        self.nodes + self.faults.iter().filter(|fault| matches!(fault.kind, FaultKind::AddNode {})).count()
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
        if self.workload.calls_per_node_per_s < 0.0 || self.workload.keys == 0 {
            return invalid("calls_per_node_per_s must be >= 0 and keys > 0".to_owned());
        }
        if !(1..=MAX_CALLS_PER_ARRIVAL).contains(&self.workload.calls_per_arrival) {
            return invalid(format!("calls_per_arrival must be 1..={MAX_CALLS_PER_ARRIVAL}"));
        }
        for link in &self.links {
            if !self.profiles.contains_key(&link.profile) {
                return invalid(format!("link names unknown profile {:?}", link.profile));
            }
        }
        for fault in &self.faults {
            if fault.at_s < 0.0 || fault.at_s > self.duration_s {
                return invalid(format!("fault {} at {} s is outside 0..=duration_s", fault.label(), fault.at_s));
            }
            fault.kind.validate(total).or_else(invalid)?;
        }
        self.roles.validate(total).or_else(invalid)?;
        for event in &self.membership {
            if event.at_s < 0.0 || event.at_s > self.duration_s || event.node == 0 || event.node >= total {
                return invalid(format!(
                    "{} at {} s: node must be 1..{total}, time within 0..=duration_s",
                    event.label(),
                    event.at_s
                ));
            }
        }
        let added = |node: &usize| {
            self.membership
                .iter()
                .any(|event| event.node == *node && event.kind == crate::roles::MemberEventKind::AddMember)
        };
        if let Some(node) = self.roles.invited.iter().find(|node| !added(node)) {
            return invalid(format!("invited node {node} has no add_member event: it would never join"));
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

    #[test]
    fn an_out_of_range_link_or_fault_probability_is_a_parse_error_naming_the_field() {
        let head = "name = \"p\"\nnodes = 3\nduration_s = 10\nliveness_s = 5\n[workload]\napp = \"kv-store\"\ncalls_per_node_per_s = 1\n";
        let profile = format!("{head}[profiles.default]\nlatency_ms = {{ uniform = [10, 50] }}\nloss = 1.5\n");
        let error = toml::from_str::<Scenario>(&profile).unwrap_err().to_string();
        assert!(error.contains("profile \"default\": loss: a probability must be within 0..=1 (got 1.5)"), "{error}");
        let fault = format!("{head}[[faults]]\nkind = \"set_loss\"\nat_s = 1\nloss = 1.5\n");
        let error = toml::from_str::<Scenario>(&fault).unwrap_err().to_string();
        assert!(error.contains("faults") && error.contains("within 0..=1 (got 1.5)"), "{error}");
    }

    fn with_workload_line(line: &str) -> Result<Scenario, toml::de::Error> {
        toml::from_str(&format!(
            "name = \"typo\"\nnodes = 3\nduration_s = 10\nliveness_s = 5\n[workload]\ncalls_per_node_per_s = 1\n{line}\n"
        ))
    }

    #[test]
    fn a_misspelt_app_or_key_distribution_is_a_parse_error_naming_the_field() {
        for (line, field) in
            [("app = \"kv_store\"", "app"), ("app = \"todo\"\nkey_distribution = \"hott\"", "key_distribution")]
        {
            let error = with_workload_line(line).unwrap_err().to_string();
            assert!(error.contains(field), "{line}: {error}");
        }
        let parsed = with_workload_line("app = \"todo\"\nkey_distribution = \"hot\"").unwrap();
        assert_eq!((parsed.workload.app, parsed.workload.key_distribution), (App::Todo, KeyDistribution::Hot));
        let parsed = with_workload_line("app = \"kv-store\"").unwrap();
        assert_eq!((parsed.workload.app, parsed.workload.key_distribution), (App::KvStore, KeyDistribution::Uniform));
    }

    #[test]
    fn a_misspelt_check_is_a_parse_error_naming_it() {
        let checks = "[checks]\nconvergence = true\nno_lost_writes = true\nhandlers_exactly_once = true\n";
        let error = with_workload_line(&format!("app = \"todo\"\n{checks}bounded = true\nbonded = false"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("bonded"), "{error}");
        let parsed = with_workload_line(&format!("app = \"todo\"\n{checks}bounded = false")).unwrap();
        assert!(!parsed.checks.bounded && parsed.checks.convergence);
    }
}
