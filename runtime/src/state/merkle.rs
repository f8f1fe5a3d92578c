//! A crit-bit Merkle trie over hashed keys: the root hash of a key-value set.
//!
//! Keys are BLAKE3 hashes of store keys, so the trie is balanced in expectation: its depth is
//! about log2(n). An insert, update or removal rehashes only the nodes on one root-to-leaf path,
//! O(log n); a batch ([`MerkleIndex::update_many`]) rehashes the union of its paths once. A crit-bit trie's shape depends only on the set of keys, never on insertion order,
//! so equal states have equal roots. Walks are iterative and bounded by the 256 key bits.
//!
//! Leaf hash: BLAKE3(0x00 ‖ key hash ‖ value hash). Branch hash: BLAKE3(0x01 ‖ left ‖ right).
//! The empty trie's root is all zeroes.

type Hash = [u8; 32];

#[derive(Debug, Clone)]
enum Node {
    Leaf {
        key: Hash,
        hash: Hash,
    },
    /// `stale`: a key below changed and `hash` is not yet recomputed. Only inside an update:
    /// every public method leaves no stale branch behind. A stale branch's ancestors are all
    /// stale, so a refresh finds every stale branch by descending from the root through stale
    /// branches only.
    Branch {
        bit: u16,
        children: [u32; 2],
        hash: Hash,
        stale: bool,
    },
    Free,
}

impl Node {
    fn hash(&self) -> Hash {
        match self {
            Self::Leaf { hash, .. } | Self::Branch { hash, .. } => *hash,
            Self::Free => unreachable!("free nodes are never linked"),
        }
    }

    fn is_stale(&self) -> bool {
        matches!(self, Self::Branch { stale: true, .. })
    }
}

/// The Merkle index of one state store.
#[derive(Debug, Clone, Default)]
pub struct MerkleIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: Option<u32>,
    len: usize,
    /// Scratch for walks, kept to spare an allocation per update.
    path: Vec<u32>,
}

fn bit_at(key: &Hash, bit: u16) -> usize {
    usize::from((key[usize::from(bit / 8)] >> (7 - bit % 8)) & 1)
}

fn first_different_bit(a: &Hash, b: &Hash) -> Option<u16> {
    a.iter().zip(b).position(|(x, y)| x != y).map(|byte| {
        let diff = a[byte] ^ b[byte];
        (byte * 8) as u16 + diff.leading_zeros() as u16
    })
}

fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[0]);
    hasher.update(key);
    hasher.update(value);
    *hasher.finalize().as_bytes()
}

fn branch_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[1]);
    hasher.update(left);
    hasher.update(right);
    *hasher.finalize().as_bytes()
}

impl MerkleIndex {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root hash; all zeroes when empty.
    pub fn root(&self) -> Hash {
        self.root.map_or([0; 32], |root| self.nodes[root as usize].hash())
    }

    /// Sets the value hash of `key`, inserting it if new.
    pub fn upsert(&mut self, key: Hash, value: Hash) {
        self.upsert_stale(key, value);
        self.refresh();
    }

    /// Removes `key`. Returns false if it was absent.
    pub fn remove(&mut self, key: &Hash) -> bool {
        let removed = self.remove_stale(key);
        self.refresh();
        removed
    }

    /// Applies `updates` in order (`None` removes the key) and rehashes once at the end: the
    /// branches near the root, which every update passes through, are hashed once per batch
    /// rather than once per key.
    pub fn update_many(&mut self, updates: impl IntoIterator<Item = (Hash, Option<Hash>)>) {
        for (key, value) in updates {
            match value {
                Some(value) => self.upsert_stale(key, value),
                None => {
                    self.remove_stale(&key);
                }
            }
        }
        self.refresh();
    }

    /// Fills `self.path` with the branches from the root towards `key` (root first) and returns
    /// the leaf the walk ends at.
    fn walk(&mut self, root: u32, key: &Hash) -> u32 {
        self.path.clear();
        let mut at = root;
        while let Node::Branch { bit, children, .. } = &self.nodes[at as usize] {
            self.path.push(at);
            at = children[bit_at(key, *bit)];
        }
        at
    }

