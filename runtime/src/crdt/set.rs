//! Add-wins set: every add is tagged with its unique stamp; a remove names the tags it saw.
//! An element is present while it has a tag that no remove named, so an add concurrent with a
//! remove survives it.

use crate::stamp::Stamp;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};

/// An add-wins (observed-remove) set of byte strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AwSet {
    /// element → tags of the adds of that element.
    pub adds: BTreeMap<Vec<u8>, BTreeSet<Stamp>>,
    /// Tags removed (tombstones; see the compaction rule in docs/ABI.md).
    pub removed: BTreeSet<Stamp>,
    /// The latest write.
    pub stamp: Stamp,
}

impl AwSet {
    /// Union of adds and of removes.
    pub fn join(&mut self, other: &AwSet) {
        for (element, tags) in &other.adds {
            self.adds.entry(element.clone()).or_default().extend(tags.iter().copied());
        }
        self.removed.extend(other.removed.iter().copied());
        self.stamp = self.stamp.max(other.stamp);
    }

    /// Tags of `element` that no remove named.
    pub fn live_tags(&self, element: &[u8]) -> Vec<Stamp> {
        self.adds.get(element).map_or_else(Vec::new, |tags| tags.difference(&self.removed).copied().collect())
    }

    /// Live tags of `element` written after `after` (for visibility under a removed map).
    pub fn live_tags_after(&self, element: &[u8], after: Option<Stamp>) -> Vec<Stamp> {
        self.live_tags(element).into_iter().filter(|tag| after.is_none_or(|cutoff| *tag > cutoff)).collect()
    }

    /// Elements with a live tag written after `after`, sorted.
    pub fn members_after(&self, after: Option<Stamp>) -> Vec<Vec<u8>> {
        self.adds.keys().filter(|element| !self.live_tags_after(element, after).is_empty()).cloned().collect()
    }
}
