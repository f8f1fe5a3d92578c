//! Calls that reach the loop together share a delta: every one is acknowledged with that
//! delta, replicas apply them all, a restart keeps them, and `max_calls_per_delta` bounds it.

use crate::node_loop::{
    db_path, eventually, get, keypair, launch, launch_with, launch_with_committer, set, shared_context, Hub,
};
use rhizome_node::store::{CommitJob, CommitResult, Committer};
use rhizome_node::NodeConfig;
use std::collections::BTreeSet;

const CALLS: usize = 40;

/// Sends `CALLS` writes at once (all queued before the loop takes any) and returns each
/// call's delta.
async fn concurrent_writes(
    handle: &rhizome_node::NodeHandle,
    context: rhizome_core::ContextId,
) -> Vec<rhizome_core::DeltaId> {
    let calls: Vec<_> = (0..CALLS)
        .map(|index| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.call(context, "set", set(&format!("k{index}"), "v")).await })
        })
        .collect();
    let mut deltas = Vec::new();
    for call in calls {
        let reply = call.await.expect("the call task").expect("the call succeeds");
        deltas.push(reply.delta.expect("a write has a delta"));
    }
    deltas
}

/// Stops node 1 and starts it again from its database: every acknowledged call is still there.
async fn restart_keeps_everything(
    hub: &Hub,
    node: rhizome_node::NodeHandle,
    join: tokio::task::JoinHandle<()>,
    path: &std::path::Path,
) -> rhizome_node::NodeHandle {
    let before = node.status().await.unwrap().contexts[0].clone();
    node.shutdown().await.unwrap();
    join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(1).peer_id());
    let (node, _join) = launch(hub, 1, path);
    let after = node.status().await.unwrap().contexts[0].clone();
    assert_eq!((after.root, after.applied), (before.root, before.applied), "every acknowledged call survived");
    node
}

#[tokio::test(flavor = "current_thread")]
async fn calls_that_arrive_together_share_a_delta_and_all_replicate() {
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("batch-a.redb"), db_path("batch-b.redb"));
    let (a, a_join) = launch(&hub, 1, &a_path);
    let (b, _b_join) = launch(&hub, 2, &b_path);
    let context = shared_context(&a, &b, "kv_store", 11).await;

    let deltas = concurrent_writes(&a, context).await;
    let distinct: BTreeSet<_> = deltas.iter().collect();
    assert!(distinct.len() < CALLS, "{CALLS} calls queued together made {} deltas", distinct.len());
    let status = a.status().await.unwrap();
    assert_eq!(status.driver.calls_committed, CALLS as u64);
    assert_eq!(status.driver.call_deltas, distinct.len() as u64);
    eventually(|| async { get(&b, context, &format!("k{}", CALLS - 1)).await.is_some() }).await;
    for index in 0..CALLS {
        assert_eq!(get(&b, context, &format!("k{index}")).await.as_deref(), Some("v"), "k{index} on b");
    }

    let a = restart_keeps_everything(&hub, a, a_join, &a_path).await;
    assert_eq!(get(&a, context, "k0").await.as_deref(), Some("v"));
}

#[tokio::test(flavor = "current_thread")]
async fn max_calls_per_delta_bounds_the_batch() {
    let hub = Hub::default();
    let config = NodeConfig { max_calls_per_delta: 1, ..NodeConfig::default() };
    let (a, _a_join) = launch_with(&hub, 1, &db_path("single-a.redb"), config);
    let (b, _b_join) = launch(&hub, 2, &db_path("single-b.redb"));
    let context = shared_context(&a, &b, "kv_store", 12).await;
    let deltas = concurrent_writes(&a, context).await;
    assert_eq!(deltas.iter().collect::<BTreeSet<_>>().len(), CALLS, "a delta per call");
}

/// Runs commits on a thread of its own, each held up a little, so that the loop always has the
/// next batch staging while one is in flight (as on the daemon's commit thread, but slower).
struct SlowThreadCommitter {
    jobs: std::sync::mpsc::Sender<(CommitJob, tokio::sync::oneshot::Sender<CommitResult>)>,
}

impl SlowThreadCommitter {
    fn spawn() -> Box<dyn Committer> {
        let (jobs, queue) = std::sync::mpsc::channel::<(CommitJob, tokio::sync::oneshot::Sender<CommitResult>)>();
        // A test driver, standing in for rhizomed's commit thread; the node itself starts none.
        #[allow(clippy::disallowed_methods)]
        std::thread::spawn(move || {
            for (job, done) in queue {
                std::thread::sleep(std::time::Duration::from_millis(3));
                let _ = done.send(job.run());
            }
        });
        Box::new(Self { jobs })
    }
}

impl Committer for SlowThreadCommitter {
    fn start(&mut self, job: CommitJob, done: tokio::sync::oneshot::Sender<CommitResult>) {
        self.jobs.send((job, done)).expect("the commit thread runs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_commits_in_flight_calls_read_their_writes_and_nothing_acknowledged_is_lost() {
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("pipelined-a.redb"), db_path("pipelined-b.redb"));
    let (a, a_join) =
        launch_with_committer(&hub, 1, &a_path, NodeConfig::default(), Some(SlowThreadCommitter::spawn()));
    let (b, _b_join) = launch(&hub, 2, &b_path);
    let context = shared_context(&a, &b, "kv_store", 13).await;
    let mut events = a.subscribe(context).await.unwrap();

    let mut writers = Vec::new();
    for writer in 0..8 {
        let a = a.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..15 {
                let key = format!("w{writer}-{round}");
                a.call(context, "set", set(&key, "v")).await.expect("the call succeeds");
                // Acknowledged means durable and visible, whatever commit is in flight now.
                assert_eq!(get(&a, context, &key).await.as_deref(), Some("v"), "{key} read back");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let status = a.status().await.unwrap();
    assert_eq!(status.driver.calls_committed, 120);
    assert!(status.driver.commits < 120, "commits are shared: {}", status.driver.commits);

    // The subscriber saw every delta once.
    let mut seen = BTreeSet::new();
    while seen.len() < status.driver.call_deltas as usize {
        if let rhizome_node::NodeEvent::Applied { delta, local: true, .. } = events.next().await.expect("an event") {
            assert!(seen.insert(delta), "{delta} twice");
        }
    }

    restart_keeps_everything(&hub, a, a_join, &a_path).await;
    eventually(|| async { get(&b, context, "w7-14").await.is_some() }).await;
}