    fn mark_stale(&mut self, branches: std::ops::Range<usize>) {
        for index in branches {
            if let Node::Branch { stale, .. } = &mut self.nodes[self.path[index] as usize] {
                *stale = true;
            }
        }
    }

    fn upsert_stale(&mut self, key: Hash, value: Hash) {
        let Some(root) = self.root else {
            self.root = Some(self.alloc(Node::Leaf { key, hash: leaf_hash(&key, &value) }));
            self.len = 1;
            return;
        };
        // The leaf that shares the longest prefix with `key`.
        let at = self.walk(root, &key);
        let Node::Leaf { key: found, .. } = self.nodes[at as usize] else { unreachable!("walk ends at a leaf") };
        let Some(diff) = first_different_bit(&found, &key) else {
            self.nodes[at as usize] = Node::Leaf { key, hash: leaf_hash(&key, &value) };
            self.mark_stale(0..self.path.len());
            return;
        };
        // The new branch on `diff` goes above the first node of the walk that splits on a later
        // bit. Up to there `key` and `found` agree on every bit tested, so the walk towards
        // `found` is also the walk towards the insertion point.
        let split = self.path.iter().position(|&node| match self.nodes[node as usize] {
            Node::Branch { bit, .. } => bit > diff,
            _ => unreachable!("the path holds branches"),
        });
        let depth = split.unwrap_or(self.path.len());
        let below = split.map_or(at, |index| self.path[index]);
        let leaf = self.alloc(Node::Leaf { key, hash: leaf_hash(&key, &value) });
        let mut children = [below, below];
        children[bit_at(&key, diff)] = leaf;
        let branch = self.alloc(Node::Branch { bit: diff, children, hash: [0; 32], stale: true });
        match depth.checked_sub(1).map(|index| self.path[index]) {
            None => self.root = Some(branch),
            Some(owner) => {
                if let Node::Branch { bit, children, .. } = &mut self.nodes[owner as usize] {
                    children[bit_at(&key, *bit)] = branch;
                }
            }
        }
        self.len += 1;
        self.mark_stale(0..depth);
    }

    fn remove_stale(&mut self, key: &Hash) -> bool {
        let Some(root) = self.root else { return false };
        let at = self.walk(root, key);
        match &self.nodes[at as usize] {
            Node::Leaf { key: found, .. } if found == key => {}
            _ => return false,
        }
        self.release(at);
        self.len -= 1;
        let Some(&parent) = self.path.last() else {
            self.root = None;
            return true;
        };
        let Node::Branch { bit, children, .. } = self.nodes[parent as usize] else {
            unreachable!("path holds branches")
        };
        let sibling = children[1 - bit_at(key, bit)];
        self.release(parent);
        let depth = self.path.len() - 1;
        match depth.checked_sub(1).map(|index| self.path[index]) {
            None => self.root = Some(sibling),
            Some(grandparent) => {
                if let Node::Branch { bit, children, .. } = &mut self.nodes[grandparent as usize] {
                    children[bit_at(key, *bit)] = sibling;
                }
            }
        }
        self.mark_stale(0..depth);
        true
    }

