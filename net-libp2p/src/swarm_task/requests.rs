//! Request/response in both directions.
//!
//! Outbound: the node gives each request its own timeout, shorter than libp2p's generous global
//! one, so the task keeps a deadline table; whichever comes first, the answer, a failure or the
//! deadline, produces the request's one outcome event, and anything later is ignored.
//!
//! Inbound: each peer request gets an [`InboundRequestId`] from a counter and waits, with its
//! response channel, until the node answers. Waiting requests are bounded per peer and in
//! total; excess ones are refused (their stream closes, so the requester fails fast).

use super::SwarmTask;
use crate::identity::{to_core_peer_id, to_libp2p_peer_id};
use crate::metrics::bump;
use libp2p::request_response::{self, InboundFailure, OutboundFailure, OutboundRequestId, ResponseChannel};
use rhizome_core::{InboundRequestId, PeerId, RequestFailure, RequestId};
use rhizome_node::TransportEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// One of our requests waiting for its outcome.
#[derive(Debug)]
struct Outbound {
    id: RequestId,
    peer: libp2p::PeerId,
    deadline: Instant,
}

/// Our requests in flight and their deadlines.
#[derive(Debug, Default)]
pub(crate) struct OutboundTable {
    pending: BTreeMap<OutboundRequestId, Outbound>,
    deadlines: BTreeSet<(Instant, OutboundRequestId)>,
}

impl OutboundTable {
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    fn insert(&mut self, libp2p_id: OutboundRequestId, request: Outbound) {
        self.deadlines.insert((request.deadline, libp2p_id));
        self.pending.insert(libp2p_id, request);
    }

    fn remove(&mut self, libp2p_id: &OutboundRequestId) -> Option<Outbound> {
        let request = self.pending.remove(libp2p_id)?;
        self.deadlines.remove(&(request.deadline, *libp2p_id));
        Some(request)
    }

    /// Removes and returns the requests whose deadline has passed.
    fn take_expired(&mut self, now: Instant) -> Vec<Outbound> {
        let mut expired = Vec::new();
        while let Some(&(deadline, libp2p_id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(request) = self.pending.remove(&libp2p_id) {
                expired.push(request);
            }
        }
        expired
    }

    fn len(&self) -> usize {
        self.pending.len()
    }
}

/// A peer request waiting for the node's answer.
#[derive(Debug)]
struct Inbound {
    peer: libp2p::PeerId,
    libp2p_id: request_response::InboundRequestId,
    channel: ResponseChannel<Vec<u8>>,
}

/// Peer requests waiting for the node's answer, bounded per peer and in total.
#[derive(Debug, Default)]
pub(crate) struct InboundTable {
    waiting: BTreeMap<u64, Inbound>,
    by_libp2p_id: BTreeMap<request_response::InboundRequestId, u64>,
    per_peer: BTreeMap<libp2p::PeerId, usize>,
    next_id: u64,
}

impl InboundTable {
    fn has_room(&self, peer: &libp2p::PeerId, max_per_peer: usize, max_total: usize) -> bool {
        self.waiting.len() < max_total && self.per_peer.get(peer).copied().unwrap_or(0) < max_per_peer
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn insert(&mut self, id: u64, request: Inbound) {
        *self.per_peer.entry(request.peer).or_default() += 1;
        self.by_libp2p_id.insert(request.libp2p_id, id);
        self.waiting.insert(id, request);
    }

    fn remove(&mut self, id: u64) -> Option<Inbound> {
        let request = self.waiting.remove(&id)?;
        self.by_libp2p_id.remove(&request.libp2p_id);
        if let Some(count) = self.per_peer.get_mut(&request.peer) {
            *count -= 1;
            if *count == 0 {
                self.per_peer.remove(&request.peer);
            }
        }
        Some(request)
    }

    fn remove_by_libp2p_id(&mut self, libp2p_id: &request_response::InboundRequestId) -> Option<Inbound> {
        let id = *self.by_libp2p_id.get(libp2p_id)?;
        self.remove(id)
    }
}

impl SwarmTask {
    fn fail_request(&mut self, id: RequestId, reason: RequestFailure) {
        let counter = match reason {
            RequestFailure::Timeout => &self.counters.requests_failed_timeout,
            RequestFailure::Unreachable => &self.counters.requests_failed_unreachable,
        };
        bump(counter);
        // Reliable event: the queue never refuses it.
        let _ = self.events.push(TransportEvent::RequestFailed { id, reason });
    }

