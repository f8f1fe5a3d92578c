//! Answering peers' sync requests. Every request gets exactly one response, an error code
//! included; a request we cannot decode gets `BadRequest`.

use super::{InboundRequestId, Node, Output};
use crate::applier::{Applier, ApplyError};
use crate::dag::SinceError;
use crate::ids::{ContextId, PeerId};
use crate::sync::snapshot::{FrozenState, PageLimits, ServedSnapshot};
use crate::sync::{SyncMode, SyncReason};
use crate::wire::{SyncErrorCode, SyncRequest, SyncRequestV1, SyncResponse, SyncResponseV1};

/// Room left in a response for everything but the deltas themselves.
const RESPONSE_ENVELOPE_BYTES: usize = 1024;

/// A request's answer, and what serving it taught us.
struct Served {
    response: SyncResponseV1,
    /// The requester's `known` named ids we lack: sync back from it (push-pull anti-entropy).
    pull_back: Option<ContextId>,
}

impl From<SyncResponseV1> for Served {
    fn from(response: SyncResponseV1) -> Self {
        Self { response, pull_back: None }
    }
}

impl Node {
    pub(super) fn on_request(&mut self, app: &dyn Applier, from: PeerId, request_id: InboundRequestId, bytes: &[u8]) {
        self.metrics.requests_served += 1;
        let request = match SyncRequest::decode_any(bytes, &self.config.limits) {
            Ok(SyncRequest::V1(request)) => Ok(request),
            Ok(SyncRequest::V2(request)) => {
                let context = match &request {
                    crate::wire::SyncRequestV2::Key { context, .. } => *context,
                };
                let bytes = if self.replicas.get(&context).is_some_and(|replica| !replica.is_member_peer(&from)) {
                    self.metrics.non_member_messages += 1;
                    self.metrics.count_refusal_from(from);
                    self.metrics.request_errors_sent += 1;
                    SyncResponse::encode_v1(SyncResponseV1::Error(SyncErrorCode::NotMember))
                } else {
                    self.serve_key_request(from, request)
                };
                self.outputs.push_back(Output::Respond { to: from, request_id, bytes });
                return;
            }
            Err(error) => Err(error),
        };
        let Served { response, pull_back } = match request {
            Ok(request) => self.serve(app, from, request),
            Err(error) => {
                self.metrics.count_decode_error(error.label());
                SyncResponseV1::Error(SyncErrorCode::BadRequest).into()
            }
        };
        if matches!(response, SyncResponseV1::Error(_)) {
            self.metrics.request_errors_sent += 1;
        }
        self.outputs.push_back(Output::Respond { to: from, request_id, bytes: SyncResponse::encode_v1(response) });
        if let Some(context) = pull_back {
            // The requester holds ids we lack: pull them back, unless a session of ours
            // already runs for the context.
            if self.replicas.get(&context).is_some_and(|replica| replica.track.may_force())
                && self.start_sync(context, from, SyncReason::Reciprocal, SyncMode::Deltas)
            {
                self.metrics.syncs_reciprocal += 1;
            }
        }
    }

