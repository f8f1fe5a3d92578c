//! A fresh node joins a context with a 10,000-delta history and catches up through a snapshot.

use rhizome_integration::{string_field, wait_converged, NodeProcess, Scratch};
use serde_json::json;
use std::time::Duration;

const HISTORY_DELTAS: usize = 10_000;
const WRITER_THREADS: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn a_fresh_node_catches_up_on_a_ten_thousand_delta_history() -> anyhow::Result<()> {
    let scratch = Scratch::new("late-joiner")?;
    // A delta per call: concurrent writers would otherwise share deltas, and the history would
    // be shorter than its 10,000 calls.
    let env = [("RHIZOME_API__RATE_LIMIT__ENABLED", "false"), ("RHIZOME_NODE__MAX_CALLS_PER_DELTA", "1")];
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
    rhizome_integration::invite_and_join(&old, &fresh, &context)?;

    wait_converged(&[&old, &fresh], &context, TIMEOUT)?;
    for index in [0, HISTORY_DELTAS / 2, HISTORY_DELTAS - 1] {
        assert_eq!(fresh.get(&context, &format!("k{index}"))?, Some(format!("v{index}")));
    }
    // A history this long (over the 2,000-delta gap threshold) comes as a snapshot, whether the
    // first thing the fresh node hears is a replayed gossip delta or a heartbeat.
    let status = fresh.api.get("/admin/status")?;
    let snapshots = status.pointer("/counters/snapshots_adopted").and_then(serde_json::Value::as_u64).unwrap_or(0);
    assert!(snapshots >= 1, "the fresh node caught up without a snapshot: {status}");
    Ok(())
}
