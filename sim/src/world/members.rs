//! Membership events: the admin (node 0, the genesis author) adds or removes a member at the
//! scenario's times, whatever partition it is in. The change is authored locally and spreads
//! when the network lets it. An invited node is then handed an invitation the admin issues,
//! and joins by it through the node's join-by-invitation path: it first presents a forged copy
//! (the role raised to admin, which the admin never signed), then the token, then the token
//! again (a replay).

use super::adversary::Adversaries;
use super::cluster::Cluster;
use crate::checks::adversaries::{InvitationSteps, InvitationTrial};
use crate::record::SharedRecorder;
use crate::roles::{MemberEvent, MemberEventKind};
use rhizome_core::{MemberOp, Role};
use rhizome_node::{InviteOffer, NodeHandle};

/// How long an issued invitation may be accepted.
const INVITATION_TTL_MS: u64 = 3_600_000;

/// Authors `event` on node 0 and records the delta (a removal also for the forgers).
pub(super) async fn apply(
    event: &MemberEvent,
    cluster: &Cluster,
    adversaries: &Adversaries,
    recorder: &SharedRecorder,
) {
    let key = cluster.keypair(event.node).author_key();
    let op = match event.kind {
        MemberEventKind::AddMember => MemberOp::Add(key, Role::Member),
        MemberEventKind::RemoveMember => MemberOp::Remove(key),
    };
    let admin = cluster.slots[0].answering();
    let result = match &admin {
        Some(admin) => admin.change_members(cluster.shared.context, vec![op]).await.map_err(|error| error.to_string()),
        None => Err("the admin (n0) is down or paused".to_owned()),
    };
    let now = cluster.shared.start.elapsed();
    match &result {
        Ok(id) => {
            recorder.note(now, format!("membership: {} as {id}", event.label()));
            if event.kind == MemberEventKind::RemoveMember {
                adversaries.removals.lock().unwrap_or_else(|p| p.into_inner()).insert(event.node, *id);
            }
        }
        Err(error) => recorder.note(now, format!("membership: {} failed: {error}", event.label())),
    }
    let invited = event.kind == MemberEventKind::AddMember && cluster.roles.invited.contains(&event.node);
    if let (true, Ok(_), Some(admin)) = (invited, &result, &admin) {
        let steps = join_by_invitation(event.node, cluster, admin).await;
        let now = cluster.shared.start.elapsed();
        recorder.note(now, format!("invitation: n{} {steps:?}", event.node));
        adversaries
            .invitations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(InvitationTrial { node: event.node, steps });
    }
    adversaries.events.lock().unwrap_or_else(|p| p.into_inner()).push((event.label(), result));
}

/// The admin invites `node` (already added: the invitation adds nobody), and `node` presents a
/// forged copy of the token, the token, and the token again.
async fn join_by_invitation(node: usize, cluster: &Cluster, admin: &NodeHandle) -> Result<InvitationSteps, String> {
    let context = cluster.shared.context;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"rhizome-sim/invitation-id");
    hasher.update(&cluster.shared.seed.to_le_bytes());
    hasher.update(&(node as u64).to_le_bytes());
    let mut invitation_id = [0; 16];
    invitation_id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    let offer = InviteOffer {
        invitee: cluster.keypair(node).author_key(),
        role: Role::Member,
        invitation_id,
        ttl_ms: INVITATION_TTL_MS,
        bootstrap: Vec::new(),
    };
    let token = admin.invite(context, offer).await.map_err(|error| format!("the admin could not invite: {error}"))?;
    let token = token.invitation;
    let joiner = cluster.slots[node].answering().ok_or_else(|| format!("n{node} is down or paused"))?;
    let mut forged = token.clone();
    forged.invitation.role = Role::Admin;
    let forged = joiner.join_by_invitation(forged).await.map(drop);
    let status = joiner.status().await.map_err(|error| format!("n{node}: {error}"))?;
    let joined_after_forged = status.contexts.iter().any(|state| state.context == context);
    let genuine = joiner.join_by_invitation(token.clone()).await.map(drop);
    let replayed = joiner.join_by_invitation(token).await.map(drop);
    Ok(InvitationSteps { forged, joined_after_forged, genuine, replayed })
}
