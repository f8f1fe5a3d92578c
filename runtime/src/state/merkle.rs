//! A crit-bit Merkle trie over hashed keys: the root hash of a key-value set.
//!
//! Keys are BLAKE3 hashes of store keys, so the trie is balanced in expectation: its depth is
//! about log2(n). An insert, update or removal rehashes only the nodes on one root-to-leaf path,
//! O(log n). A crit-bit trie's shape depends only on the set of keys, never on insertion order,
//! so equal states have equal roots. Walks are iterative and bounded by the 256 key bits.
//!
//! Leaf hash: BLAKE3(0x00 ‖ key hash ‖ value hash). Branch hash: BLAKE3(0x01 ‖ left ‖ right).
//! The empty trie's root is all zeroes.

type Hash = [u8; 32];

#[derive(Debug, Clone)]
enum Node {
    Leaf { key: Hash, hash: Hash },
    Branch { bit: u16, children: [u32; 2], hash: Hash },
    Free,
}

impl Node {
    fn hash(&self) -> Hash {
        match self {
            Self::Leaf { hash, .. } | Self::Branch { hash, .. } => *hash,
            Self::Free => unreachable!("free nodes are never linked"),
        }
    }
}

/// The Merkle index of one state store.
#[derive(Debug, Clone, Default)]
pub struct MerkleIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: Option<u32>,
    len: usize,
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
        let Some(root) = self.root else {
            self.root = Some(self.alloc(Node::Leaf { key, hash: leaf_hash(&key, &value) }));
            self.len = 1;
            return;
        };
        // Find the leaf that shares the longest prefix with `key`.
        let mut path = Vec::new();
        let mut at = root;
        while let Node::Branch { bit, children, .. } = &self.nodes[at as usize] {
            path.push(at);
            at = children[bit_at(&key, *bit)];
        }
        let Node::Leaf { key: found, .. } = self.nodes[at as usize] else { unreachable!("walk ends at a leaf") };
        let Some(diff) = first_different_bit(&found, &key) else {
            self.nodes[at as usize] = Node::Leaf { key, hash: leaf_hash(&key, &value) };
            self.rehash(&path);
            return;
        };
        // Insert a branch on `diff` above the first node that splits on a later bit.
        let mut path = Vec::new();
        let mut parent: Option<(u32, usize)> = None;
        let mut at = root;
        while let Node::Branch { bit, children, .. } = &self.nodes[at as usize] {
            if *bit > diff {
                break;
            }
            path.push(at);
            let side = bit_at(&key, *bit);
            parent = Some((at, side));
            at = children[side];
        }
        let leaf = self.alloc(Node::Leaf { key, hash: leaf_hash(&key, &value) });
        let side = bit_at(&key, diff);
        let mut children = [at, at];
        children[side] = leaf;
        let (left, right) = (self.nodes[children[0] as usize].hash(), self.nodes[children[1] as usize].hash());
        let branch = self.alloc(Node::Branch { bit: diff, children, hash: branch_hash(&left, &right) });
        match parent {
            None => self.root = Some(branch),
            Some((owner, side)) => {
                if let Node::Branch { children, .. } = &mut self.nodes[owner as usize] {
                    children[side] = branch;
                }
            }
        }
        self.len += 1;
        self.rehash(&path);
    }

    /// Removes `key`. Returns false if it was absent.
    pub fn remove(&mut self, key: &Hash) -> bool {
        let Some(root) = self.root else { return false };
        let mut path: Vec<(u32, usize)> = Vec::new();
        let mut at = root;
        while let Node::Branch { bit, children, .. } = &self.nodes[at as usize] {
            let side = bit_at(key, *bit);
            path.push((at, side));
            at = children[side];
        }
        match &self.nodes[at as usize] {
            Node::Leaf { key: found, .. } if found == key => {}
            _ => return false,
        }
        self.release(at);
        self.len -= 1;
        let Some((parent, side)) = path.pop() else {
            self.root = None;
            return true;
        };
        let Node::Branch { children, .. } = self.nodes[parent as usize] else { unreachable!("path holds branches") };
        let sibling = children[1 - side];
        self.release(parent);
        match path.last() {
            None => self.root = Some(sibling),
            Some(&(grandparent, side)) => {
                if let Node::Branch { children, .. } = &mut self.nodes[grandparent as usize] {
                    children[side] = sibling;
                }
            }
        }
        let branches: Vec<u32> = path.iter().map(|(node, _)| *node).collect();
        self.rehash(&branches);
        true
    }

    /// Recomputes the hashes of `path` (root first), bottom-up.
    fn rehash(&mut self, path: &[u32]) {
        for &node in path.iter().rev() {
            let Node::Branch { children, .. } = self.nodes[node as usize] else { continue };
            let (left, right) = (self.nodes[children[0] as usize].hash(), self.nodes[children[1] as usize].hash());
            if let Node::Branch { hash, .. } = &mut self.nodes[node as usize] {
                *hash = branch_hash(&left, &right);
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
