//! Membership changes through the node handle: `set_members` replaces a joined context's list in
//! the core and on disk, and `apps` lists what is installed.

use rhizome_core::{AuthorKey, ContextId, InboundRequestId, Keypair, PeerId, RequestId, Timestamp};
use rhizome_node::{start, ApiError, Clock, NodeConfig, NodeHandle, NodeParts, Transport, TransportEvent};
use std::sync::Arc;
use std::time::Duration;

fn kv_store() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm/kv_store.wasm");
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}; run `cargo xtask apps` first", path.display()))
}

/// A network with nobody on it.
struct Offline;

impl Transport for Offline {
    fn subscribe(&mut self, _context: ContextId) {}
    fn unsubscribe(&mut self, _context: ContextId) {}
    fn publish(&mut self, _context: ContextId, _bytes: Vec<u8>) {}
    fn request(&mut self, _to: PeerId, _id: RequestId, _bytes: Vec<u8>, _timeout: Duration) {}
    fn respond(&mut self, _to: PeerId, _id: InboundRequestId, _bytes: Vec<u8>) {}
    async fn next_event(&mut self) -> Option<TransportEvent> {
        std::future::pending().await
    }
    fn try_next_event(&mut self) -> Option<TransportEvent> {
        None
    }
}

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(1_000)
    }
}

fn launch(path: &std::path::Path) -> (NodeHandle, tokio::task::JoinHandle<()>) {
    let parts = NodeParts {
        config: NodeConfig::default(),
        keypair: Keypair::from_secret_bytes([9; 32]),
        rng_seed: 9,
        transport: Offline,
        clock: Arc::new(FixedClock),
        db: redb::Database::create(path).expect("open database"),
        wasm: None,
        observer: None,
    };
    let (handle, task) = start(parts).expect("start");
    let join = tokio::spawn(async move {
        task.run().await.expect("node loop");
    });
    (handle, join)
}

#[tokio::test]
async fn set_members_replaces_the_list_and_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("rhizome-node-members-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("members.redb");
    let _ = std::fs::remove_file(&path);

    let (node, join) = launch(&path);
    assert_eq!(node.apps().await.unwrap(), Vec::new(), "nothing installed yet");
    let app = node.install_app(kv_store()).await.unwrap();
    assert_eq!(node.apps().await.unwrap(), vec![app]);
    let me = node.author_key();
    let context = node.create_context(app, vec![me], [1; 16]).await.unwrap();

    let guest = AuthorKey::from_bytes([7; 32]);
    node.set_members(context, vec![me, guest]).await.unwrap();
    assert_eq!(node.status().await.unwrap().contexts[0].members, vec![me, guest]);
    let unknown = ContextId::hash_of(b"nope");
    assert_eq!(node.set_members(unknown, vec![me]).await, Err(ApiError::UnknownContext(unknown)));
    assert!(
        matches!(node.set_members(context, Vec::new()).await, Err(ApiError::Refused(_))),
        "the core refuses an empty list"
    );

    node.shutdown().await.unwrap();
    join.await.unwrap();
    let (node, _join) = launch(&path);
    let restored = node.status().await.unwrap();
    assert_eq!(restored.contexts[0].members, vec![me, guest], "the new list was committed");
    assert_eq!(node.apps().await.unwrap(), vec![app]);
}
