//! Faults, in one place: each kind's schema (here), how it is applied to a world
//! ([`apply`]), how the liveness phase lifts what it leaves behind ([`lift`]) and how swarm
//! mode draws it ([`draw`]). A new kind has to be handled in each, and the tests below fail if
//! swarm mode never draws it or the liveness phase leaves its effect in place.

mod apply;
mod draw;
mod lift;
#[cfg(test)]
mod tests;

pub use apply::FaultTarget;
pub use draw::draw_schedule;
pub use lift::{lift_all, AtLiveness, Lift};

use rhizome_core::link::Probability;
use serde::{Deserialize, Serialize};

/// One scheduled fault: when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedFault {
    /// When it happens, in seconds from the start.
    pub at_s: f64,
    /// What happens (its `kind` and fields sit next to `at_s` in a scenario file). Unknown
    /// fields are refused by [`FaultKind`]: `deny_unknown_fields` cannot sit on a struct with a
    /// flattened field.
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl TimedFault {
    /// `kind` at `at_s`.
    pub fn new(at_s: f64, kind: FaultKind) -> Self {
        Self { at_s, kind }
    }

    /// A short label for reports and plots.
    pub fn label(&self) -> String {
        self.kind.label()
    }
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

impl Groups {
    /// The groups over nodes `0..nodes`.
    pub fn resolve(&self, nodes: usize) -> Vec<Vec<usize>> {
        match self {
            Self::Count(count) => {
                let count = (*count).max(1);
                let size = nodes.div_ceil(count);
                (0..nodes).collect::<Vec<_>>().chunks(size.max(1)).map(<[usize]>::to_vec).collect()
            }
            Self::Lists(lists) => {
                let mut lists = lists.clone();
                let named: std::collections::BTreeSet<usize> = lists.iter().flatten().copied().collect();
                let rest: Vec<usize> = (0..nodes).filter(|node| !named.contains(node)).collect();
                if !rest.is_empty() {
                    lists.push(rest);
                }
                lists
            }
        }
    }
}

/// What a fault does. The variants without fields are written `{}` so that
/// `deny_unknown_fields` refuses stray fields on them too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Cut every link between groups (connections drop: peers see each other go down).
    Partition {
        /// The groups.
        groups: Groups,
    },
    /// Drop messages from `from` to `to` only (connections stay up).
    PartitionOneWay {
        /// Senders.
        from: Vec<usize>,
        /// Receivers.
        to: Vec<usize>,
    },
    /// Restore every cut or one-way link.
    Heal {},
    /// Silently drop everything to and from a node (no disconnect is seen).
    Clog {
        /// The node.
        node: usize,
    },
    /// End a clog.
    Unclog {
        /// The node.
        node: usize,
    },
    /// Kill a node: unsynced disk writes are lost (the last one torn, if asked).
    Crash {
        /// The node.
        node: usize,
        /// Tear the last unsynced write.
        #[serde(default)]
        tear: bool,
    },
    /// Start a crashed node again from its disk.
    Restart {
        /// The node.
        node: usize,
    },
    /// Stop scheduling a node's tasks.
    Pause {
        /// The node.
        node: usize,
    },
    /// Resume a paused node.
    Resume {
        /// The node.
        node: usize,
    },
    /// Start a fresh node (it joins the context and catches up).
    AddNode {},
    /// Set the loss of every link.
    SetLoss {
        /// The new loss probability (a number in 0..=1; out of range is a parse error).
        #[serde(with = "crate::link_toml::probability")]
        loss: Probability,
    },
    /// Shift a node's clock.
    Skew {
        /// The node.
        node: usize,
        /// Offset in milliseconds (may be negative).
        ms: i64,
    },
}

