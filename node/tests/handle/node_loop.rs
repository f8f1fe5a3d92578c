//! The node loop end to end on tokio, over an in-process loopback network: calls replicate,
//! subscribers see events, handlers run, and a restart restores everything from redb.

use rhizome_core::{ContextId, GossipVerdict, InboundRequestId, Keypair, PeerId, RequestId, Timestamp};
use rhizome_node::{
    start, Clock, GossipToken, NodeConfig, NodeEvent, NodeHandle, NodeParts, Transport, TransportEvent,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE_EVENTS: usize = 10_000;

pub(crate) fn app(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}; run `cargo xtask apps` first", path.display()))
}

/// Instant, lossless delivery between nodes of one test.
#[derive(Clone, Default)]
pub(crate) struct Hub {
    pub(crate) inboxes: Arc<Mutex<BTreeMap<PeerId, mpsc::Sender<TransportEvent>>>>,
    /// Inbound request id → requester and its request id.
    requests: Arc<Mutex<BTreeMap<u64, (PeerId, RequestId)>>>,
    next_request: Arc<Mutex<u64>>,
}

pub(crate) struct Loopback {
    me: PeerId,
    hub: Hub,
    inbox: mpsc::Receiver<TransportEvent>,
}

impl Hub {
    pub(crate) fn join(&self, me: PeerId) -> Loopback {
        let (sender, inbox) = mpsc::channel(QUEUE_EVENTS);
        let mut inboxes = self.inboxes.lock().unwrap();
        for (peer, other) in inboxes.iter() {
            let _ = other.try_send(TransportEvent::PeerUp(me));
            let _ = sender.try_send(TransportEvent::PeerUp(*peer));
        }
        inboxes.insert(me, sender);
        Loopback { me, hub: self.clone(), inbox }
    }

    fn send(&self, to: &PeerId, event: TransportEvent) -> bool {
        self.inboxes.lock().unwrap().get(to).is_some_and(|inbox| inbox.try_send(event).is_ok())
    }
}

impl Transport for Loopback {
    fn subscribe(&mut self, _context: ContextId) {}
    fn unsubscribe(&mut self, _context: ContextId) {}
    fn publish(&mut self, context: ContextId, bytes: Vec<u8>) {
        let peers: Vec<PeerId> = self.hub.inboxes.lock().unwrap().keys().copied().filter(|p| *p != self.me).collect();
        for peer in peers {
            self.hub.send(
                &peer,
                TransportEvent::Gossip { from: self.me, context, bytes: bytes.clone(), token: GossipToken::default() },
            );
        }
    }
    fn request(&mut self, to: PeerId, id: RequestId, bytes: Vec<u8>, _timeout: Duration) {
        let inbound = {
            let mut next = self.hub.next_request.lock().unwrap();
            *next += 1;
            *next
        };
        self.hub.requests.lock().unwrap().insert(inbound, (self.me, id));
        let event = TransportEvent::Request { from: self.me, id: InboundRequestId(inbound), bytes };
        if !self.hub.send(&to, event) {
            self.hub.send(
                &self.me,
                TransportEvent::RequestFailed { id, reason: rhizome_core::RequestFailure::Unreachable },
            );
        }
    }
    fn report_gossip(&mut self, _token: GossipToken, _verdict: GossipVerdict) {}
    fn respond(&mut self, _to: PeerId, id: InboundRequestId, bytes: Vec<u8>) {
        if let Some((requester, request)) = self.hub.requests.lock().unwrap().remove(&id.0) {
            self.hub.send(&requester, TransportEvent::Response { id: request, bytes });
        }
    }
    async fn next_event(&mut self) -> Option<TransportEvent> {
        self.inbox.recv().await
    }
    fn try_next_event(&mut self) -> Option<TransportEvent> {
        self.inbox.try_recv().ok()
    }
}

/// A fixed instant: the loop's timers never fire during these short tests, which is the point
/// (everything here is driven by messages).
pub(crate) struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(1_000)
    }
    fn wall_ms(&self) -> u64 {
        1_000_000
    }
}

pub(crate) fn keypair(n: u8) -> Keypair {
    Keypair::from_secret_bytes([n; 32])
}

fn open_db(path: &std::path::Path) -> redb::Database {
    redb::Database::create(path).expect("open database")
}

pub(crate) fn db_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rhizome-node-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

