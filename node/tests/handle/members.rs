//! Membership through the node handle: adding and removing members authors signed membership
//! deltas, the list is what the DAG gives, and it survives a restart; `apps` lists what is
//! installed.

use crate::node_loop::{app, db_path, launch, Hub};
use rhizome_core::{ContextId, MemberOp};
use rhizome_node::ApiError;

#[tokio::test]
async fn member_changes_are_deltas_and_survive_a_restart() {
    // A hub nobody else joins: the node is alone, which is all these checks need.
    let hub = Hub::default();
    let path = db_path("members.redb");
    let (node, join) = launch(&hub, 9, &path);
    assert_eq!(node.apps().await.unwrap(), Vec::new(), "nothing installed yet");
    let app = node.install_app(app("kv_store")).await.unwrap();
    assert_eq!(node.apps().await.unwrap(), vec![app]);
    let me = node.author_key();
    let context = node.create_context(app, Vec::new(), [1; 16]).await.unwrap();
    let status = node.status().await.unwrap();
    assert_eq!((status.contexts[0].members.clone(), status.contexts[0].admins.clone()), (vec![me], vec![me]));
    assert_eq!(status.contexts[0].applied, 1, "the genesis");

    // Real public keys: the context key is wrapped to each member.
    let real = |seed: u8| rhizome_core::Keypair::from_secret_bytes([seed; 32]).author_key();
    let (guest, other) = (real(7), real(8));
    let mut both = vec![me, guest, other];
    both.sort();
    assert_eq!(node.add_members(context, vec![guest, other, guest]).await.unwrap(), both);
    assert_eq!(node.add_members(context, vec![guest]).await.unwrap(), both, "already a member: no delta");
    assert_eq!(node.status().await.unwrap().contexts[0].applied, 2, "one membership delta for both");
    node.change_members(context, vec![MemberOp::Remove(other)]).await.unwrap();
    let mut kept = vec![me, guest];
    kept.sort();
    assert_eq!(node.status().await.unwrap().contexts[0].members, kept);
    let unknown = ContextId::hash_of(b"nope");
    assert_eq!(node.add_members(unknown, vec![guest]).await, Err(ApiError::UnknownContext(unknown)));
    assert!(matches!(node.change_members(context, Vec::new()).await, Err(ApiError::Refused(_))), "no ops");
    assert!(
        matches!(node.change_members(context, vec![MemberOp::Remove(me)]).await, Err(ApiError::Refused(_))),
        "the last admin cannot go"
    );

    node.shutdown().await.unwrap();
    join.await.unwrap();
    let (node, _join) = launch(&hub, 9, &path);
    let restored = node.status().await.unwrap();
    assert_eq!(restored.contexts[0].members, kept, "the membership deltas were committed");
    assert_eq!(restored.contexts[0].admins, vec![me]);
    assert_eq!(node.apps().await.unwrap(), vec![app]);
}
