//! Invitations and removal between real processes: a token joins a node that then reads what
//! was written before it came; a token works once, also after the joiner restarts; a removed
//! member's writes reach no one and what is written after the removal is unreadable to it.

use rhizome_integration::{invite_and_join, start_cluster, string_field, wait_converged, Scratch};
use serde_json::json;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` until it holds or `TIMEOUT` passes.
fn eventually(what: &str, mut check: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !check()? {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn member_count(node: &rhizome_integration::NodeProcess, context: &str) -> anyhow::Result<u64> {
    Ok(node.context_status(context)?["member_count"].as_u64().unwrap_or(0))
}

#[test]
fn a_token_joins_once_and_a_removed_member_is_cut_off() -> anyhow::Result<()> {
    let scratch = Scratch::new("invitations")?;
    let mut nodes = start_cluster(&scratch, 3, &[("RHIZOME_API__RATE_LIMIT__ENABLED", "false")])?;
    let app = nodes[0].install_kv_store()?;
    for node in &nodes[1..] {
        anyhow::ensure!(node.install_kv_store()? == app);
    }
    let created = nodes[0].api.post_json("/admin/contexts", &json!({"app": app}))?;
    let context = string_field(&created, "context")?;
    nodes[0].set(&context, "before", "the joins")?;

    // Node 1 joins by the CLI-equivalent path and reads the earlier write once synced.
    invite_and_join(&nodes[0], &nodes[1], &context)?;
    eventually("node 1 to read the earlier write", || Ok(nodes[1].get(&context, "before")?.is_some()))?;

    // Node 2's token works once, and still not again after node 2 restarts.
    let invited =
        nodes[0].api.post_json(&format!("/admin/contexts/{context}/invite"), &json!({"key": nodes[2].info.peer_id}))?;
    let token = string_field(&invited, "invitation")?;
    nodes[2].api.post_json("/admin/contexts/join", &json!({ "invitation": token }))?;
    let bootstrap = vec![nodes[0].p2p_address()];
    nodes[2].restart(&bootstrap)?;
    let again = nodes[2].api.post_json("/admin/contexts/join", &json!({ "invitation": token }));
    let refused = again.expect_err("a used token is refused").to_string();
    anyhow::ensure!(refused.contains("invitation_replayed"), "{refused}");

    let all: Vec<_> = nodes.iter().collect();
    eventually("all three to be members everywhere", || {
        Ok(all
            .iter()
            .map(|node| member_count(node, &context))
            .collect::<anyhow::Result<Vec<_>>>()?
            .iter()
            .all(|n| *n == 3))
    })?;
    nodes[2].set(&context, "from", "node 2")?;
    wait_converged(&all, &context, TIMEOUT)?;

    // Node 0 removes node 2; node 1 learns it.
    let removed = nodes[0]
        .api
        .post_json(&format!("/admin/contexts/{context}/remove"), &json!({"keys": [nodes[2].info.peer_id]}))?;
    anyhow::ensure!(removed["members"].as_array().map(Vec::len) == Some(2), "{removed}");
    eventually("node 1 to apply the removal", || Ok(member_count(&nodes[1], &context)? == 2))?;

    // What node 0 writes now is sealed under a key node 2 was not given.
    nodes[0].set(&context, "after", "the removal")?;
    eventually("node 1 to read the new write", || Ok(nodes[1].get(&context, "after")?.is_some()))?;
    // Whatever node 2 writes now (its own node may refuse it already) reaches no one.
    let _ = nodes[2].set(&context, "late", "write");
    std::thread::sleep(Duration::from_secs(3));
    anyhow::ensure!(nodes[2].get(&context, "after")?.is_none(), "the removed node reads a write sealed after it left");
    for node in &nodes[..2] {
        anyhow::ensure!(node.get(&context, "late")?.is_none(), "a member took the removed node's write");
    }
    anyhow::ensure!(nodes[1].get(&context, "from")?.as_deref() == Some("node 2"), "its earlier write stays");
    drop(nodes.pop());
    Ok(())
}