pub(crate) fn launch(hub: &Hub, n: u8, path: &std::path::Path) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    launch_with(hub, n, path, NodeConfig::default())
}

pub(crate) fn launch_with(
    hub: &Hub,
    n: u8,
    path: &std::path::Path,
    config: NodeConfig,
) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    launch_with_committer(hub, n, path, config, None)
}

pub(crate) fn launch_with_committer(
    hub: &Hub,
    n: u8,
    path: &std::path::Path,
    config: NodeConfig,
    committer: Option<Box<dyn rhizome_node::store::Committer>>,
) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    let keypair = keypair(n);
    let transport = hub.join(keypair.peer_id());
    let parts = NodeParts {
        config,
        keypair,
        rng_seed: u64::from(n),
        transport,
        clock: Arc::new(FixedClock),
        db: open_db(path),
        wasm: None,
        observer: None,
        committer,
    };
    let (handle, task) = start(parts).expect("start");
    let join = tokio::spawn(async move {
        task.run().await.expect("node loop");
    });
    (handle, join)
}

/// Installs `app_name` on both nodes (same app id), creates a context of the two on `a` and
/// joins `b` to it.
pub(crate) async fn shared_context(a: &NodeHandle, b: &NodeHandle, app_name: &str, nonce: u8) -> ContextId {
    let module = app(app_name);
    let app_id = a.install_app(module.clone()).await.unwrap();
    assert_eq!(b.install_app(module).await.unwrap(), app_id);
    let context = a.create_context(app_id, vec![b.author_key()], [nonce; 16]).await.unwrap();
    // No genesis: `b` fetches it from `a`, its bootstrap, and checks it against the id.
    let join = rhizome_node::JoinWith { bootstrap: vec![a.author_key()], genesis: None, keys: Vec::new() };
    b.join_context(context, app_id, join).await.unwrap();
    // `b` may write once its DAG names it a member: after its first sync with `a`.
    let me = b.author_key();
    eventually(|| async { b.status().await.unwrap().contexts[0].members.contains(&me) }).await;
    context
}

pub(crate) fn set(key: &str, value: &str) -> Vec<u8> {
    borsh::to_vec(&(key.to_owned(), value.to_owned())).unwrap()
}

pub(crate) async fn get(handle: &NodeHandle, context: ContextId, key: &str) -> Option<String> {
    let bytes = handle.query(context, "get", borsh::to_vec(&key.to_owned()).unwrap()).await.unwrap();
    borsh::from_slice(&bytes).unwrap()
}

pub(crate) async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn calls_replicate_subscribers_see_events_and_a_restart_restores_everything() {
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("a.redb"), db_path("b.redb"));
    let (a, a_join) = launch(&hub, 1, &a_path);
    let (b, _b_join) = launch(&hub, 2, &b_path);
    let context = shared_context(&a, &b, "kv_store", 7).await;
    let mut events = b.subscribe(context).await.unwrap();

    for index in 0..20 {
        let reply = a.call(context, "set", set(&format!("k{index}"), "v")).await.unwrap();
        assert!(reply.delta.is_some(), "a write is acknowledged with its delta");
    }
    eventually(|| async { get(&b, context, "k19").await.is_some() }).await;
    let first = events.next().await.unwrap();
    assert!(
        matches!(&first, NodeEvent::Applied { local: false, events, .. } if events[0].0 == "Inserted"),
        "{first:?}"
    );
    // Queries must not write; unknown contexts are typed errors.
    assert!(matches!(a.query(context, "set", set("x", "y")).await, Err(rhizome_node::ApiError::QueryWrote(_))));
    let unknown = ContextId::hash_of(b"nope");
    assert_eq!(a.call(unknown, "set", set("x", "y")).await, Err(rhizome_node::ApiError::UnknownContext(unknown)));
    // A failed call keeps the runtime's typed reason, so a client can tell a missing method apart.
    let missing = rhizome_runtime::CallError::NoSuchMethod("nope".to_owned());
    assert_eq!(a.call(context, "nope", Vec::new()).await, Err(rhizome_node::ApiError::Call(missing)));

    let before = a.status().await.unwrap().contexts[0].clone();
    a.shutdown().await.unwrap();
    a_join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(1).peer_id());

    let (a, _a_join) = launch(&hub, 1, &a_path);
    let after = a.status().await.unwrap().contexts[0].clone();
    assert_eq!((after.heads.clone(), after.root, after.applied), (before.heads, before.root, before.applied));
    assert_eq!(get(&a, context, "k3").await.as_deref(), Some("v"));
    // The restarted node keeps writing on top of its restored heads, and b takes it.
    a.call(context, "set", set("after", "restart")).await.unwrap();
    eventually(|| async { get(&b, context, "after").await.is_some() }).await;
    let (a_status, b_status) = (a.status().await.unwrap(), b.status().await.unwrap());
    assert_eq!(a_status.contexts[0].root, b_status.contexts[0].root);
    assert_eq!(a_status.contexts[0].heads, b_status.contexts[0].heads);
}

