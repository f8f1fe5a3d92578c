//! Replicated growable array (RGA): an ordered list where every element is a node named by the
//! stamp of the insert that made it and placed after an earlier node (or the head).
//!
//! Siblings (inserts after the same node) are ordered newest stamp first, so concurrent inserts
//! at one position interleave the same way everywhere. Removal tombstones the node. The state
//! is two sets (nodes, removed), and joining is their union: commutative, associative and
//! idempotent. A node whose anchor has not arrived yet is kept and becomes visible when it does.

use crate::stamp::Stamp;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};

/// One inserted element.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ListNode {
    /// The node it was inserted after; `None` for the head.
    pub after: Option<Stamp>,
    /// The element.
    pub value: Vec<u8>,
}

/// An RGA list.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RgaList {
    /// Every node ever inserted, by id.
    pub nodes: BTreeMap<Stamp, ListNode>,
    /// Removed node ids (tombstones; see the compaction rule in docs/ABI.md).
    pub removed: BTreeSet<Stamp>,
    /// The latest write.
    pub stamp: Stamp,
}

impl RgaList {
    /// Union of nodes and of removals. A node id names one insert; should a faulty author reuse
    /// one, the greater (anchor, value) wins, so the join stays order-independent.
    pub fn join(&mut self, other: &RgaList) {
        for (id, node) in &other.nodes {
            match self.nodes.get_mut(id) {
                Some(mine) => {
                    if (&node.after, &node.value) > (&mine.after, &mine.value) {
                        *mine = node.clone();
                    }
                }
                None => {
                    self.nodes.insert(*id, node.clone());
                }
            }
        }
        self.removed.extend(other.removed.iter().copied());
        self.stamp = self.stamp.max(other.stamp);
    }

    /// Visible elements in list order, each with its node id; nodes stamped at or before
    /// `cutoff` (a removal of the list) are hidden. Iterative depth-first walk: a list built
    /// by appending is a chain as deep as it is long.
    pub fn visible(&self, cutoff: Option<Stamp>) -> Vec<(Stamp, &[u8])> {
        let mut children: BTreeMap<Option<Stamp>, Vec<Stamp>> = BTreeMap::new();
        for (id, node) in &self.nodes {
            children.entry(node.after).or_default().push(*id);
        }
        let mut out = Vec::new();
        // Children are pushed oldest first so the newest is popped (and listed) first.
        let mut stack: Vec<Stamp> = children.get(&None).cloned().unwrap_or_default();
        while let Some(id) = stack.pop() {
            let node = &self.nodes[&id];
            if !self.removed.contains(&id) && cutoff.is_none_or(|cutoff| id > cutoff) {
                out.push((id, node.value.as_slice()));
            }
            if let Some(kids) = children.get(&Some(id)) {
                stack.extend(kids.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhizome_core::{AuthorKey, Hlc};

    fn id(ms: u64, author: u8) -> Stamp {
        Stamp {
            hlc: Hlc { physical_ms: ms, logical: 0, node: u64::from(author) },
            author: AuthorKey::from_bytes([author; 32]),
            index: 0,
        }
    }

    fn insert(list: &mut RgaList, id: Stamp, after: Option<Stamp>, value: &str) {
        let mut delta = RgaList::default();
        delta.nodes.insert(id, ListNode { after, value: value.as_bytes().to_vec() });
        list.join(&delta);
    }

    fn values(list: &RgaList) -> Vec<String> {
        list.visible(None).into_iter().map(|(_, value)| String::from_utf8_lossy(value).into_owned()).collect()
    }

    #[test]
    fn appends_keep_order_and_concurrent_inserts_interleave_the_same_everywhere() {
        let mut list = RgaList::default();
        insert(&mut list, id(1, 1), None, "a");
        insert(&mut list, id(2, 1), Some(id(1, 1)), "b");
        insert(&mut list, id(3, 1), Some(id(2, 1)), "c");
        assert_eq!(values(&list), ["a", "b", "c"]);
        // Two replicas insert after "a" concurrently; the newer stamp comes first on both.
        let mut one = list.clone();
        let mut two = list.clone();
        insert(&mut one, id(4, 1), Some(id(1, 1)), "x");
        insert(&mut two, id(4, 2), Some(id(1, 1)), "y");
        let (snapshot_one, snapshot_two) = (one.clone(), two.clone());
        one.join(&snapshot_two);
        two.join(&snapshot_one);
        assert_eq!(one, two);
        assert_eq!(values(&one), ["a", "y", "x", "b", "c"]);
    }

    #[test]
    fn removal_hides_an_element_and_an_orphan_waits_for_its_anchor() {
        let mut list = RgaList::default();
        insert(&mut list, id(2, 1), Some(id(1, 1)), "late child");
        assert!(values(&list).is_empty(), "anchor not here yet");
        insert(&mut list, id(1, 1), None, "anchor");
        assert_eq!(values(&list), ["anchor", "late child"]);
        list.join(&RgaList { removed: [id(1, 1)].into_iter().collect(), ..RgaList::default() });
        assert_eq!(values(&list), ["late child"], "a removed anchor still anchors its children");
    }

    #[test]
    fn a_hundred_thousand_appends_read_without_recursion() {
        let mut list = RgaList::default();
        let mut previous = None;
        for n in 0..100_000u64 {
            let node = id(n + 1, 1);
            list.nodes.insert(node, ListNode { after: previous, value: vec![] });
            previous = Some(node);
        }
        assert_eq!(list.visible(None).len(), 100_000);
    }
}
