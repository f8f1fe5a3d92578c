//! Test support shared by core's tests, benches and later crates' tests: a native CRDT
//! applier, a no-op applier, a failure-injecting wrapper, a delta factory and an in-process
//! multi-node harness with a virtual clock. Enabled by `cfg(test)` or the `testing` feature.

mod appliers;
mod cluster;
mod factory;

pub use crate::node::test_node::TestNode;
pub use appliers::{FailingApplier, KvCounterApplier, KvOp, NoopApplier};
pub use cluster::{lan_profile, Cluster, ClusterConfig, ClusterStats};
pub use factory::DeltaFactory;

use crate::delta::{CausalDelta, DeltaRef};
use crate::hlc::Hlc;
use crate::identity::Keypair;
use crate::ids::AuthorKey;
use crate::membership::Role;
use std::sync::Arc;

/// A header with this id and these parents and nothing else set: neither its id nor its
/// signature verifies. For tests of page and wire bounds, which never judge it.
pub fn stub_header(id: crate::ids::DeltaId, parents: Vec<crate::ids::DeltaId>) -> crate::delta::DeltaHeader {
    crate::delta::DeltaHeader {
        id,
        context: Default::default(),
        author: Default::default(),
        parents,
        hlc: Hlc::default(),
        kind: crate::delta::DeltaKind::App,
        payload_hash: [0; 32],
        signature: crate::identity::Signature([0; 64]),
    }
}

/// The epoch-0 key of every test genesis ([`genesis_of`]): test factories seal with it.
pub fn test_context_key() -> crate::seal::ContextKey {
    crate::seal::ContextKey::new(crate::seal::KeyEpoch(0), [0x7e; 32])
}

/// The genesis of a test context created by `creator` (its admin) with `members` as members,
/// at HLC zero, its key [`test_context_key`]; `seed` makes contexts with the same members
/// distinct. Member keys must be real public keys (the key is wrapped to each).
pub fn genesis_of(creator: &Keypair, members: impl IntoIterator<Item = AuthorKey>, seed: u64) -> DeltaRef {
    let mut nonce = [0u8; 32];
    nonce[..8].copy_from_slice(&seed.to_le_bytes());
    let members = members.into_iter().map(|key| (key, Role::Member)).collect();
    let genesis = CausalDelta::genesis(creator, Hlc::default(), nonce, members, &test_context_key());
    Arc::new(genesis.expect("test members are real keys"))
}