#[tokio::test]
async fn event_handlers_run_once_per_node_even_across_a_restart() {
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("ha.redb"), db_path("hb.redb"));
    let (a, _a_join) = launch(&hub, 3, &a_path);
    let (b, b_join) = launch(&hub, 4, &b_path);
    let context = shared_context(&a, &b, "todo", 1).await;
    for index in 0..5 {
        a.call(context, "add", borsh::to_vec(&format!("task {index}")).unwrap()).await.unwrap();
    }
    let seen = |handle: NodeHandle, node: [u8; 32]| async move {
        let bytes = handle.query(context, "seen_count", borsh::to_vec(&node).unwrap()).await.unwrap();
        borsh::from_slice::<i64>(&bytes).unwrap()
    };
    let b_key = *b.author_key().as_bytes();
    eventually(|| {
        let a = a.clone();
        async move { seen(a, b_key).await == 5 }
    })
    .await;
    b.shutdown().await.unwrap();
    b_join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(4).peer_id());
    let (b, _b_join) = launch(&hub, 4, &b_path);
    a.call(context, "add", borsh::to_vec(&"one more".to_owned()).unwrap()).await.unwrap();
    eventually(|| {
        let a = a.clone();
        async move { seen(a, b_key).await == 6 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(seen(b.clone(), b_key).await, 6, "each Added handled exactly once at b");
}

/// Regression: handler jobs beyond one pass waited for the node's next input, so a node that
/// caught up by sync and then heard nothing sat on them (convergence-100, seed 1: 58 jobs
/// for 5.6 s, until a timer fired). Here one pass runs a single job, ten jobs arrive in one
/// sync response, and the clock never fires a timer: all ten must still run.
#[tokio::test]
async fn handler_jobs_beyond_one_pass_run_without_waiting_for_another_input() {
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("ra.redb"), db_path("rb.redb"));
    let (a, _a_join) = launch(&hub, 5, &a_path);
    let (b, b_join) = launch(&hub, 6, &b_path);
    let context = shared_context(&a, &b, "todo", 2).await;
    let b_key = *b.author_key().as_bytes();
    let seen_at_b = move |b: NodeHandle| async move {
        let bytes = b.query(context, "seen_count", borsh::to_vec(&b_key).unwrap()).await.unwrap();
        borsh::from_slice::<i64>(&bytes).unwrap()
    };
    // One task while b is up, so that b holds history and catches up by deltas (a fresh
    // context would take a snapshot, which runs no handlers).
    a.call(context, "add", borsh::to_vec(&"first".to_owned()).unwrap()).await.unwrap();
    eventually(|| {
        let b = b.clone();
        async move { seen_at_b(b).await == 1 }
    })
    .await;
    b.shutdown().await.unwrap();
    b_join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(6).peer_id());
    for index in 0..10 {
        a.call(context, "add", borsh::to_vec(&format!("task {index}")).unwrap()).await.unwrap();
    }
    let config = NodeConfig { max_handler_runs_per_input: 1, ..NodeConfig::default() };
    let (b, _b_join) = launch_with(&hub, 6, &b_path, config);
    eventually(|| {
        let b = b.clone();
        async move { b.status().await.unwrap().contexts[0].handler_jobs == 0 && seen_at_b(b).await == 11 }
    })
    .await;
}

