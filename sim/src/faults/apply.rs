//! Applying a fault: what each kind asks of the world. How the world carries it out (killing
//! a madsim node, cutting links) is the world's business, behind [`FaultTarget`], so this
//! module needs no simulator and a test can apply faults to a model.

use super::FaultKind;
use rhizome_core::link::Probability;

/// What faults can do to a world. The simulated world implements it.
pub trait FaultTarget {
    /// Nodes that may ever exist (initial and added), which a partition by count splits.
    fn node_count(&self) -> usize;
    /// The default link profile's loss.
    fn default_loss(&self) -> Probability;
    /// Cuts every link between groups, both ways.
    fn partition(&mut self, groups: &[Vec<usize>]);
    /// Drops messages from `from` to `to` only.
    fn partition_one_way(&mut self, from: &[usize], to: &[usize]);
    /// Restores every cut.
    fn heal(&mut self);
    /// Starts or stops dropping everything to and from `node`.
    fn set_clogged(&mut self, node: usize, clogged: bool);
    /// Kills `node` (a no-op if it is down), tearing its last unsynced write if asked.
    fn crash(&mut self, node: usize, tear: bool);
    /// Boots a crashed `node` from its disk (a no-op if it is up).
    fn restart(&mut self, node: usize);
    /// Stops scheduling `node` (a no-op unless it is up and running).
    fn pause(&mut self, node: usize);
    /// Resumes a paused `node` (a no-op otherwise).
    fn resume(&mut self, node: usize);
    /// Boots the next node that has not existed yet, if any is left.
    fn add_node(&mut self);
    /// Sets the loss of every link.
    fn set_loss(&mut self, loss: Probability);
    /// Offsets `node`'s clock by `ms` from simulated time.
    fn set_skew_ms(&mut self, node: usize, ms: i64);
}

impl FaultKind {
    /// Applies the fault to `target`.
    pub fn apply(&self, target: &mut impl FaultTarget) {
        match self {
            Self::Partition { groups } => {
                let groups = groups.resolve(target.node_count());
                target.partition(&groups);
            }
            Self::PartitionOneWay { from, to } => target.partition_one_way(from, to),
            Self::Heal {} => target.heal(),
            Self::Clog { node } => target.set_clogged(*node, true),
            Self::Unclog { node } => target.set_clogged(*node, false),
            Self::Crash { node, tear } => target.crash(*node, *tear),
            Self::Restart { node } => target.restart(*node),
            Self::Pause { node } => target.pause(*node),
            Self::Resume { node } => target.resume(*node),
            Self::AddNode {} => target.add_node(),
            Self::SetLoss { loss } => target.set_loss(*loss),
            Self::Skew { node, ms } => target.set_skew_ms(*node, *ms),
        }
    }
}
