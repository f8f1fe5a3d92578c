//! A fresh node joins a context with a 10,000-delta history and catches up (by snapshot, or by
//! pulling the parents of the gossip it receives first).

use rhizome_integration::{string_field, wait_converged, NodeProcess, Scratch};
use serde_json::json;
use std::time::Duration;

const HISTORY_DELTAS: usize = 10_000;
const WRITER_THREADS: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn a_fresh_node_catches_up_on_a_ten_thousand_delta_history() -> anyhow::Result<()> {
    let scratch = Scratch::new("late-joiner")?;
    let env = [("RHIZOME_API__RATE_LIMIT__ENABLED", "false")];
    let old = NodeProcess::start(&scratch.path().join("old"), &[], &env)?;
    let app = old.install_kv_store()?;
    let context = string_field(&old.api.post_json("/admin/contexts", &json!({"app": app}))?, "context")?;

    std::thread::scope(|scope| -> anyhow::Result<()> {
        let writers: Vec<_> = (0..WRITER_THREADS)
            .map(|thread| {
                let (old, context) = (&old, &context);
                scope.spawn(move || -> anyhow::Result<()> {
                    for index in (thread..HISTORY_DELTAS).step_by(WRITER_THREADS) {
                        old.set(context, &format!("k{index}"), &format!("v{index}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for writer in writers {
            writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    let applied = old.context_status(&context)?["applied"].as_u64().unwrap_or(0);
    assert!(applied >= HISTORY_DELTAS as u64, "history holds {applied} deltas");

    let fresh = NodeProcess::start(&scratch.path().join("fresh"), &[old.p2p_address()], &env)?;
    assert_eq!(fresh.install_kv_store()?, app);
    let invited =
        old.api.post_json(&format!("/admin/contexts/{context}/invite"), &json!({"keys": [fresh.info.peer_id]}))?;
    fresh.api.post_json("/admin/contexts/join", &json!({"invitation": invited["invitation"]}))?;

    wait_converged(&[&old, &fresh], &context, TIMEOUT)?;
    for index in [0, HISTORY_DELTAS / 2, HISTORY_DELTAS - 1] {
        assert_eq!(fresh.get(&context, &format!("k{index}"))?, Some(format!("v{index}")));
    }
    // Which path caught it up: a snapshot, or (when the old node's publish retry queue replays
    // its recent gossip to the new subscriber first) pulling the missing parents of that gossip.
    // Either way every delta must be there; the snapshot path is not yet guaranteed (see the
    // issue 5 note).
    let status = fresh.api.get("/admin/status")?;
    let counter =
        |name: &str| status.pointer(&format!("/counters/{name}")).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let (snapshots, received) = (counter("snapshots_adopted"), counter("deltas_received"));
    assert!(
        snapshots >= 1 || received >= HISTORY_DELTAS as u64,
        "the fresh node holds the history without a snapshot or the deltas: {status}"
    );
    Ok(())
}