/// Data received from peers is staged, readable at once, and committed with the node's next
/// own write (or after `max_non_durable_ms`, which the fixed clock here never reaches). A
/// crash loses what was only staged, never an acknowledged write, and sync brings the rest
/// back; a clean shutdown commits everything.
#[tokio::test]
async fn received_data_waits_for_the_next_commit_and_a_crash_costs_only_that() {
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("da.redb"), db_path("db.redb"));
    let (a, _a_join) = launch(&hub, 7, &a_path);
    let (b, b_join) = launch(&hub, 8, &b_path);
    let context = shared_context(&a, &b, "kv_store", 3).await;
    b.call(context, "set", set("mine", "acknowledged")).await.unwrap();
    for index in 0..5 {
        a.call(context, "set", set(&format!("theirs{index}"), "v")).await.unwrap();
    }
    eventually(|| async { get(&b, context, "theirs4").await.is_some() }).await;
    assert_eq!(
        b.status().await.unwrap().contexts[0].applied,
        7,
        "the genesis, b's write and a's five, readable at once"
    );

    // Crash b: its task is dropped mid-flight, with a's deltas only staged.
    b_join.abort();
    let _ = b_join.await;
    hub.inboxes.lock().unwrap().remove(&keypair(8).peer_id());
    let a_inbox = hub.inboxes.lock().unwrap().remove(&keypair(7).peer_id()).unwrap();
    let (b, b_join) = launch(&hub, 8, &b_path);
    assert_eq!(get(&b, context, "mine").await.as_deref(), Some("acknowledged"), "an acknowledged write survives");
    assert_eq!(get(&b, context, "theirs4").await, None, "what was only staged is gone");

    // Back in touch with a, b fetches what it lost; a clean shutdown then keeps all of it.
    hub.inboxes.lock().unwrap().insert(keypair(7).peer_id(), a_inbox);
    b.shutdown().await.unwrap();
    b_join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(8).peer_id());
    let (b, b_join) = launch(&hub, 8, &b_path);
    eventually(|| async { get(&b, context, "theirs4").await.is_some() }).await;
    b.shutdown().await.unwrap();
    b_join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(8).peer_id());
    hub.inboxes.lock().unwrap().remove(&keypair(7).peer_id());
    let (b, _b_join) = launch(&hub, 8, &b_path);
    assert_eq!(get(&b, context, "theirs4").await.as_deref(), Some("v"), "committed by the clean shutdown");
}

/// A corrupt stored row stops the start with its typed reason: the node never panics on it,
/// and the daemon can say which row broke.
#[tokio::test]
async fn a_misfiled_or_lost_row_refuses_the_start_with_a_typed_error() {
    const DAG: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("dag");
    let hub = Hub::default();
    let (a_path, b_path) = (db_path("corrupt-a.redb"), db_path("corrupt-b.redb"));
    let (a, a_join) = launch(&hub, 5, &a_path);
    let (b, _b_join) = launch(&hub, 6, &b_path);
    let context = shared_context(&a, &b, "kv_store", 9).await;
    for index in 0..3 {
        a.call(context, "set", set(&format!("k{index}"), "v")).await.unwrap();
    }
    a.shutdown().await.unwrap();
    a_join.await.unwrap();
    hub.inboxes.lock().unwrap().remove(&keypair(5).peer_id());

    // The disk loses the context's newest DAG row.
    let db = open_db(&a_path);
    let txn = db.begin_write().unwrap();
    let rows = {
        let mut dag = txn.open_table(DAG).unwrap();
        let (start, mut end) = (context.as_bytes().to_vec(), context.as_bytes().to_vec());
        end.push(0xff);
        let keys: Vec<Vec<u8>> = redb::ReadableTable::range(&dag, start.as_slice()..end.as_slice())
            .unwrap()
            .map(|row| row.unwrap().0.value().to_vec())
            .collect();
        assert!(keys.len() >= 3, "every write's row was stored");
        dag.remove(keys[keys.len() - 1].as_slice()).unwrap();
        keys.len() as u64
    };
    txn.commit().unwrap();
    drop(db);

    let parts = NodeParts {
        config: NodeConfig::default(),
        keypair: keypair(5),
        rng_seed: 5,
        transport: hub.join(keypair(5).peer_id()),
        clock: Arc::new(FixedClock),
        db: open_db(&a_path),
        wasm: None,
        observer: None,
        committer: None,
    };
    let Err(error) = start(parts) else { panic!("a node started on a database that lost a row") };
    let expected = rhizome_node::store::StoreError::AppliedCountMismatch { context, stored: rows, found: rows - 1 };
    assert_eq!(error, rhizome_node::StartError::Storage(expected));
    assert_eq!(error.label(), "storage");
}