    /// Sends a request (dialling the peer first if needed, with every address we know).
    pub(super) fn start_request(&mut self, to: PeerId, id: RequestId, bytes: Vec<u8>, timeout: Duration) {
        if bytes.len() > self.config.max_request_bytes {
            bump(&self.counters.requests_too_large);
            return self.fail_request(id, RequestFailure::Unreachable);
        }
        if self.outbound.len() >= self.config.max_outbound_requests {
            bump(&self.counters.requests_refused_over_limit);
            return self.fail_request(id, RequestFailure::Unreachable);
        }
        let Ok(peer) = to_libp2p_peer_id(&to) else {
            return self.fail_request(id, RequestFailure::Unreachable);
        };
        let addrs = self.health.get(&peer).map(|record| record.addrs.clone()).unwrap_or_default();
        let libp2p_id = self.swarm.behaviour_mut().sync.send_request_with_addresses(&peer, bytes, addrs);
        let timeout = timeout.min(Duration::from_millis(self.config.request_timeout_upper_bound_ms));
        self.outbound.insert(libp2p_id, Outbound { id, peer, deadline: Instant::now() + timeout });
        bump(&self.counters.requests_sent);
    }

    /// Fails every request whose own deadline has passed; a late answer is then ignored.
    pub(super) fn expire_requests(&mut self) {
        for request in self.outbound.take_expired(Instant::now()) {
            self.health.record_failure(request.peer);
            self.fail_request(request.id, RequestFailure::Timeout);
        }
    }

    /// Hands the node's answer to the waiting peer.
    pub(super) fn respond(&mut self, to: PeerId, id: InboundRequestId, bytes: Vec<u8>) {
        let Some(request) = self.inbound.remove(id.0) else {
            bump(&self.counters.responses_unknown_request);
            return;
        };
        if to_core_peer_id(&request.peer) != Some(to) {
            tracing::warn!(request = id.0, "respond names another peer than the requester; answering the requester");
        }
        if bytes.len() > self.config.max_response_bytes {
            // Dropping the channel closes the stream: the requester fails now, not at timeout.
            bump(&self.counters.responses_too_large);
            return;
        }
        if self.swarm.behaviour_mut().sync.send_response(request.channel, bytes).is_err() {
            bump(&self.counters.responses_unknown_request);
        }
    }

    pub(super) fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request_id, request, channel } => {
                    self.on_inbound_request(peer, request_id, request, channel)
                }
                request_response::Message::Response { request_id, response } => {
                    self.on_response(peer, request_id, response)
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.on_outbound_failure(peer, request_id, error)
            }
            request_response::Event::InboundFailure { request_id, error, .. } => {
                // The request is gone (stream broke, requester gave up): forget it, so a late
                // respond is counted as unknown instead of holding a slot.
                self.inbound.remove_by_libp2p_id(&request_id);
                if let InboundFailure::Io(error) = error {
                    tracing::debug!(%error, "inbound request failed");
                }
            }
            request_response::Event::ResponseSent { .. } => bump(&self.counters.responses_sent),
        }
    }

    fn on_inbound_request(
        &mut self,
        peer: libp2p::PeerId,
        libp2p_id: request_response::InboundRequestId,
        bytes: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        self.health.record_seen(peer, self.now_ms());
        let Some(from) = to_core_peer_id(&peer) else {
            bump(&self.counters.events_dropped_non_ed25519);
            return;
        };
        if !self.inbound.has_room(&peer, self.config.max_inbound_requests_per_peer, self.config.max_inbound_requests) {
            bump(&self.counters.inbound_refused_over_limit);
            return;
        }
        let id = self.inbound.next_id();
        let event = TransportEvent::Request { from, id: InboundRequestId(id), bytes };
        if self.events.push(event).is_ok() {
            self.inbound.insert(id, Inbound { peer, libp2p_id, channel });
            bump(&self.counters.requests_received);
        }
    }

    fn on_response(&mut self, peer: libp2p::PeerId, libp2p_id: OutboundRequestId, bytes: Vec<u8>) {
        self.health.record_success(peer, self.now_ms());
        let Some(request) = self.outbound.remove(&libp2p_id) else {
            bump(&self.counters.responses_late);
            return;
        };
        bump(&self.counters.responses_received);
        let _ = self.events.push(TransportEvent::Response { id: request.id, bytes });
    }

    fn on_outbound_failure(&mut self, peer: libp2p::PeerId, libp2p_id: OutboundRequestId, error: OutboundFailure) {
        let Some(request) = self.outbound.remove(&libp2p_id) else {
            return;
        };
        // A failed dial is counted against the peer by the dial itself.
        if !matches!(error, OutboundFailure::DialFailure) {
            self.health.record_failure(peer);
        }
        // Oversized or cut-short responses were counted by the codec.
        let reason = match &error {
            OutboundFailure::Timeout => RequestFailure::Timeout,
            _ => RequestFailure::Unreachable,
        };
        tracing::debug!(%peer, %error, "request failed");
        self.fail_request(request.id, reason);
    }
}
