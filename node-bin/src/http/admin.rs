//! `/admin`: apps, contexts, membership, peers and status.

use super::extract::{body_error, parse_hex, parse_id, ContextPath, JsonBody};
use super::{HttpError, SharedState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rhizome_core::{AuthorKey, ContextId};
use rhizome_node::{ContextStatus, NodeStatus};
use rhizome_runtime::AppId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

type Answer = Result<Response, HttpError>;

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn ok(body: Value) -> Answer {
    Ok(Json(body).into_response())
}

/// One context's figures; `members` only where one context is asked for.
#[derive(Debug, Serialize)]
struct ContextView {
    context: String,
    app: String,
    member_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<String>>,
    heads: Vec<String>,
    root: String,
    applied: usize,
    pending: usize,
    snapshot_buffer: usize,
    handler_jobs: usize,
    last_sync_ms: Option<u64>,
}

fn context_view(status: &ContextStatus, with_members: bool) -> ContextView {
    ContextView {
        context: status.context.to_string(),
        app: hex::encode(status.app.0),
        member_count: status.members.len(),
        members: with_members.then(|| status.members.iter().map(ToString::to_string).collect()),
        heads: status.heads.iter().map(ToString::to_string).collect(),
        root: status.root.to_string(),
        applied: status.applied,
        pending: status.pending,
        snapshot_buffer: status.snapshot_buffer,
        handler_jobs: status.handler_jobs,
        last_sync_ms: status.last_sync_ms,
    }
}

pub(super) async fn context_status(
    shared: &super::Shared,
    context: ContextId,
) -> Result<(NodeStatus, usize), HttpError> {
    let status = shared.api.node.status().await?;
    let index = status
        .contexts
        .iter()
        .position(|entry| entry.context == context)
        .ok_or_else(|| HttpError::from(rhizome_node::ApiError::UnknownContext(context)))?;
    Ok((status, index))
}

pub(super) fn parse_keys(what: &str, keys: &[String]) -> Result<Vec<AuthorKey>, HttpError> {
    keys.iter().map(|key| parse_id(what, key).map(AuthorKey::from_bytes)).collect()
}

/// `POST /admin/apps`: the body is the WASM module.
pub(super) async fn install_app(State(shared): SharedState, body: Result<Bytes, BytesRejection>) -> Answer {
    let module = body.map_err(body_error)?;
    if module.is_empty() {
        return Err(HttpError::bad_request("the body must be a WASM module (Content-Type: application/wasm)"));
    }
    let app = shared.api.node.install_app(module.to_vec()).await?;
    Ok(created(json!({"app": hex::encode(app.0)})))
}

/// `GET /admin/apps`.
pub(super) async fn list_apps(State(shared): SharedState) -> Answer {
    let apps = shared.api.node.apps().await?;
    let status = shared.api.node.status().await?;
    let apps: Vec<Value> = apps
        .iter()
        .map(|app| {
            let contexts = status.contexts.iter().filter(|context| context.app == *app).count();
            json!({"app": hex::encode(app.0), "contexts": contexts})
        })
        .collect();
    ok(json!({ "apps": apps }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateContext {
    app: String,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    nonce_hex: Option<String>,
}

/// `POST /admin/contexts`.
pub(super) async fn create_context(State(shared): SharedState, JsonBody(request): JsonBody<CreateContext>) -> Answer {
    let app = AppId(parse_id("app", &request.app)?);
    let me = shared.api.node.author_key();
    let mut members: BTreeSet<AuthorKey> = parse_keys("members[]", &request.members)?.into_iter().collect();
    members.remove(&me);
    let members: Vec<AuthorKey> = members.into_iter().collect();
    let nonce = match &request.nonce_hex {
        Some(text) => parse_hex("nonce_hex", text)?
            .try_into()
            .map_err(|_| HttpError::bad_request("nonce_hex must be 16 bytes (32 hex characters)"))?,
        None => fresh_nonce(&shared, &app, &members),
    };
    let context = shared.api.node.create_context(app, members, nonce).await?;
    let (status, index) = context_status(&shared, context).await?;
    let members: Vec<String> = status.contexts[index].members.iter().map(ToString::to_string).collect();
    Ok(created(json!({"context": context.to_string(), "app": hex::encode(app.0), "members": members})))
}

/// A nonce no earlier request of this process used (the counter) and, across restarts, very
/// unlikely to repeat (the wall clock), bound to what is being created.
fn fresh_nonce(shared: &super::Shared, app: &AppId, members: &[AuthorKey]) -> [u8; 16] {
    let count = shared.nonce_counter.fetch_add(1, Ordering::Relaxed);
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"rhizomed/context-nonce/v1");
    hasher.update(&now_ns.to_le_bytes());
    hasher.update(&count.to_le_bytes());
    hasher.update(&app.0);
    for member in members {
        hasher.update(member.as_bytes());
    }
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    nonce
}

/// `GET /admin/contexts`.
pub(super) async fn list_contexts(State(shared): SharedState) -> Answer {
    let status = shared.api.node.status().await?;
    let contexts: Vec<ContextView> = status.contexts.iter().map(|context| context_view(context, false)).collect();
    ok(json!({ "contexts": contexts }))
}

/// `GET /admin/contexts/{id}`.
pub(super) async fn get_context(State(shared): SharedState, ContextPath(context): ContextPath) -> Answer {
    let (status, index) = context_status(&shared, context).await?;
    ok(json!(context_view(&status.contexts[index], true)))
}

/// `GET /admin/contexts/{id}/members`.
pub(super) async fn members(State(shared): SharedState, ContextPath(context): ContextPath) -> Answer {
    let (status, index) = context_status(&shared, context).await?;
    let members: Vec<String> = status.contexts[index].members.iter().map(ToString::to_string).collect();
    ok(json!({"context": context.to_string(), "members": members}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveRequest {
    keys: Vec<String>,
}

/// `POST /admin/contexts/{id}/remove`: removes `keys` from the members in one signed membership
/// delta (only an admin may). The context key rotates to the remaining members, so what is
/// written after it is unreadable to those removed, and their later writes are refused.
pub(super) async fn remove_members(
    State(shared): SharedState,
    ContextPath(context): ContextPath,
    JsonBody(request): JsonBody<RemoveRequest>,
) -> Answer {
    let keys = parse_keys("keys[]", &request.keys)?;
    if keys.is_empty() {
        return Err(HttpError::bad_request("keys must name at least one member"));
    }
    let ops = keys.into_iter().map(rhizome_core::MemberOp::Remove).collect();
    let delta = shared.api.node.change_members(context, ops).await?;
    let (status, index) = context_status(&shared, context).await?;
    let members: Vec<String> = status.contexts[index].members.iter().map(ToString::to_string).collect();
    ok(json!({"context": context.to_string(), "delta": delta.to_string(), "members": members}))
}

/// `GET /admin/peers`.
pub(super) async fn peers(State(shared): SharedState) -> Answer {
    let peers = shared.api.peers.peers().await;
    let connected = peers.iter().filter(|peer| peer.connected).count();
    ok(json!({"peers": peers, "connected": connected}))
}

/// `GET /admin/status`.
pub(super) async fn status(State(shared): SharedState) -> Answer {
    let status = shared.api.node.status().await?;
    let contexts: Vec<ContextView> = status.contexts.iter().map(|context| context_view(context, false)).collect();
    let core = &status.metrics;
    let driver = &status.driver;
    ok(json!({
        "peer_id": status.peer_id.to_string(),
        "author_key": shared.api.node.author_key().to_string(),
        "peers": status.peers.len(),
        "contexts": contexts,
        "counters": {
            "deltas_applied": core.deltas_applied,
            "deltas_received": core.deltas_received,
            "deltas_pended": core.deltas_pended,
            "local_deltas": core.local_deltas,
            "rejected": core.rejected_total(),
            "gossip_received": core.gossip_received,
            "gossip_sent": core.gossip_sent,
            "heartbeats_sent": core.heartbeats_sent,
            "heartbeats_received": core.heartbeats_received,
            "syncs_started": core.syncs_started,
            "syncs_succeeded": core.syncs_succeeded,
            "syncs_failed": core.syncs_failed,
            "snapshots_adopted": core.snapshots_adopted,
            "divergences_detected": core.divergences_detected,
            "calls_committed": driver.calls_committed,
            "calls_failed": driver.calls_failed,
            "call_deltas": driver.call_deltas,
            "commits": driver.commits,
            "fuel_used": status.runtime.fuel_used,
            "ws_dropped_slow": shared.api.metrics.ws_dropped_slow(),
            "rate_limited": shared.api.metrics.rate_limited(),
        },
    }))
}
