//! Invitations through the node handle: a token issued by a member lets exactly its invitee
//! join (and read what was sealed before it joined), once, even across a restart; expired,
//! tampered and misaddressed tokens are refused with their reason.

use crate::node_loop::{app, db_path, eventually, get, launch, set, Hub};
use rhizome_core::seal::{InvitationError, SignedInvitation};
use rhizome_core::Role;
use rhizome_node::{ApiError, InviteOffer, NodeHandle};

fn offer(invitee: &NodeHandle, id: u8, ttl_ms: u64) -> InviteOffer {
    InviteOffer {
        invitee: invitee.author_key(),
        role: Role::Member,
        invitation_id: [id; 16],
        ttl_ms,
        bootstrap: vec!["/ip4/127.0.0.1/udp/4001/quic-v1".to_owned()],
    }
}

fn refused(result: Result<rhizome_node::InvitationJoined, ApiError>) -> &'static str {
    match result {
        Err(ApiError::Invitation(error)) => error.label(),
        other => panic!("expected an invitation refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invited_node_joins_reads_and_writes_and_no_token_works_twice() {
    let hub = Hub::default();
    let (a, _a_loop) = launch(&hub, 31, &db_path("invite-a.redb"));
    let b_path = db_path("invite-b.redb");
    let (b, b_loop) = launch(&hub, 32, &b_path);
    let (c, _c_loop) = launch(&hub, 33, &db_path("invite-c.redb"));
    let module = app("kv_store");
    let app_id = a.install_app(module.clone()).await.unwrap();
    b.install_app(module.clone()).await.unwrap();
    c.install_app(module).await.unwrap();
    let context = a.create_context(app_id, Vec::new(), [3; 16]).await.unwrap();
    a.call(context, "set", set("before", "b joined")).await.unwrap();

    let invited = a.invite(context, offer(&b, 1, 60_000)).await.unwrap();
    assert!(invited.members.contains(&b.author_key()), "the invite added b");
    let token = invited.invitation;
    assert_eq!(token.invitation.expires_at_ms, 1_000_000 + 60_000, "the node clock's wall time plus the ttl");
    // The text form is what travels; read it back as a joiner does.
    let token = SignedInvitation::from_text(&token.to_text()).unwrap();

    assert_eq!(refused(c.join_by_invitation(token.clone()).await), "wrong_invitee", "c holds b's token");
    let mut tampered = token.clone();
    tampered.invitation.role = Role::Admin;
    assert_eq!(refused(b.join_by_invitation(tampered).await), "forged");

    let joined = b.join_by_invitation(token.clone()).await.unwrap();
    assert_eq!((joined.context, joined.app, joined.inviter), (context, app_id, a.author_key()));
    assert_eq!(joined.bootstrap, vec!["/ip4/127.0.0.1/udp/4001/quic-v1".to_owned()]);
    eventually(|| async { get(&b, context, "before").await.as_deref() == Some("b joined") }).await;
    let me = b.author_key();
    eventually(|| async { b.status().await.unwrap().contexts[0].members.contains(&me) }).await;
    b.call(context, "set", set("from", "b")).await.unwrap();
    eventually(|| async { get(&a, context, "from").await.as_deref() == Some("b") }).await;

    assert_eq!(refused(b.join_by_invitation(token.clone()).await), "replayed");
    b.shutdown().await.unwrap();
    b_loop.await.unwrap();
    let (b, _b_loop) = launch(&hub, 32, &b_path);
    assert_eq!(refused(b.join_by_invitation(token).await), "replayed", "the used id survived the restart");

    // A token whose time is up: issued with no time to live, presented at the same instant.
    let expired = a.invite(context, offer(&c, 2, 0)).await.unwrap().invitation;
    assert_eq!(refused(c.join_by_invitation(expired).await), "expired");
    assert!(matches!(a.invite(context, offer(&a, 3, 1)).await, Err(ApiError::Refused(_))), "not oneself");
}

#[tokio::test]
async fn two_concurrent_invites_both_take_effect() {
    let hub = Hub::default();
    let (a, _a_loop) = launch(&hub, 41, &db_path("invite-concurrent-a.redb"));
    let (b, _b_loop) = launch(&hub, 42, &db_path("invite-concurrent-b.redb"));
    let (c, _c_loop) = launch(&hub, 43, &db_path("invite-concurrent-c.redb"));
    let app_id = a.install_app(app("kv_store")).await.unwrap();
    let context = a.create_context(app_id, Vec::new(), [4; 16]).await.unwrap();
    let (to_b, to_c) = tokio::join!(a.invite(context, offer(&b, 1, 60_000)), a.invite(context, offer(&c, 2, 60_000)));
    let (to_b, to_c) = (to_b.unwrap(), to_c.unwrap());
    let members = a.status().await.unwrap().contexts[0].members.clone();
    assert!(members.contains(&b.author_key()) && members.contains(&c.author_key()), "{members:?}");
    assert_eq!(members.len(), 3);
    assert_ne!(to_b.invitation.invitation.invitee, to_c.invitation.invitation.invitee);
    // An admin invitation grants the admin role (the same key invited again only changes it).
    a.invite(context, InviteOffer { role: Role::Admin, ..offer(&b, 5, 60_000) }).await.unwrap();
    assert!(a.status().await.unwrap().contexts[0].admins.contains(&b.author_key()));
}

#[test]
fn refusals_keep_their_reason() {
    let error = ApiError::Invitation(InvitationError::Replayed);
    assert!(error.to_string().contains("already used"), "{error}");
}
