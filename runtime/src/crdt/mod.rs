//! The CRDT values an application's state is made of. Every type is a state-based CRDT with a
//! `join` that is commutative, associative and idempotent; an action is applied by joining the
//! small state it describes (delta-state style), so applying the same actions in any order, any
//! number of times, gives the same state.

mod counter;
mod list;
mod register;
mod set;

pub use counter::PnCounter;
pub use list::{ListNode, RgaList};
pub use register::LwwRegister;
pub use set::AwSet;

use crate::stamp::Stamp;
use borsh::{BorshDeserialize, BorshSerialize};

/// The value stored at one path: one component per CRDT type. Writes of different types at
/// one path (concurrent, or an app changing its mind) each land in their own component, so the
/// join stays a product of joins: commutative, associative and idempotent, with nothing lost.
/// A typed read looks only at its component.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Slot {
    /// The register component.
    pub register: Option<LwwRegister>,
    /// The counter component.
    pub counter: Option<PnCounter>,
    /// The set component.
    pub set: Option<AwSet>,
    /// The ordered-list component.
    pub list: Option<RgaList>,
}

impl Slot {
    /// The latest write this slot has seen, over all components.
    pub fn stamp(&self) -> Stamp {
        let register = self.register.as_ref().map(|register| register.stamp);
        let counter = self.counter.as_ref().map(|counter| counter.stamp);
        let set = self.set.as_ref().map(|set| set.stamp);
        let list = self.list.as_ref().map(|list| list.stamp);
        register.max(counter).max(set).max(list).unwrap_or_default()
    }

    /// Joins `other` into `self`, component by component.
    pub fn join(&mut self, other: &Slot) {
        join_component(&mut self.register, &other.register, LwwRegister::join);
        join_component(&mut self.counter, &other.counter, PnCounter::join);
        join_component(&mut self.set, &other.set, AwSet::join);
        join_component(&mut self.list, &other.list, RgaList::join);
    }

    /// The latest stamp a write put into the slot: each component's own, every set tag and
    /// every list node. These come from the HLCs of the deltas that wrote them, which the drift
    /// bound limits on ingest. A slot from a peer's snapshot need not respect that, and a stamp
    /// far ahead would outrank every honest write to its path.
    pub fn latest_written_stamp(&self) -> Stamp {
        let mut latest = self.stamp();
        if let Some(set) = &self.set {
            let tags = set.adds.values().filter_map(|tags| tags.last().copied());
            latest = latest.max(tags.max().unwrap_or_default());
        }
        if let Some(list) = &self.list {
            latest = latest.max(list.nodes.keys().next_back().copied().unwrap_or_default());
        }
        latest
    }

    /// The latest stamp a write *refers to* in the slot: set tombstones, list tombstones and
    /// list anchors. Applying a delta refuses a reference that is not earlier than its action's
    /// own stamp (`crate::references`), so in state that deltas made every reference is below a
    /// written stamp; a later one in a peer's snapshot would pre-empt a write not made yet.
    pub fn latest_referenced_stamp(&self) -> Stamp {
        let mut latest = Stamp::default();
        if let Some(set) = &self.set {
            latest = latest.max(set.removed.last().copied().unwrap_or_default());
        }
        if let Some(list) = &self.list {
            latest = latest.max(list.removed.last().copied().unwrap_or_default());
            latest = latest.max(list.nodes.values().filter_map(|node| node.after).max().unwrap_or_default());
        }
        latest
    }

    /// The slot's canonical bytes (what the Merkle index hashes).
    pub fn encode(&self) -> Vec<u8> {
        rhizome_core::wire::encode(self)
    }
}

fn join_component<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>, join: fn(&mut T, &T)) {
    match (mine.as_mut(), theirs) {
        (Some(mine), Some(theirs)) => join(mine, theirs),
        (None, Some(theirs)) => *mine = Some(theirs.clone()),
        (_, None) => {}
    }
}

#[cfg(test)]
mod laws;
