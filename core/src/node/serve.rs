//! Answering peers' sync requests. Every request gets exactly one response, an error code
//! included; a request we cannot decode gets `BadRequest`.

use super::{InboundRequestId, Node, Output};
use crate::applier::{Applier, ApplyError};
use crate::dag::SinceError;
use crate::ids::PeerId;
use crate::sync::snapshot::{FrozenState, PageLimits, ServedSnapshot};
use crate::sync::{SyncMode, SyncReason};
use crate::wire::{SyncErrorCode, SyncRequest, SyncRequestV1, SyncResponse, SyncResponseV1};

/// Room left in a response for everything but the deltas themselves.
const RESPONSE_ENVELOPE_BYTES: usize = 1024;

impl<A: Applier> Node<A> {
    pub(super) fn on_request(&mut self, from: PeerId, request_id: InboundRequestId, bytes: &[u8]) {
        self.metrics.requests_served += 1;
        let response = match SyncRequest::decode(bytes, &self.config.limits) {
            Ok(request) => self.serve(from, request),
            Err(error) => {
                self.metrics.count_decode_error(error.label());
                SyncResponseV1::Error(SyncErrorCode::BadRequest)
            }
        };
        if matches!(response, SyncResponseV1::Error(_)) {
            self.metrics.request_errors_sent += 1;
        }
        self.outputs.push_back(Output::Respond { to: from, request_id, bytes: SyncResponse::encode_v1(response) });
        if let Some((context, peer)) = self.reciprocal.take() {
            // The requester holds ids we lack: pull them back (push-pull anti-entropy), unless
            // a session of ours already runs for the context.
            if self.tracking.may_force(&context)
                && self.start_sync(context, peer, SyncReason::Reciprocal, SyncMode::Deltas)
            {
                self.metrics.syncs_reciprocal += 1;
            }
        }
    }

    fn serve(&mut self, from: PeerId, request: SyncRequestV1) -> SyncResponseV1 {
        let context = match &request {
            SyncRequestV1::Heads { context }
            | SyncRequestV1::DeltasSince { context, .. }
            | SyncRequestV1::SnapshotBegin { context }
            | SyncRequestV1::SnapshotPage { context, .. } => *context,
        };
        if self.contexts.get(&context).is_some_and(|state| !state.is_member_peer(&from)) {
            self.metrics.non_member_messages += 1;
            return SyncResponseV1::Error(SyncErrorCode::NotMember);
        }
        let now = self.now;
        let limits = self.config.limits.clone();
        match request {
            SyncRequestV1::Heads { context } => {
                let Some(state) = self.contexts.get_mut(&context) else {
                    return SyncResponseV1::Error(SyncErrorCode::UnknownContext);
                };
                state.note_peer(from, now, limits.max_peers_per_context);
                let heads = state.dag.heads().iter().take(limits.max_heads_per_message).copied().collect();
                let applied_count = state.dag.applied_len() as u64;
                SyncResponseV1::Heads { context, heads, root: self.applier.root_hash(&context), applied_count }
            }
            SyncRequestV1::DeltasSince { context, known, wanted, after, max_deltas } => {
                let Some(state) = self.contexts.get_mut(&context) else {
                    return SyncResponseV1::Error(SyncErrorCode::UnknownContext);
                };
                state.note_peer(from, now, limits.max_peers_per_context);
                if after.is_none() && known.iter().any(|id| !state.dag.is_known(id)) {
                    self.reciprocal = Some((context, from));
                }
                let wanted = (!wanted.is_empty()).then_some(wanted.as_slice());
                let max_deltas = (max_deltas as usize).min(limits.max_deltas_per_page);
                let max_bytes = limits.max_message_bytes.saturating_sub(RESPONSE_ENVELOPE_BYTES);
                match state.dag.deltas_since(&known, wanted, after, max_deltas, max_bytes, limits.max_since_scan_deltas)
                {
                    Ok(page) => SyncResponseV1::Deltas {
                        context,
                        deltas: page.deltas,
                        next: page.next,
                        gap_total: page.gap_total,
                    },
                    Err(SinceError::SnapshotRequired) => SyncResponseV1::Error(SyncErrorCode::SnapshotRequired),
                    Err(SinceError::GapTooLarge { .. }) => SyncResponseV1::Error(SyncErrorCode::GapTooLarge),
                }
            }
            SyncRequestV1::SnapshotBegin { context } => self.freeze_snapshot(context),
            SyncRequestV1::SnapshotPage { context, snapshot_id, page } => {
                match self
                    .served
                    .get_mut(snapshot_id, &context)
                    .and_then(|snapshot| snapshot.page(snapshot_id, page, now))
                {
                    Some(page) => SyncResponseV1::SnapshotPage(page),
                    None => SyncResponseV1::Error(SyncErrorCode::SnapshotUnavailable),
                }
            }
        }
    }

    /// Freezes the context's state and DAG structure for paging out.
    fn freeze_snapshot(&mut self, context: crate::ids::ContextId) -> SyncResponseV1 {
        let limits = &self.config.limits;
        let Some(state) = self.contexts.get(&context) else {
            return SyncResponseV1::Error(SyncErrorCode::UnknownContext);
        };
        if self.served.len() >= limits.max_served_snapshots {
            return SyncResponseV1::Error(SyncErrorCode::Busy);
        }
        if state.dag.applied_len() > limits.max_snapshot_ids {
            return SyncResponseV1::Error(SyncErrorCode::StateTooLarge);
        }
        let bytes = match self.applier.export_state(&context, limits.max_snapshot_bytes) {
            Ok(bytes) => bytes,
            Err(ApplyError::StateTooLarge { .. }) => return SyncResponseV1::Error(SyncErrorCode::StateTooLarge),
            Err(error) => {
                tracing::warn!(%context, %error, "could not export state for a snapshot");
                return SyncResponseV1::Error(SyncErrorCode::SnapshotUnavailable);
            }
        };
        let frozen = FrozenState {
            context,
            heads: state.dag.heads_vec(),
            root: self.applier.root_hash(&context),
            state: bytes,
            entries: state.dag.checkpoint(),
        };
        let page_limits = PageLimits {
            max_page_bytes: limits.max_snapshot_page_bytes,
            max_entries_per_page: limits.max_snapshot_ids_per_page,
        };
        let snapshot = ServedSnapshot::new(frozen, page_limits, self.now);
        let Some(snapshot_id) = self.served.insert(snapshot, limits.max_served_snapshots) else {
            return SyncResponseV1::Error(SyncErrorCode::Busy);
        };
        self.metrics.snapshots_served += 1;
        let checkpoint = self.served.get_mut(snapshot_id, &context).expect("just inserted").checkpoint(snapshot_id);
        SyncResponseV1::SnapshotCheckpoint(checkpoint)
    }
}
