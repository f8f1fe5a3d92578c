//! kill -9 of a node in the middle of writes, then a restart: no acknowledged write is lost, and
//! the node catches up on what the other wrote while it was down.

use rhizome_integration::{shared_context, start_cluster, wait_converged, Scratch};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACKED_BEFORE_KILL: usize = 150;
const WRITES_WHILE_DOWN: usize = 40;
const TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn a_node_killed_mid_writes_keeps_every_acknowledged_write_and_catches_up() -> anyhow::Result<()> {
    let scratch = Scratch::new("kill-restart")?;
    let mut nodes = start_cluster(&scratch, 2, &[("RHIZOME_API__RATE_LIMIT__ENABLED", "false")])?;
    let context = shared_context(&nodes)?;

    // A writer hammers node 0 and records every write the API acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let api = nodes[0].api.clone();
        let (acknowledged, stop, context) = (acknowledged.clone(), stop.clone(), context.clone());
        std::thread::spawn(move || {
            let mut index = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("a{index}");
                let params = serde_json::json!({"context": context, "method": "set", "args": [key, "x"]});
                if api.rpc("call", params).is_ok() {
                    acknowledged.lock().expect("lock").push(key);
                }
                index += 1;
            }
        })
    };
    while acknowledged.lock().expect("lock").len() < ACKED_BEFORE_KILL {
        std::thread::sleep(Duration::from_millis(5));
    }
    nodes[0].kill9();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    let acknowledged = acknowledged.lock().expect("lock").clone();

    for index in 0..WRITES_WHILE_DOWN {
        nodes[1].set(&context, &format!("b{index}"), "y")?;
    }
    let peer = nodes[1].p2p_address();
    nodes[0].restart(&[peer])?;

    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|key| !matches!(nodes[0].get(&context, key), Ok(Some(value)) if value == "x"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost on restart: {missing:?}",
        missing.len(),
        acknowledged.len()
    );

    let both: Vec<_> = nodes.iter().collect();
    wait_converged(&both, &context, TIMEOUT)?;
    for index in 0..WRITES_WHILE_DOWN {
        assert_eq!(nodes[0].get(&context, &format!("b{index}"))?.as_deref(), Some("y"), "caught up on b{index}");
    }
    for key in &acknowledged {
        assert_eq!(nodes[1].get(&context, key)?.as_deref(), Some("x"), "the other node holds {key}");
    }
    Ok(())
}
