//! Node roles and membership events in a scenario: which nodes are honest, which are
//! byzantine members or outsiders, which are invited later, and when the admin (node 0, the
//! genesis author) adds or removes a member. The world reads them in `world/adversary.rs`,
//! `world/coalition.rs` and `world/members.rs`; the checks in `checks/adversaries.rs`.

use serde::{Deserialize, Serialize};

/// Who each node is. A node named nowhere is an honest genesis member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Nodes outside the genesis that join the context's topic with it, write (refused
    /// locally) and gossip deltas they sign themselves; they must read nothing and have
    /// nothing accepted.
    #[serde(default)]
    pub outsiders: Vec<usize>,
    /// Genesis members that do not follow the protocol: until their replica holds their
    /// removal they play the forced-snapshot attack together (fake head, forged snapshot:
    /// `world/coalition.rs`); then they keep writing, and gossip self-signed deltas on top of
    /// their removal. Left out of the convergence and lost-write checks.
    #[serde(default)]
    pub byzantine: Vec<usize>,
    /// Honest nodes left out of the genesis, to be added by an `add_member` event: the admin
    /// then invites them, and they join by the invitation (after a forged copy of it, and
    /// replaying it after: both must be refused) and become writers once the add reaches them.
    #[serde(default)]
    pub invited: Vec<usize>,
    /// Seconds between two forged deltas of one adversary (outsiders at once, byzantine
    /// members once their replica holds their removal), and between two fake heartbeats of a
    /// byzantine member before that.
    #[serde(default = "default_forge_every_s")]
    pub forge_every_s: f64,
}

fn default_forge_every_s() -> f64 {
    0.5
}

// By hand: a derived default would forge every 0 s, which validation refuses.
impl Default for Roles {
    fn default() -> Self {
        Self {
            outsiders: Vec::new(),
            byzantine: Vec::new(),
            invited: Vec::new(),
            forge_every_s: default_forge_every_s(),
        }
    }
}

impl Roles {
    /// Whether `node` is held to the honest nodes' checks (convergence, no lost writes).
    pub fn is_honest(&self, node: usize) -> bool {
        !self.outsiders.contains(&node) && !self.byzantine.contains(&node)
    }

    /// Whether `node` is named in the genesis.
    pub fn in_genesis(&self, node: usize) -> bool {
        !self.outsiders.contains(&node) && !self.invited.contains(&node)
    }

    /// Nodes that forge deltas.
    pub fn forgers(&self) -> impl Iterator<Item = usize> + '_ {
        self.outsiders.iter().chain(&self.byzantine).copied()
    }

    /// Checks the values serde cannot.
    pub fn validate(&self, total_nodes: usize) -> Result<(), String> {
        let named = self.outsiders.iter().chain(&self.byzantine).chain(&self.invited);
        if let Some(node) = named.clone().find(|node| **node >= total_nodes) {
            return Err(format!("roles name node {node}, but there are {total_nodes}"));
        }
        if named.clone().any(|node| *node == 0) {
            return Err("node 0 authors the genesis and is the admin: it must be honest".to_owned());
        }
        let mut sorted: Vec<usize> = named.copied().collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("a node has more than one role".to_owned());
        }
        if self.forge_every_s.is_nan() || self.forge_every_s <= 0.0 {
            return Err("forge_every_s must be positive".to_owned());
        }
        Ok(())
    }
}

/// A membership change the admin (node 0) authors at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEvent {
    /// When, in seconds from the start.
    pub at_s: f64,
    /// Add or remove.
    pub kind: MemberEventKind,
    /// The node added or removed.
    pub node: usize,
}

/// What a membership event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberEventKind {
    /// Adds the node as a member.
    AddMember,
    /// Removes the node.
    RemoveMember,
}

impl MemberEvent {
    /// A short label for reports.
    pub fn label(&self) -> String {
        match self.kind {
            MemberEventKind::AddMember => format!("add member n{}", self.node),
            MemberEventKind::RemoveMember => format!("remove member n{}", self.node),
        }
    }
}
