//! Our outgoing requests: bookkeeping, deadlines, failures, and missing-parent fetches.

use super::ingest::Via;
use super::key_requests::KeyWanted;
use super::timer_table::Deadline;
use super::{Node, RequestFailure, RequestId};
use crate::applier::Applier;
use crate::ids::{ContextId, DeltaId, PeerId};
use crate::sync::SyncFailure;
use crate::wire::{SyncRequest, SyncRequestV1, SyncRequestV2, SyncResponse, SyncResponseV1};
use std::collections::{BTreeMap, BTreeSet};

/// A request we wait on.
#[derive(Debug, Clone)]
pub(crate) struct Outstanding {
    pub(crate) peer: PeerId,
    pub(crate) purpose: Purpose,
}

/// What a request is for.
#[derive(Debug, Clone)]
pub(crate) enum Purpose {
    /// A step of the context's sync session.
    Sync { context: ContextId },
    /// Missing parents of pending deltas.
    ParentFetch(ParentFetch),
    /// A key this node was handed but does not hold.
    Key(KeyWanted),
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
            Purpose::Key(wanted) => &wanted.context,
        }
    }

    fn is_sync_of(&self, context: &ContextId) -> bool {
        matches!(&self.purpose, Purpose::Sync { context: owner } if owner == context)
    }
}

/// The parent fetches in flight: how many requests, and which ids they want. Only the
/// [`RequestTable`] changes it, as fetch requests come and go, so the two never disagree.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParentFetches {
    requests: usize,
    wanted: BTreeSet<(ContextId, DeltaId)>,
}

impl ParentFetches {
    fn begin(&mut self, fetch: &ParentFetch) {
        self.requests += 1;
        self.wanted.extend(fetch.wanted.iter().map(|id| (fetch.context, *id)));
    }

    fn end(&mut self, fetch: &ParentFetch) {
        self.requests -= 1;
        for id in &fetch.wanted {
            self.wanted.remove(&(fetch.context, *id));
        }
    }

    /// Fetch requests in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.requests
    }

    /// True if a fetch in flight already asks for `id`.
    pub(crate) fn is_wanted(&self, context: &ContextId, id: &DeltaId) -> bool {
        self.wanted.contains(&(*context, *id))
    }
}

/// Our requests in flight, by id.
#[derive(Debug, Clone)]
pub(crate) struct RequestTable {
    next_id: u64,
    entries: BTreeMap<RequestId, Outstanding>,
    fetches: ParentFetches,
}

impl Default for RequestTable {
    fn default() -> Self {
        Self { next_id: 1, entries: BTreeMap::new(), fetches: ParentFetches::default() }
    }
}

impl RequestTable {
    /// Records a new request and returns its id.
    fn insert(&mut self, request: Outstanding) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        if let Purpose::ParentFetch(fetch) = &request.purpose {
            self.fetches.begin(fetch);
        }
        self.entries.insert(id, request);
        id
    }

    /// Removes a request (answered, failed, expired or abandoned).
    fn remove(&mut self, id: &RequestId) -> Option<Outstanding> {
        let request = self.entries.remove(id)?;
        if let Purpose::ParentFetch(fetch) = &request.purpose {
            self.fetches.end(fetch);
        }
        Some(request)
    }

    /// True if a request for `wanted` is in flight.
    pub(crate) fn has_key_request(&self, wanted: &KeyWanted) -> bool {
        self.entries.values().any(|request| matches!(&request.purpose, Purpose::Key(asked) if asked == wanted))
    }

    fn ids_where(&self, pick: impl Fn(&Outstanding) -> bool) -> Vec<RequestId> {
        self.entries.iter().filter(|(_, request)| pick(request)).map(|(id, _)| *id).collect()
    }

    /// The parent fetches in flight.
    pub(crate) fn fetches(&self) -> &ParentFetches {
        &self.fetches
    }

    /// Requests in flight.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Checks that the fetch bookkeeping matches the requests (tests and simulator builds).
    pub(crate) fn check_invariants(&self, armed: impl Fn(&RequestId) -> bool) {
        let fetches: Vec<&ParentFetch> = self
            .entries
            .values()
            .filter_map(|request| match &request.purpose {
                Purpose::ParentFetch(fetch) => Some(fetch),
                Purpose::Sync { .. } | Purpose::Key(_) => None,
            })
            .collect();
        assert_eq!(self.fetches.requests, fetches.len(), "parent fetch count out of step");
        for fetch in fetches {
            for id in &fetch.wanted {
                assert!(self.fetches.is_wanted(&fetch.context, id), "a fetched id is not marked wanted");
            }
        }
        for id in self.entries.keys() {
            assert!(armed(id), "request {id:?} has no deadline armed");
        }
    }
}

