//! What a world is built from: node keys, node settings, the app's module and the network.

use crate::network::Net;
use crate::scenario::{App, Scenario, DEFAULT_PROFILE};
use rhizome_core::Keypair;
use rhizome_node::NodeConfig;
use std::collections::BTreeMap;

/// Node `index`'s key, the same for every run of a seed.
pub(super) fn keypair(seed: u64, index: usize) -> Keypair {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"rhizome-sim/node-key");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(index as u64).to_le_bytes());
    Keypair::from_secret_bytes(*hasher.finalize().as_bytes())
}

/// The node settings: the defaults with the scenario's overrides.
pub(super) fn node_config(scenario: &Scenario) -> NodeConfig {
    let mut config = NodeConfig::default();
    // The simulator's requests time out sooner than a real node's by default (5 s): its links
    // are fast, and a lost request should not hold a session for long.
    let request_timeout_ms = scenario.node.request_timeout_ms.unwrap_or(5_000);
    config.core.sync_request_timeout_ms = request_timeout_ms;
    config.core.parent_fetch_timeout_ms = request_timeout_ms;
    if let Some(threshold) = scenario.node.snapshot_gap_threshold_deltas {
        config.core.snapshot_gap_threshold_deltas = threshold as u64;
    }
    if let Some(interval) = scenario.node.heartbeat_interval_ms {
        config.core.heartbeat_interval_ms = interval;
    }
    config.core.limits.max_members_per_context = config.core.limits.max_members_per_context.max(scenario.total_nodes());
    // One memo for the whole run: each delta's signature is checked once, not once per node.
    config.signature_memo = Some(rhizome_core::SignatureMemo::default());
    config
}

/// The wasm module of an app.
pub(super) fn app_module(app: App) -> Result<Vec<u8>, String> {
    let dir = std::env::var("RHIZOME_WASM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm"));
    let path = dir.join(app.wasm_file());
    std::fs::read(&path)
        .map_err(|error| format!("{}: {error} (build the apps with `cargo xtask apps`)", path.display()))
}

/// The simulated network between `peers`, with the scenario's link profiles, run by the
/// simulator node `net_node`.
pub(super) fn network(
    scenario: &Scenario,
    peers: &[rhizome_core::PeerId],
    seed: u64,
    net_node: madsim::runtime::NodeHandle,
) -> Net {
    let mut overrides = BTreeMap::new();
    for link in &scenario.links {
        let profile = scenario.profile(&link.profile);
        for from in &link.from {
            for to in &link.to {
                overrides.insert((*from, *to), profile);
                if !link.one_way {
                    overrides.insert((*to, *from), profile);
                }
            }
        }
    }
    Net::new(
        peers,
        scenario.profile(DEFAULT_PROFILE),
        overrides,
        scenario.mesh.degree,
        scenario.mesh.seen_cache_ids,
        seed,
        net_node,
    )
}