    fn serve(&mut self, app: &dyn Applier, from: PeerId, request: SyncRequestV1) -> Served {
        let context = match &request {
            SyncRequestV1::Heads { context }
            | SyncRequestV1::DeltasSince { context, .. }
            | SyncRequestV1::SnapshotBegin { context }
            | SyncRequestV1::SnapshotPage { context, .. } => *context,
        };
        if self.replicas.get(&context).is_some_and(|replica| !replica.is_member_peer(&from)) {
            self.metrics.non_member_messages += 1;
            self.metrics.count_refusal_from(from);
            return SyncResponseV1::Error(SyncErrorCode::NotMember).into();
        }
        let now = self.now;
        let limits = self.config.limits.clone();
        match request {
            SyncRequestV1::Heads { context } => {
                let Some(replica) = self.replicas.get_mut(&context) else {
                    return SyncResponseV1::Error(SyncErrorCode::UnknownContext).into();
                };
                replica.note_peer(from, now, limits.max_peers_per_context);
                let heads = replica.dag.heads().iter().take(limits.max_heads_per_message).copied().collect();
                let applied_count = replica.dag.applied_len() as u64;
                SyncResponseV1::Heads { context, heads, root: app.root_hash(&context), applied_count }.into()
            }
            SyncRequestV1::DeltasSince { context, known, wanted, after, max_deltas } => {
                let Some(replica) = self.replicas.get_mut(&context) else {
                    return SyncResponseV1::Error(SyncErrorCode::UnknownContext).into();
                };
                replica.note_peer(from, now, limits.max_peers_per_context);
                let pull_back =
                    (after.is_none() && known.iter().any(|id| !replica.dag.is_known(id))).then_some(context);
                let wanted = (!wanted.is_empty()).then_some(wanted.as_slice());
                let max_deltas = (max_deltas as usize).min(limits.max_deltas_per_page);
                let max_bytes = limits.max_message_bytes.saturating_sub(RESPONSE_ENVELOPE_BYTES);
                let response = match replica.dag.deltas_since(
                    &known,
                    wanted,
                    after,
                    max_deltas,
                    max_bytes,
                    limits.max_since_scan_deltas,
                ) {
                    Ok(page) => SyncResponseV1::Deltas {
                        context,
                        deltas: page.deltas,
                        next: page.next,
                        gap_total: page.gap_total,
                    },
                    Err(SinceError::SnapshotRequired) => SyncResponseV1::Error(SyncErrorCode::SnapshotRequired),
                    Err(SinceError::GapTooLarge { .. }) => SyncResponseV1::Error(SyncErrorCode::GapTooLarge),
                };
                Served { response, pull_back }
            }
            SyncRequestV1::SnapshotBegin { context } => self.freeze_snapshot(app, context).into(),
            SyncRequestV1::SnapshotPage { context, snapshot_id, page } => {
                let page = self.replicas.get_mut(&context).and_then(|replica| {
                    replica
                        .served
                        .get_mut(snapshot_id, &context)
                        .and_then(|snapshot| snapshot.page(snapshot_id, page, now))
                });
                match page {
                    Some(page) => SyncResponseV1::SnapshotPage(page),
                    None => SyncResponseV1::Error(SyncErrorCode::SnapshotUnavailable),
                }
                .into()
            }
        }
    }

    /// Freezes the context's state and DAG structure for paging out.
    fn freeze_snapshot(&mut self, app: &dyn Applier, context: crate::ids::ContextId) -> SyncResponseV1 {
        let limits = &self.config.limits;
        let served: usize = self.replicas.values().map(|replica| replica.served.len()).sum();
        let Some(replica) = self.replicas.get(&context) else {
            return SyncResponseV1::Error(SyncErrorCode::UnknownContext);
        };
        if served >= limits.max_served_snapshots {
            return SyncResponseV1::Error(SyncErrorCode::Busy);
        }
        if replica.dag.applied_len() > limits.max_snapshot_ids {
            return SyncResponseV1::Error(SyncErrorCode::StateTooLarge);
        }
        let bytes = match app.export_state(&context, limits.max_snapshot_bytes) {
            Ok(bytes) => bytes,
            Err(ApplyError::StateTooLarge { .. }) => return SyncResponseV1::Error(SyncErrorCode::StateTooLarge),
            Err(error) => {
                tracing::warn!(%context, %error, "could not export state for a snapshot");
                return SyncResponseV1::Error(SyncErrorCode::SnapshotUnavailable);
            }
        };
        let frozen = FrozenState {
            context,
            heads: replica.dag.heads_vec(),
            root: app.root_hash(&context),
            state: bytes,
            entries: replica.dag.checkpoint(),
        };
        let page_limits = PageLimits {
            max_page_bytes: limits.max_snapshot_page_bytes,
            max_entries_per_page: limits.max_snapshot_ids_per_page,
        };
        let snapshot = ServedSnapshot::new(frozen, page_limits, self.now);
        self.last_snapshot_id += 1;
        let snapshot_id = self.last_snapshot_id;
        let checkpoint = snapshot.checkpoint(snapshot_id);
        self.replicas.get_mut(&context).expect("context checked above").served.insert(snapshot_id, snapshot);
        self.metrics.snapshots_served += 1;
        SyncResponseV1::SnapshotCheckpoint(checkpoint)
    }
}