impl Node {
    /// Sends a request and remembers it until its response, failure or deadline.
    pub(super) fn send_request(&mut self, peer: PeerId, request: SyncRequestV1, purpose: Purpose) -> RequestId {
        self.send_encoded_request(peer, SyncRequest::encode_v1(request), purpose)
    }

    /// Sends a version-2 request (only what V1 cannot carry goes out as V2).
    pub(super) fn send_request_v2(&mut self, peer: PeerId, request: SyncRequestV2, purpose: Purpose) -> RequestId {
        self.send_encoded_request(peer, SyncRequest::encode_v2(request), purpose)
    }

    fn send_encoded_request(&mut self, peer: PeerId, bytes: Vec<u8>, purpose: Purpose) -> RequestId {
        let timeout_ms = match purpose {
            Purpose::Sync { .. } | Purpose::Key(_) => self.config.sync_request_timeout_ms,
            Purpose::ParentFetch(_) => self.config.parent_fetch_timeout_ms,
        };
        let deadline = self.now.add_millis(timeout_ms);
        let request_id = self.requests.insert(Outstanding { peer, purpose });
        self.timers.arm(Deadline::Request(request_id), deadline);
        self.outputs.push_back(super::Output::Request { to: peer, request_id, bytes, deadline });
        request_id
    }

    /// Takes a request out of the table and its deadline out of the timers: the one way a
    /// request ends.
    pub(super) fn take_request(&mut self, request_id: &RequestId) -> Option<Outstanding> {
        let request = self.requests.remove(request_id)?;
        self.timers.disarm(Deadline::Request(*request_id));
        Some(request)
    }

    /// Drops every request of `context` without acting on it (the node left the context).
    pub(super) fn abandon_requests_of(&mut self, context: &ContextId) {
        for id in self.requests.ids_where(|request| request.context() == context) {
            self.take_request(&id);
        }
    }

    pub(super) fn on_response(&mut self, app: &mut dyn Applier, request_id: RequestId, bytes: &[u8]) {
        let Some(request) = self.take_request(&request_id) else {
            self.metrics.stale_responses += 1;
            return;
        };
        match SyncResponse::decode_any(bytes, &self.config.limits) {
            Ok(SyncResponse::V1(response)) => match request.purpose {
                Purpose::Sync { context } => self.on_sync_response(app, context, request.peer, response),
                Purpose::ParentFetch(fetch) => self.on_fetch_response(app, request.peer, fetch, response),
                // A V1 answer to a key request is an error code (not a member, say).
                Purpose::Key(_) => self.metrics.key_answers_useless += 1,
            },
            Ok(SyncResponse::V2(answer)) => match request.purpose {
                Purpose::Key(wanted) => self.on_key_answer(app, request.peer, wanted, answer),
                // A key answer to anything else is a peer out of step: the request failed.
                purpose => {
                    let error = crate::wire::WireError::Malformed("a key answer to another request".to_owned());
                    self.metrics.count_decode_error(error.label());
                    self.on_request_failed(
                        app,
                        Outstanding { peer: request.peer, purpose },
                        SyncFailure::MalformedResponse(error),
                    );
                }
            },
            Err(error) => {
                self.metrics.count_decode_error(error.label());
                self.on_request_failed(app, request, SyncFailure::MalformedResponse(error));
            }
        }
    }

    pub(super) fn on_transport_failure(
        &mut self,
        app: &mut dyn Applier,
        request_id: RequestId,
        reason: RequestFailure,
    ) {
        if let Some(request) = self.take_request(&request_id) {
            let failure = match reason {
                RequestFailure::Timeout => SyncFailure::TimedOut,
                other => SyncFailure::Transport(other),
            };
            self.on_request_failed(app, request, failure);
        }
    }

    pub(super) fn on_peer_down(&mut self, app: &mut dyn Applier, peer: PeerId) {
        self.connected.remove(&peer);
        // A peer that comes back may have restarted with its wall clock stepped back, and its
        // heartbeats would all look like replays of the last one we took: forget that one. A
        // replay can then roll its view back only until its next heartbeat.
        for replica in self.replicas.values_mut() {
            if let Some(view) = replica.peers.get_mut(&peer) {
                view.heartbeat_sequence = 0;
            }
        }
        for id in self.requests.ids_where(|request| request.peer == peer) {
            if let Some(request) = self.take_request(&id) {
                self.on_request_failed(app, request, SyncFailure::PeerDisconnected);
            }
        }
    }