/// A fault kind without its fields: the list of every kind, for the tests that hold each
/// kind to being drawn and lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTag {
    /// [`FaultKind::Partition`].
    Partition,
    /// [`FaultKind::PartitionOneWay`].
    PartitionOneWay,
    /// [`FaultKind::Heal`].
    Heal,
    /// [`FaultKind::Clog`].
    Clog,
    /// [`FaultKind::Unclog`].
    Unclog,
    /// [`FaultKind::Crash`].
    Crash,
    /// [`FaultKind::Restart`].
    Restart,
    /// [`FaultKind::Pause`].
    Pause,
    /// [`FaultKind::Resume`].
    Resume,
    /// [`FaultKind::AddNode`].
    AddNode,
    /// [`FaultKind::SetLoss`].
    SetLoss,
    /// [`FaultKind::Skew`].
    Skew,
}

impl FaultTag {
    /// Every kind (a test checks this against the kinds the scenario format accepts).
    pub const ALL: [Self; 12] = [
        Self::Partition,
        Self::PartitionOneWay,
        Self::Heal,
        Self::Clog,
        Self::Unclog,
        Self::Crash,
        Self::Restart,
        Self::Pause,
        Self::Resume,
        Self::AddNode,
        Self::SetLoss,
        Self::Skew,
    ];
}

impl FaultKind {
    /// Which kind it is.
    pub fn tag(&self) -> FaultTag {
        match self {
            Self::Partition { .. } => FaultTag::Partition,
            Self::PartitionOneWay { .. } => FaultTag::PartitionOneWay,
            Self::Heal {} => FaultTag::Heal,
            Self::Clog { .. } => FaultTag::Clog,
            Self::Unclog { .. } => FaultTag::Unclog,
            Self::Crash { .. } => FaultTag::Crash,
            Self::Restart { .. } => FaultTag::Restart,
            Self::Pause { .. } => FaultTag::Pause,
            Self::Resume { .. } => FaultTag::Resume,
            Self::AddNode {} => FaultTag::AddNode,
            Self::SetLoss { .. } => FaultTag::SetLoss,
            Self::Skew { .. } => FaultTag::Skew,
        }
    }

    /// A short label for reports and plots.
    pub fn label(&self) -> String {
        match self {
            Self::Partition { groups } => format!("partition {groups:?}"),
            Self::PartitionOneWay { from, to } => format!("one-way {from:?}->{to:?}"),
            Self::Heal {} => "heal".to_owned(),
            Self::Clog { node } => format!("clog n{node}"),
            Self::Unclog { node } => format!("unclog n{node}"),
            Self::Crash { node, tear } => format!("crash n{node}{}", if *tear { " (torn)" } else { "" }),
            Self::Restart { node } => format!("restart n{node}"),
            Self::Pause { node } => format!("pause n{node}"),
            Self::Resume { node } => format!("resume n{node}"),
            Self::AddNode {} => "add node".to_owned(),
            Self::SetLoss { loss } => format!("loss {loss}"),
            Self::Skew { node, ms } => format!("skew n{node} {ms} ms"),
        }
    }

    /// Checks the values serde cannot, in a world of `total_nodes` nodes.
    pub fn validate(&self, total_nodes: usize) -> Result<(), String> {
        let nodes: Vec<usize> = match self {
            Self::Clog { node }
            | Self::Unclog { node }
            | Self::Crash { node, .. }
            | Self::Restart { node }
            | Self::Pause { node }
            | Self::Resume { node }
            | Self::Skew { node, .. } => vec![*node],
            Self::PartitionOneWay { from, to } => from.iter().chain(to).copied().collect(),
            Self::Partition { groups: Groups::Lists(lists) } => lists.iter().flatten().copied().collect(),
            Self::Partition { groups: Groups::Count(count) } => {
                if *count < 2 {
                    return Err("a partition needs at least 2 groups".to_owned());
                }
                Vec::new()
            }
            Self::Heal {} | Self::AddNode {} | Self::SetLoss { .. } => Vec::new(),
        };
        match nodes.into_iter().find(|node| *node >= total_nodes) {
            Some(node) => Err(format!("fault {} names node {node}, but there are {total_nodes}", self.label())),
            None => Ok(()),
        }
    }
}
