//! Heartbeats: what a peer's root hash and heads say about our state.

use crate::ids::{DeltaId, RootHash};

/// The comparison of a peer's heartbeat with our own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatVerdict {
    /// Same heads, same root.
    InSync,
    /// The peer has heads we do not know: sync with it.
    PeerAhead {
        /// The peer's heads we lack.
        unknown_heads: Vec<DeltaId>,
    },
    /// We know all the peer's heads; it is behind or concurrent-but-covered. It will pull.
    PeerBehind,
    /// Same heads, different roots: the same deltas gave different states. Silent divergence.
    Diverged,
}

/// Compares a heartbeat with our state. `is_known` says whether we hold a delta.
pub fn compare(
    our_heads: &[DeltaId],
    our_root: &RootHash,
    peer_heads: &[DeltaId],
    peer_root: &RootHash,
    is_known: impl Fn(&DeltaId) -> bool,
) -> HeartbeatVerdict {
    if our_heads == peer_heads {
        return if our_root == peer_root { HeartbeatVerdict::InSync } else { HeartbeatVerdict::Diverged };
    }
    let unknown_heads: Vec<DeltaId> = peer_heads.iter().filter(|head| !is_known(head)).copied().collect();
    if unknown_heads.is_empty() {
        HeartbeatVerdict::PeerBehind
    } else {
        HeartbeatVerdict::PeerAhead { unknown_heads }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_cover_every_case() {
        let a = DeltaId::hash_of(b"a");
        let b = DeltaId::hash_of(b"b");
        let root = RootHash::hash_of(b"r");
        let other_root = RootHash::hash_of(b"s");
        let known = |id: &DeltaId| *id == a;
        assert_eq!(compare(&[a], &root, &[a], &root, known), HeartbeatVerdict::InSync);
        assert_eq!(compare(&[a], &root, &[a], &other_root, known), HeartbeatVerdict::Diverged);
        assert_eq!(
            compare(&[a], &root, &[b], &other_root, known),
            HeartbeatVerdict::PeerAhead { unknown_heads: vec![b] }
        );
        assert_eq!(compare(&[b], &root, &[a], &other_root, known), HeartbeatVerdict::PeerBehind);
    }
}