    /// Fails every session that has run past `max_sync_session_ms`, with its request.
    pub(super) fn expire_sessions(&mut self, app: &mut dyn Applier) {
        let expired = self.timers.due(self.now, |deadline| match deadline {
            Deadline::Session(context) => Some(*context),
            _ => None,
        });
        for context in expired {
            for id in self.requests.ids_where(|request| request.is_sync_of(&context)) {
                self.take_request(&id);
            }
            if let Some(session) = self.take_session(&context) {
                self.metrics.sync_session_deadlines += 1;
                self.finish_session(app, session, Err(SyncFailure::SessionDeadline));
            }
        }
    }

    /// Fails every request whose deadline has passed.
    pub(super) fn expire_requests(&mut self, app: &mut dyn Applier) {
        let expired = self.timers.due(self.now, |deadline| match deadline {
            Deadline::Request(id) => Some(*id),
            _ => None,
        });
        for id in expired {
            if let Some(request) = self.take_request(&id) {
                self.on_request_failed(app, request, SyncFailure::TimedOut);
            }
        }
    }

    fn on_request_failed(&mut self, app: &mut dyn Applier, request: Outstanding, reason: SyncFailure) {
        self.metrics.requests_failed += 1;
        match request.purpose {
            Purpose::Sync { context } => {
                if let Some(session) = self.take_session(&context) {
                    self.finish_session(app, session, Err(reason));
                }
            }
            Purpose::ParentFetch(fetch) => {
                self.metrics.parent_fetch_failures += 1;
                self.retry_fetch(fetch);
            }
            // The next sync tick asks again, perhaps another holder.
            Purpose::Key(_) => {}
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
            .filter(|id| !self.requests.fetches().is_wanted(&context, id))
            .take(limits.max_heads_per_message.min(limits.max_missing_parents_per_page))
            .collect();
        if wanted.is_empty() {
            return;
        }
        if self.requests.fetches().in_flight() >= limits.max_inflight_parent_fetches {
            self.metrics.parent_fetches_deferred += 1;
            return;
        }
        let is_member = |peer: &PeerId| self.replicas.get(&context).is_some_and(|replica| replica.is_member_peer(peer));
        let preferred = preferred.filter(|peer| !tried.contains(peer) && *peer != self.peer_id && is_member(peer));
        let peer = match preferred {
            Some(peer) => peer,
            None => match self.choose_peer(&context, &tried) {
                Some(peer) => peer,
                None => return,
            },
        };
        let Some(replica) = self.replicas.get(&context) else {
            return;
        };
        let known = replica.dag.known_sample(self.config.limits.max_heads_per_message);
        let request = SyncRequestV1::DeltasSince {
            context,
            known,
            wanted: wanted.clone(),
            after: None,
            max_deltas: self.config.limits.max_deltas_per_page as u32,
        };
        tried.push(peer);
        self.metrics.parent_fetches += 1;
        self.send_request(peer, request, Purpose::ParentFetch(ParentFetch { context, wanted, tried }));
    }

    fn on_fetch_response(&mut self, app: &mut dyn Applier, peer: PeerId, fetch: ParentFetch, response: SyncResponseV1) {
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
        let verdicts = self.verify_together(&deltas);
        for (delta, verified) in deltas.into_iter().zip(verdicts) {
            if delta.context != context {
                self.reject(crate::reject::RejectReason::WrongContext);
                continue;
            }
            self.ingest_checked(app, peer, delta, Via::Fetch, verified);
        }
        let Some(replica) = self.replicas.get(&context) else {
            return;
        };
        let still_missing: Vec<DeltaId> = fetch.wanted.iter().filter(|id| !replica.dag.is_known(id)).copied().collect();
        if still_missing.is_empty() {
            return;
        }
        match next {
            // The gap is longer than a page: keep reading it from the same peer.
            Some(cursor) => {
                let known = replica.dag.known_sample(self.config.limits.max_heads_per_message);
                let request = SyncRequestV1::DeltasSince {
                    context,
                    known,
                    wanted: fetch.wanted.clone(),
                    after: Some(cursor),
                    max_deltas: self.config.limits.max_deltas_per_page as u32,
                };
                self.send_request(peer, request, Purpose::ParentFetch(fetch));
            }
            None => {
                self.metrics.parent_fetch_failures += 1;
                self.retry_fetch(ParentFetch { wanted: still_missing, ..fetch });
            }
        }
    }

    /// Asks another peer, unless the attempts are used up; periodic sync covers the rest.
    fn retry_fetch(&mut self, fetch: ParentFetch) {
        if fetch.tried.len() >= self.config.limits.max_parent_fetch_attempts {
            return;
        }
        let Some(replica) = self.replicas.get(&fetch.context) else {
            return;
        };
        let missing: Vec<DeltaId> = fetch.wanted.iter().filter(|id| !replica.dag.is_known(id)).copied().collect();
        self.fetch_parents(fetch.context, missing, None, fetch.tried);
    }
}
