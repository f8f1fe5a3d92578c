//! Our outgoing requests: bookkeeping, deadlines, failures, and missing-parent fetches.

use super::ingest::Via;
use super::{Node, RequestFailure, RequestId};
use crate::applier::Applier;
use crate::ids::{ContextId, DeltaId, PeerId};
use crate::time::Timestamp;
use crate::wire::{SyncRequest, SyncRequestV1, SyncResponse, SyncResponseV1};

/// A request we wait on.
#[derive(Debug, Clone)]
pub(crate) struct Outstanding {
    pub(crate) peer: PeerId,
    pub(crate) deadline: Timestamp,
    pub(crate) purpose: Purpose,
}

/// What a request is for.
#[derive(Debug, Clone)]
pub(crate) enum Purpose {
    /// A step of the context's sync session.
    Sync { context: ContextId },
    /// Missing parents of pending deltas.
    ParentFetch(ParentFetch),
}

/// One missing-parent fetch, carried across retries with other peers.
#[derive(Debug, Clone)]
pub(crate) struct ParentFetch {
    pub(crate) context: ContextId,
    pub(crate) wanted: Vec<DeltaId>,
    pub(crate) tried: Vec<PeerId>,
}

impl Outstanding {
    pub(crate) fn context(&self) -> &ContextId {
        match &self.purpose {
            Purpose::Sync { context } => context,
            Purpose::ParentFetch(fetch) => &fetch.context,
        }
    }

    pub(crate) fn is_parent_fetch(&self) -> bool {
        matches!(self.purpose, Purpose::ParentFetch(_))
    }
}

impl<A: Applier> Node<A> {
    /// Sends a request and remembers it until its response, failure or deadline.
    pub(super) fn send_request(&mut self, peer: PeerId, request: SyncRequestV1, purpose: Purpose) -> RequestId {
        let request_id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        let deadline = self.now.add_millis(self.config.sync_timeout_ms);
        self.outputs.push_back(super::Output::Request { to: peer, request_id, bytes: SyncRequest::encode_v1(request) });
        self.outstanding.insert(request_id, Outstanding { peer, deadline, purpose });
        request_id
    }

    pub(super) fn on_response(&mut self, request_id: RequestId, bytes: &[u8]) {
        let Some(request) = self.outstanding.remove(&request_id) else {
            self.metrics.stale_responses += 1;
            return;
        };
        match SyncResponse::decode(bytes, &self.config.limits) {
            Ok(response) => match request.purpose {
                Purpose::Sync { context } => self.on_sync_response(context, request.peer, response),
                Purpose::ParentFetch(fetch) => self.on_fetch_response(request.peer, fetch, response),
            },
            Err(error) => {
                self.metrics.count_decode_error(error.label());
                self.on_request_failed(request, format!("malformed response: {error}"));
            }
        }
    }

    pub(super) fn on_transport_failure(&mut self, request_id: RequestId, reason: RequestFailure) {
        if let Some(request) = self.outstanding.remove(&request_id) {
            self.on_request_failed(request, format!("transport: {reason:?}"));
        }
    }

    pub(super) fn on_peer_down(&mut self, peer: PeerId) {
        self.connected.remove(&peer);
        let lost: Vec<RequestId> =
            self.outstanding.iter().filter(|(_, request)| request.peer == peer).map(|(id, _)| *id).collect();
        for id in lost {
            if let Some(request) = self.outstanding.remove(&id) {
                self.on_request_failed(request, "peer disconnected".to_owned());
            }
        }
    }

    /// Fails every session that has run past `sync_session_max_ms`, with its request.
    pub(super) fn expire_sessions(&mut self) {
        let deadline_ms = self.config.sync_session_max_ms;
        let now = self.now;
        let expired: Vec<ContextId> = self
            .sessions
            .values()
            .filter(|session| session.started_at.add_millis(deadline_ms) <= now)
            .map(|session| session.context)
            .collect();
        for context in expired {
            self.outstanding
                .retain(|_, request| !matches!(request.purpose, Purpose::Sync { context: owner } if owner == context));
            if let Some(session) = self.sessions.remove(&context) {
                self.metrics.sync_session_deadlines += 1;
                self.finish_session(session, Err("session deadline".to_owned()));
            }
        }
    }

    /// Fails every request whose deadline has passed.
    pub(super) fn expire_requests(&mut self) {
        let now = self.now;
        let expired: Vec<RequestId> =
            self.outstanding.iter().filter(|(_, request)| request.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            if let Some(request) = self.outstanding.remove(&id) {
                self.on_request_failed(request, "timed out".to_owned());
            }
        }
    }

    fn on_request_failed(&mut self, request: Outstanding, reason: String) {
        self.metrics.requests_failed += 1;
        match request.purpose {
            Purpose::Sync { context } => {
                if let Some(session) = self.sessions.remove(&context) {
                    self.finish_session(session, Err(reason));
                }
            }
            Purpose::ParentFetch(fetch) => {
                self.end_fetch(&fetch);
                self.metrics.parent_fetch_failures += 1;
                self.retry_fetch(fetch);
            }
        }
    }

