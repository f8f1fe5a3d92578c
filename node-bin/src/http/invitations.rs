//! `POST /admin/contexts/{id}/invite` and `POST /admin/contexts/join`: signed invitation tokens
//! (the core's format, `rhizome_core::seal::invitation`). Inviting adds the invitee and
//! returns a token only its key can accept; joining accepts one addressed to this node, once.
//! Every refused token is counted by reason (`rhizome_invitations_refused{reason}`).

use super::extract::{parse_id, ContextPath, JsonBody};
use super::{ErrorCode, HttpError, SharedState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use rhizome_core::seal::{InvitationError, SignedInvitation, MAX_BOOTSTRAP_ADDRESSES, MAX_BOOTSTRAP_ADDRESS_BYTES};
use rhizome_core::{AuthorKey, Role};
use rhizome_node::{ApiError, InviteOffer};
use serde::Deserialize;
use serde_json::json;

/// How long a token may be accepted when the request does not say: a day.
pub const DEFAULT_INVITATION_TTL_SECS: u64 = 24 * 3600;
/// The longest a token may be accepted for: a leaked token is good until it expires.
pub const MAX_INVITATION_TTL_SECS: u64 = rhizome_node::MAX_INVITATION_TTL_MS / 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InviteRequest {
    /// The invitee's key (hex).
    key: String,
    /// `member` (the default) or `admin`.
    #[serde(default)]
    role: Option<String>,
    /// Seconds the token may be accepted for.
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

fn parse_role(role: Option<&str>) -> Result<Role, HttpError> {
    match role.unwrap_or("member") {
        "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        other => Err(HttpError::bad_request(format!("role must be member or admin, got {other:?}"))),
    }
}

/// `POST /admin/contexts/{id}/invite`: adds `key` with `role` (one membership delta; nothing if
/// it already has that role), then answers with a token signed by this node that carries the
/// context key wrapped to `key`, this node's listen addresses and an expiry.
pub(super) async fn invite(
    State(shared): SharedState,
    ContextPath(context): ContextPath,
    JsonBody(request): JsonBody<InviteRequest>,
) -> Result<Response, HttpError> {
    let invitee = AuthorKey::from_bytes(parse_id("key", &request.key)?);
    let role = parse_role(request.role.as_deref())?;
    let ttl_secs = request.expires_in_secs.unwrap_or(DEFAULT_INVITATION_TTL_SECS);
    if !(1..=MAX_INVITATION_TTL_SECS).contains(&ttl_secs) {
        return Err(HttpError::bad_request(format!(
            "expires_in_secs must be 1..={MAX_INVITATION_TTL_SECS}, got {ttl_secs}"
        )));
    }
    let mut invitation_id = [0u8; 16];
    OsRng.fill_bytes(&mut invitation_id);
    let bootstrap: Vec<String> = shared
        .api
        .peers
        .listen_addrs()
        .await
        .into_iter()
        .filter(|address| address.len() <= MAX_BOOTSTRAP_ADDRESS_BYTES)
        .take(MAX_BOOTSTRAP_ADDRESSES)
        .collect();
    let offer = InviteOffer { invitee, role, invitation_id, ttl_ms: ttl_secs * 1000, bootstrap };
    let invited = shared.api.node.invite(context, offer).await.map_err(|error| match error {
        // The terms the token would carry are what is wrong (an invitee key that is no key).
        ApiError::Invitation(error) => HttpError::bad_request(format!("cannot issue the invitation: {error}")),
        other => HttpError::from(other),
    })?;
    shared.api.metrics.count_invitation_issued();
    let token = &invited.invitation;
    Ok(Json(json!({
        "invitation": token.to_text(),
        "context": context.to_string(),
        "invitee": invitee.to_string(),
        "role": role.label(),
        "expires_at_ms": token.invitation.expires_at_ms,
        "bootstrap": token.invitation.bootstrap,
        "members": invited.members.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JoinRequest {
    /// The token's text (`rhz-invite-2:...`).
    invitation: String,
}

/// The code a refused token answers with: one per reason a caller can act on.
pub fn invitation_code(error: &InvitationError) -> ErrorCode {
    match error {
        InvitationError::Forged => ErrorCode::InvitationForged,
        InvitationError::Expired { .. } => ErrorCode::InvitationExpired,
        InvitationError::Replayed => ErrorCode::InvitationReplayed,
        InvitationError::WrongInvitee | InvitationError::WrongContext => ErrorCode::InvitationNotForThisNode,
        InvitationError::Malformed { .. }
        | InvitationError::TooLarge { .. }
        | InvitationError::UnsupportedVersion { .. }
        | InvitationError::KeyUnwrap(_) => ErrorCode::InvitationMalformed,
    }
}

fn refused(shared: &super::Shared, error: &InvitationError) -> HttpError {
    shared.api.metrics.count_invitation_refused(error.label());
    let hint = match error {
        InvitationError::WrongInvitee => ": it was issued for another node's key; ask for one for this node's key",
        InvitationError::Expired { .. } => ": ask the inviter for a new one",
        InvitationError::Replayed => ": this node already joined with it",
        _ => "",
    };
    HttpError::new(invitation_code(error), format!("{error}{hint}"))
}

/// `POST /admin/contexts/join`: accepts a token addressed to this node and joins its context,
/// syncing with the inviter; then dials the addresses the token carries.
pub(super) async fn join_context(
    State(shared): SharedState,
    JsonBody(request): JsonBody<JoinRequest>,
) -> Result<Response, HttpError> {
    let token = SignedInvitation::from_text(&request.invitation).map_err(|error| refused(&shared, &error))?;
    let joined = shared.api.node.join_by_invitation(token).await.map_err(|error| match error {
        ApiError::Invitation(error) => refused(&shared, &error),
        other => HttpError::from(other),
    })?;
    shared.api.metrics.count_invitation_accepted();
    // Best effort: the inviter may be reachable already (a shared bootstrap peer, mDNS), and
    // the sync retries as connections come up.
    for address in &joined.bootstrap {
        if let Err(error) = shared.api.peers.dial(address).await {
            tracing::info!(%address, %error, "cannot dial an address of the invitation");
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "context": joined.context.to_string(),
            "app": hex::encode(joined.app.0),
            "inviter": joined.inviter.to_string(),
            "role": joined.role.label(),
        })),
    )
        .into_response())
}
