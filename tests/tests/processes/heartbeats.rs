//! A converged, idle two-node cluster keeps exchanging heartbeats on schedule. Heartbeats used
//! to be the same bytes whenever nothing changed (and equal to the peer's once converged);
//! gossip ids are the hash of the bytes, so gossipsub refused to publish them and a quiet
//! cluster went silent, leaving divergence detection to periodic syncs alone.

use rhizome_integration::{shared_context, start_cluster, wait_converged, Scratch};
use std::time::Duration;

const HEARTBEAT_INTERVAL_MS: u64 = 500;
const WATCH: Duration = Duration::from_secs(6);

fn heartbeats_received(node: &rhizome_integration::NodeProcess) -> anyhow::Result<u64> {
    let status = node.api.get("/admin/status")?;
    status["counters"]["heartbeats_received"].as_u64().ok_or_else(|| anyhow::anyhow!("no heartbeat counter: {status}"))
}

#[test]
fn a_converged_idle_cluster_exchanges_heartbeats_on_schedule() -> anyhow::Result<()> {
    let scratch = Scratch::new("heartbeats")?;
    let interval = HEARTBEAT_INTERVAL_MS.to_string();
    let env =
        [("RHIZOME_API__RATE_LIMIT__ENABLED", "false"), ("RHIZOME_NODE__HEARTBEAT_INTERVAL_MS", interval.as_str())];
    let nodes = start_cluster(&scratch, 2, &env)?;
    let context = shared_context(&nodes)?;
    nodes[0].set(&context, "k", "v")?;
    let all: Vec<_> = nodes.iter().collect();
    wait_converged(&all, &context, Duration::from_secs(60))?;

    let before: Vec<u64> = nodes.iter().map(heartbeats_received).collect::<Result<_, _>>()?;
    std::thread::sleep(WATCH);
    let after: Vec<u64> = nodes.iter().map(heartbeats_received).collect::<Result<_, _>>()?;
    // One heartbeat per interval from the one peer: 12 in 6 s. Half of that leaves room for a
    // slow machine while still failing the old behaviour (none at all once converged).
    let expected = WATCH.as_millis() as u64 / HEARTBEAT_INTERVAL_MS / 2;
    for (index, (before, after)) in before.iter().zip(&after).enumerate() {
        anyhow::ensure!(
            after - before >= expected,
            "node {index} received {} heartbeats in {WATCH:?}, expected at least {expected}",
            after - before
        );
    }
    Ok(())
}
