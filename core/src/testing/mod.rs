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
