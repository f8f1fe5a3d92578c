//! Three rhizomed processes on loopback: install kv-store, create a context, invite the other
//! two, write on every node; all converge to one root, and a WebSocket subscriber on every node
//! sees every write's event.

use rhizome_integration::{shared_context, start_cluster, wait_converged, Scratch};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITES_PER_NODE: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Starts a watcher thread on a node; returns the delta ids it has seen.
fn watch(api: rhizomed::client::ApiClient, context: String) -> Arc<Mutex<BTreeSet<String>>> {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _ = runtime.block_on(api.watch(&context, |event: Value| {
            if event["type"] == "applied" {
                if let Some(delta) = event["delta"].as_str() {
                    sink.lock().expect("lock").insert(delta.to_owned());
                }
            }
            true
        }));
    });
    seen
}

#[test]
fn three_nodes_converge_and_every_subscriber_sees_every_write() -> anyhow::Result<()> {
    let scratch = Scratch::new("three-nodes")?;
    let nodes = start_cluster(&scratch, 3, &[("RHIZOME_API__RATE_LIMIT__ENABLED", "false")])?;
    let context = shared_context(&nodes)?;
    let watchers: Vec<_> = nodes.iter().map(|node| watch(node.api.clone(), context.clone())).collect();

    // Warm up until every subscriber is live, so the writes below cannot race its connection.
    let deadline = Instant::now() + TIMEOUT;
    let mut round = 0;
    while watchers.iter().any(|seen| seen.lock().expect("lock").is_empty()) {
        anyhow::ensure!(Instant::now() < deadline, "subscribers never saw the warm-up writes");
        nodes[0].set(&context, "warm-up", &round.to_string())?;
        round += 1;
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut written = BTreeSet::new();
    for (index, node) in nodes.iter().enumerate() {
        for write in 0..WRITES_PER_NODE {
            written.insert(node.set(&context, &format!("n{index}-k{write}"), &format!("v{write}"))?);
        }
    }

    let all: Vec<_> = nodes.iter().collect();
    let status = wait_converged(&all, &context, TIMEOUT)?;
    for node in &nodes {
        for index in 0..nodes.len() {
            for write in 0..WRITES_PER_NODE {
                let value = node.get(&context, &format!("n{index}-k{write}"))?;
                assert_eq!(
                    value.as_deref(),
                    Some(format!("v{write}").as_str()),
                    "node {} key n{index}-k{write}",
                    node.info.peer_id
                );
            }
        }
    }
    let deadline = Instant::now() + TIMEOUT;
    for (index, seen) in watchers.iter().enumerate() {
        loop {
            let missing: Vec<String> = written.difference(&seen.lock().expect("lock")).cloned().collect();
            if missing.is_empty() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "node {index}'s subscriber missed {} events: {missing:?}",
                missing.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(status["root"].is_string(), "status names a root: {status}");
    Ok(())
}
