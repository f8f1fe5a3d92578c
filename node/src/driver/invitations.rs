//! Invitations: issuing a signed token for a new member (adding it first), and joining a
//! context by a token addressed to this node. Both run in the loop: the identity keypair, the
//! context keys and the replay store live here.

use super::NodeTask;
use crate::api::{ApiError, InvitationJoined, InviteOffer, Invited, JoinWith};
use crate::transport::Transport;
use rhizome_core::seal::{Invitation, InvitationTerms, SignedInvitation};
use rhizome_core::{ContextId, MemberOp};
use rhizome_runtime::AppId;

/// The furthest off an invitation may expire, from the joiner's wall clock: 30 days. The
/// daemon refuses to issue longer ones, and a joiner refuses a token that names a later expiry
/// (its id would hold a replay slot until then).
pub const MAX_INVITATION_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

impl<T: Transport> NodeTask<T> {
    pub(super) fn invite(&mut self, context: ContextId, offer: InviteOffer) -> Result<Invited, ApiError> {
        let dag = self.node.dag(&context).ok_or(ApiError::UnknownContext(context))?;
        let app = self.records.get(&context).ok_or(ApiError::UnknownContext(context))?.app;
        if offer.invitee == self.keypair.author_key() {
            return Err(ApiError::Refused("a node cannot invite itself".to_owned()));
        }
        let has_role = dag.members().members().get(&offer.invitee) == Some(&offer.role);
        let InviteOffer { invitee, role, invitation_id, ttl_ms, bootstrap } = offer;
        let now_ms = self.clock.clocks().wall_ms;
        let terms = InvitationTerms {
            context,
            app: app.0,
            invitee,
            role,
            invitation_id,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            bootstrap,
        };
        let issue = |task: &Self| {
            let key = task.node.current_key(&context).ok_or_else(|| {
                ApiError::Refused("this node holds no context key every member holds yet; retry after a sync".into())
            })?;
            Invitation::issue(&task.keypair, terms.clone(), &key).map_err(ApiError::Invitation)
        };
        // Issued once before the membership changes, so terms the token cannot carry (a key
        // that is no curve point, too many addresses) refuse the invite without adding anyone.
        let mut invitation = issue(self)?;
        if !has_role {
            // One step of the loop, as `add_members`: a concurrent invite cannot interleave.
            self.change_members(context, vec![MemberOp::Add(invitee, role)])?;
            // The add grants the newcomer the current key, so it is usually the same one; the
            // token carries whichever a write on the new heads is sealed under.
            invitation = issue(self)?;
        }
        let dag = self.node.dag(&context).ok_or(ApiError::UnknownContext(context))?;
        Ok(Invited { invitation, members: dag.members().members().keys().copied().collect() })
    }

    pub(super) fn join_by_invitation(&mut self, invitation: &SignedInvitation) -> Result<InvitationJoined, ApiError> {
        let now_ms = self.clock.clocks().wall_ms;
        let used = &self.used_invitations;
        // A token may not name an expiry further off than an inviter may set: its id would
        // hold a replay slot for that long.
        let latest_expiry_ms = now_ms.saturating_add(MAX_INVITATION_TTL_MS);
        if invitation.invitation.expires_at_ms > latest_expiry_ms {
            return Err(ApiError::Invitation(rhizome_core::seal::InvitationError::Malformed {
                reason: "expires further off than any inviter may set",
            }));
        }
        let accepted =
            invitation.accept(&self.keypair, None, now_ms, |id| used.contains(id)).map_err(ApiError::Invitation)?;
        let max = self.config.max_used_invitations;
        self.used_invitations
            .make_room(max, now_ms, &mut self.batch)
            .map_err(|_| ApiError::UsedInvitationsFull { max })?;
        let app = AppId(accepted.app);
        let join = JoinWith { bootstrap: vec![accepted.inviter], genesis: None, keys: vec![accepted.key] };
        self.join(accepted.context, app, join)?;
        // In the join's commit: after a crash either both are durable or neither is.
        self.used_invitations.record(accepted.invitation_id, invitation.invitation.expires_at_ms, &mut self.batch);
        Ok(InvitationJoined {
            context: accepted.context,
            app,
            inviter: accepted.inviter,
            role: accepted.role,
            bootstrap: accepted.bootstrap,
        })
    }
}
