//! Membership changes through the node handle: `set_members` replaces a joined context's list in
//! the core and on disk, and `apps` lists what is installed.

use crate::node_loop::{app, db_path, launch, Hub};
use rhizome_core::{AuthorKey, ContextId};
use rhizome_node::ApiError;

#[tokio::test]
async fn set_members_replaces_the_list_and_survives_a_restart() {
    // A hub nobody else joins: the node is alone, which is all these checks need.
    let hub = Hub::default();
    let path = db_path("members.redb");
    let (node, join) = launch(&hub, 9, &path);
    assert_eq!(node.apps().await.unwrap(), Vec::new(), "nothing installed yet");
    let app = node.install_app(app("kv_store")).await.unwrap();
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
    let (node, _join) = launch(&hub, 9, &path);
    let restored = node.status().await.unwrap();
    assert_eq!(restored.contexts[0].members, vec![me, guest], "the new list was committed");
    assert_eq!(node.apps().await.unwrap(), vec![app]);
}
