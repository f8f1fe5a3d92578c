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
use rhizome_core::{ContextId, MemberOp, Role, SignedInvitation};
use rhizome_node::{InviteOffer, NodeHandle};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an issued invitation may be accepted.
const INVITATION_TTL_MS: u64 = 3_600_000;
/// How often an invited node that is down is looked at again.
const RETRY_EVERY: Duration = Duration::from_millis(100);

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
        let node = event.node;
        match invite(node, cluster, admin).await {
            Ok(token) => {
                let joiner = Joiner {
                    node,
                    token,
                    context: cluster.shared.context,
                    handle: cluster.handle_slots()[node].clone(),
                    trials: adversaries.invitations.clone(),
                    recorder: recorder.clone(),
                    start: cluster.shared.start,
                };
                tokio::spawn(joiner.run());
            }
            Err(error) => {
                let trial = InvitationTrial { node, steps: Err(error) };
                adversaries.invitations.lock().unwrap_or_else(|p| p.into_inner()).push(trial);
            }
        }
    }
    adversaries.events.lock().unwrap_or_else(|p| p.into_inner()).push((event.label(), result));
}

/// The admin's invitation of `node`, already added (so the invitation adds nobody), with an
/// id drawn from the seed.
async fn invite(node: usize, cluster: &Cluster, admin: &NodeHandle) -> Result<SignedInvitation, String> {
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
    let invited = admin.invite(cluster.shared.context, offer).await;
    invited.map(|invited| invited.invitation).map_err(|error| format!("the admin could not invite: {error}"))
}

/// An invited node with its token: once its node runs, it presents a forged copy, the token,
/// and the token again.
struct Joiner {
    node: usize,
    token: SignedInvitation,
    context: ContextId,
    handle: Arc<Mutex<Option<NodeHandle>>>,
    trials: Arc<Mutex<Vec<InvitationTrial>>>,
    recorder: SharedRecorder,
    start: tokio::time::Instant,
}

impl Joiner {
    async fn run(self) {
        // A node that is down when it is invited joins once it is back.
        let joiner = loop {
            if let Some(handle) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                break handle;
            }
            tokio::time::sleep(RETRY_EVERY).await;
        };
        let steps = self.steps(&joiner).await;
        self.recorder.note(self.start.elapsed(), format!("invitation: n{} {steps:?}", self.node));
        self.trials.lock().unwrap_or_else(|p| p.into_inner()).push(InvitationTrial { node: self.node, steps });
    }

    async fn steps(&self, joiner: &NodeHandle) -> Result<InvitationSteps, String> {
        let mut forged = self.token.clone();
        forged.invitation.role = Role::Admin;
        let forged = joiner.join_by_invitation(forged).await.map(drop);
        let status = joiner.status().await.map_err(|error| format!("n{}: {error}", self.node))?;
        let joined_after_forged = status.contexts.iter().any(|state| state.context == self.context);
        let genuine = joiner.join_by_invitation(self.token.clone()).await.map(drop);
        let replayed = joiner.join_by_invitation(self.token.clone()).await.map(drop);
        Ok(InvitationSteps { forged, joined_after_forged, genuine, replayed })
    }
}