    /// Asks a peer for missing parents (and whatever ancestors we lack), preferring `preferred`
    /// (the peer that sent the pending delta) and never a peer in `tried`.
    pub(super) fn fetch_parents(
        &mut self,
        context: ContextId,
        missing: Vec<DeltaId>,
        preferred: Option<PeerId>,
        mut tried: Vec<PeerId>,
    ) {
        let limits = &self.config.limits;
        let wanted: Vec<DeltaId> = missing
            .into_iter()
            .filter(|id| !self.inflight_missing.contains(&(context, *id)))
            .take(limits.max_heads_per_message.min(limits.max_missing_parents_per_page))
            .collect();
        if wanted.is_empty() {
            return;
        }
        if self.parent_fetches_inflight >= limits.max_inflight_parent_fetches {
            self.metrics.parent_fetches_deferred += 1;
            return;
        }
        let is_member = |peer: &PeerId| self.contexts.get(&context).is_some_and(|state| state.is_member_peer(peer));
        let preferred = preferred.filter(|peer| !tried.contains(peer) && *peer != self.peer_id && is_member(peer));
        let peer = match preferred {
            Some(peer) => peer,
            None => match self.choose_peer(&context, &tried) {
                Some(peer) => peer,
                None => return,
            },
        };
        let Some(state) = self.contexts.get(&context) else {
            return;
        };
        let known = state.dag.known_sample(self.config.limits.max_heads_per_message);
        let request = SyncRequestV1::DeltasSince {
            context,
            known,
            wanted: wanted.clone(),
            after: None,
            max_deltas: self.config.limits.max_deltas_per_page as u32,
        };
        tried.push(peer);
        for id in &wanted {
            self.inflight_missing.insert((context, *id));
        }
        self.parent_fetches_inflight += 1;
        self.metrics.parent_fetches += 1;
        self.send_request(peer, request, Purpose::ParentFetch(ParentFetch { context, wanted, tried }));
    }

    fn on_fetch_response(&mut self, peer: PeerId, fetch: ParentFetch, response: SyncResponseV1) {
        self.end_fetch(&fetch);
        let context = fetch.context;
        let SyncResponseV1::Deltas { context: answered, deltas, next, .. } = response else {
            self.metrics.parent_fetch_failures += 1;
            self.retry_fetch(fetch);
            return;
        };
        if answered != context {
            self.metrics.parent_fetch_failures += 1;
            self.retry_fetch(fetch);
            return;
        }
        if deltas.is_empty() && next.is_some() {
            self.metrics.parent_fetch_failures += 1;
            self.retry_fetch(fetch);
            return;
        }
        for delta in deltas {
            if delta.context != context {
                self.reject(crate::reject::RejectReason::WrongContext);
                continue;
            }
            self.ingest_remote(peer, delta, Via::Fetch);
        }
        let Some(state) = self.contexts.get(&context) else {
            return;
        };
        let still_missing: Vec<DeltaId> = fetch.wanted.iter().filter(|id| !state.dag.is_known(id)).copied().collect();
        if still_missing.is_empty() {
            return;
        }
        match next {
            // The gap is longer than a page: keep reading it from the same peer.
            Some(cursor) => {
                let known = state.dag.known_sample(self.config.limits.max_heads_per_message);
                let request = SyncRequestV1::DeltasSince {
                    context,
                    known,
                    wanted: fetch.wanted.clone(),
                    after: Some(cursor),
                    max_deltas: self.config.limits.max_deltas_per_page as u32,
                };
                for id in &fetch.wanted {
                    self.inflight_missing.insert((context, *id));
                }
                self.parent_fetches_inflight += 1;
                self.send_request(peer, request, Purpose::ParentFetch(fetch));
            }
            None => {
                self.metrics.parent_fetch_failures += 1;
                self.retry_fetch(ParentFetch { wanted: still_missing, ..fetch });
            }
        }
    }

    fn end_fetch(&mut self, fetch: &ParentFetch) {
        self.parent_fetches_inflight -= 1;
        for id in &fetch.wanted {
            self.inflight_missing.remove(&(fetch.context, *id));
        }
    }

    /// Asks another peer, unless the attempts are used up; periodic sync covers the rest.
    fn retry_fetch(&mut self, fetch: ParentFetch) {
        if fetch.tried.len() >= self.config.limits.max_parent_fetch_attempts {
            return;
        }
        let Some(state) = self.contexts.get(&fetch.context) else {
            return;
        };
        let missing: Vec<DeltaId> = fetch.wanted.iter().filter(|id| !state.dag.is_known(id)).copied().collect();
        self.fetch_parents(fetch.context, missing, None, fetch.tried);
    }
}
