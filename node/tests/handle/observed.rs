//! Local commands reach the core through the same door as the network's inputs, so an
//! observer (the simulator's trace recorder, rhizomed's apply timer) sees every one of them.

use crate::node_loop::{app, db_path, keypair, set, FixedClock, Hub};
use rhizome_core::{Input, Output, Timestamp};
use rhizome_node::{start, NodeParts, Observer};
use std::sync::{Arc, Mutex};

/// Records the kind of every input the loop feeds the core.
struct Kinds(Arc<Mutex<Vec<&'static str>>>);

impl Observer for Kinds {
    fn on_input(&mut self, _now: rhizome_core::Clocks, input: &Input) {
        let kind = match input {
            Input::Create { .. } => "create",
            Input::Join { .. } => "join",
            Input::ChangeMembers { .. } => "change_members",
            Input::Leave { .. } => "leave",
            Input::LocalWrite { basis: Some(_), .. } => "checked_write",
            Input::LocalWrite { basis: None, .. } => "unchecked_write",
            Input::RetryQuarantined { .. } => "retry",
            _ => "other",
        };
        self.0.lock().unwrap().push(kind);
    }

    fn on_output(&mut self, _now: Timestamp, _output: &Output) {}
}

#[tokio::test]
async fn the_observer_sees_joins_member_changes_and_checked_writes() {
    let hub = Hub::default();
    let keypair = keypair(11);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let parts = NodeParts {
        config: Default::default(),
        transport: hub.join(keypair.peer_id()),
        keypair,
        rng_seed: 11,
        clock: Arc::new(FixedClock),
        db: redb::Database::create(db_path("observed.redb")).unwrap(),
        wasm: None,
        observer: Some(Box::new(Kinds(seen.clone()))),
        committer: None,
    };
    let (node, task) = start(parts).expect("start");
    let join = tokio::spawn(async move { task.run().await.expect("node loop") });
    let app = node.install_app(app("kv_store")).await.unwrap();
    let me = node.author_key();
    let context = node.create_context(app, vec![me], [3; 16]).await.unwrap();
    node.call(context, "set", set("k", "v")).await.unwrap();
    node.add_members(context, vec![rhizome_core::Keypair::from_secret_bytes([9; 32]).author_key()]).await.unwrap();
    node.shutdown().await.unwrap();
    join.await.unwrap();
    let seen: Vec<&str> = seen.lock().unwrap().iter().copied().filter(|kind| *kind != "other").collect();
    assert_eq!(seen, ["create", "checked_write", "change_members"], "every local command, in order, checked");
}