    /// Recomputes every stale branch, children before parents.
    fn refresh(&mut self) {
        let Some(root) = self.root else { return };
        if !self.nodes[root as usize].is_stale() {
            return;
        }
        // (branch, its stale children are done). Depth is bounded by the 256 key bits.
        let mut stack: Vec<(u32, bool)> = vec![(root, false)];
        while let Some((node, children_done)) = stack.pop() {
            let Node::Branch { children, .. } = self.nodes[node as usize] else { continue };
            if children_done {
                let (left, right) = (self.nodes[children[0] as usize].hash(), self.nodes[children[1] as usize].hash());
                if let Node::Branch { hash, stale, .. } = &mut self.nodes[node as usize] {
                    *hash = branch_hash(&left, &right);
                    *stale = false;
                }
                continue;
            }
            stack.push((node, true));
            for child in children {
                if self.nodes[child as usize].is_stale() {
                    stack.push((child, false));
                }
            }
        }
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).expect("fewer than 4 billion trie nodes")
            }
        }
    }

    fn release(&mut self, node: u32) {
        self.nodes[node as usize] = Node::Free;
        self.free.push(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(n: u32) -> Hash {
        *blake3::hash(&n.to_le_bytes()).as_bytes()
    }

    fn build(keys: &[u32], value: u32) -> MerkleIndex {
        let mut index = MerkleIndex::default();
        for key in keys {
            index.upsert(h(*key), h(value + key));
        }
        index
    }

    #[test]
    fn empty_root_is_zero_and_single_leaf_root_is_its_hash() {
        let mut index = MerkleIndex::default();
        assert_eq!(index.root(), [0; 32]);
        index.upsert(h(1), h(2));
        assert_eq!(index.root(), leaf_hash(&h(1), &h(2)));
        assert!(index.remove(&h(1)));
        assert_eq!(index.root(), [0; 32]);
        assert!(!index.remove(&h(1)));
    }

    #[test]
    fn updating_a_value_changes_the_root_and_changing_it_back_restores_it() {
        let mut index = build(&(0..100).collect::<Vec<_>>(), 0);
        let before = index.root();
        index.upsert(h(42), h(9_999));
        assert_ne!(index.root(), before);
        index.upsert(h(42), h(42));
        assert_eq!(index.root(), before);
        assert_eq!(index.len(), 100);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_root_depends_only_on_the_key_set(keys in proptest::collection::btree_set(0u32..10_000, 0..200), seed in any::<u64>()) {
            let mut ordered: Vec<u32> = keys.iter().copied().collect();
            let forward = build(&ordered, 7);
            let mut state = seed | 1;
            for i in (1..ordered.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                ordered.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let shuffled = build(&ordered, 7);
            prop_assert_eq!(forward.root(), shuffled.root());
            prop_assert_eq!(forward.len(), keys.len());
        }

        #[test]
        fn a_batch_gives_the_root_of_one_update_at_a_time(
            start in proptest::collection::btree_set(0u32..2_000, 0..150),
            updates in proptest::collection::vec((0u32..2_000, proptest::option::of(0u32..5)), 0..150),
        ) {
            let start: Vec<u32> = start.into_iter().collect();
            let mut one_by_one = build(&start, 1);
            let mut batched = build(&start, 1);
            for (key, value) in &updates {
                match value {
                    Some(value) => one_by_one.upsert(h(*key), h(*value)),
                    None => {
                        one_by_one.remove(&h(*key));
                    }
                }
            }
            batched.update_many(updates.iter().map(|(key, value)| (h(*key), value.map(h))));
            prop_assert_eq!(batched.root(), one_by_one.root());
            prop_assert_eq!(batched.len(), one_by_one.len());
            // And both equal an index built from scratch over the final key set.
            let mut fresh = MerkleIndex::default();
            let mut last: std::collections::BTreeMap<u32, Option<Hash>> =
                start.iter().map(|key| (*key, Some(h(1 + key)))).collect();
            for (key, value) in &updates {
                last.insert(*key, value.map(h));
            }
            for (key, value) in &last {
                if let Some(value) = value {
                    fresh.upsert(h(*key), *value);
                }
            }
            prop_assert_eq!(fresh.root(), batched.root());
        }

        #[test]
        fn removing_keys_gives_the_root_of_never_having_them(keys in proptest::collection::btree_set(0u32..10_000, 1..200), cut in 0usize..200) {
            let keys: Vec<u32> = keys.into_iter().collect();
            let cut = cut % keys.len();
            let mut index = build(&keys, 3);
            for key in &keys[cut..] {
                prop_assert!(index.remove(&h(*key)));
            }
            prop_assert_eq!(index.root(), build(&keys[..cut], 3).root());
            prop_assert_eq!(index.len(), cut);
        }
    }
}
