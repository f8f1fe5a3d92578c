//! Lifting faults before the liveness phase: every lasting effect a fault can leave is undone,
//! so the phase judges whether the nodes recover, not whether a fault is still in place.

use super::{FaultKind, FaultTarget};

/// One way the liveness phase undoes a lasting effect, on every node it may concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lift {
    /// Restore every cut and one-way link.
    Heal,
    /// Set every link's loss back to the default profile's.
    RestoreLoss,
    /// Stop dropping traffic to and from every node.
    Unclog,
    /// Resume every paused node.
    Resume,
    /// Set every node's clock back to simulated time.
    Unskew,
}

impl Lift {
    /// Every lift, in the order the liveness phase runs them. They change the network's and the
    /// nodes' state at one instant, with nothing running in between, so the order changes
    /// nothing; it is fixed all the same.
    pub const ALL: [Self; 5] = [Self::Heal, Self::RestoreLoss, Self::Unclog, Self::Resume, Self::Unskew];

    fn apply(self, target: &mut impl FaultTarget) {
        let nodes = 0..target.node_count();
        match self {
            Self::Heal => target.heal(),
            Self::RestoreLoss => target.set_loss(target.default_loss()),
            Self::Unclog => nodes.for_each(|node| target.set_clogged(node, false)),
            Self::Resume => nodes.for_each(|node| target.resume(node)),
            Self::Unskew => nodes.for_each(|node| target.set_skew_ms(node, 0)),
        }
    }
}

/// What becomes of a fault's effect when the liveness phase begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtLiveness {
    /// Its effect lasts until this lift undoes it.
    LiftedBy(Lift),
    /// It undoes another fault and leaves nothing of its own.
    Undoes,
    /// It stays on purpose: a node crashed and not restarted stays down (the checks judge
    /// the live nodes), and an added node stays in the world.
    Stays,
}

impl FaultKind {
    /// What the liveness phase does about this fault.
    pub fn at_liveness(&self) -> AtLiveness {
        match self {
            Self::Partition { .. } | Self::PartitionOneWay { .. } => AtLiveness::LiftedBy(Lift::Heal),
            Self::Clog { .. } => AtLiveness::LiftedBy(Lift::Unclog),
            Self::Pause { .. } => AtLiveness::LiftedBy(Lift::Resume),
            Self::SetLoss { .. } => AtLiveness::LiftedBy(Lift::RestoreLoss),
            Self::Skew { .. } => AtLiveness::LiftedBy(Lift::Unskew),
            Self::Heal {} | Self::Unclog { .. } | Self::Resume { .. } | Self::Restart { .. } => AtLiveness::Undoes,
            Self::Crash { .. } | Self::AddNode {} => AtLiveness::Stays,
        }
    }
}

/// Lifts every fault's lasting effect from `target`, whatever the schedule applied.
pub fn lift_all(target: &mut impl FaultTarget) {
    for lift in Lift::ALL {
        lift.apply(target);
    }
}
