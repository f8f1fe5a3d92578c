//! Acting on evidence that a peer holds deltas we lack (its heartbeat or heads answer named
//! heads we do not know) when the evidence arrives at a moment we cannot sync: a session is
//! running, or the last one started less than the evidence interval ago. Dropping it there
//! left a node behind after a heal until the next periodic sync (seed 2 of convergence-100:
//! 12 s), because identical heartbeats of converged peers reach each node only once.

use super::timer_table::Deadline;
use super::Node;
use crate::ids::{ContextId, PeerId};
use crate::sync::{SyncMode, SyncReason};

impl Node {
    /// Remembers that `context` has a peer ahead, to sync with it once the evidence interval
    /// has passed. A running session needs no entry: its end looks at the evidence.
    pub(super) fn defer_evidence(&mut self, context: ContextId) {
        let grace = self.now.add_millis(self.config.min_sync_evidence_interval_ms);
        let policy = self.tracking_policy;
        let Some(replica) = self.replicas.get_mut(&context) else { return };
        if replica.session.is_some() || replica.evidence_due.is_some() {
            return;
        }
        let at = replica.track.evidence_ready_at(&policy).max(grace);
        replica.evidence_due = Some(at);
        self.timers.arm(Deadline::Evidence(context), at);
    }

    /// Starts the deferred evidence syncs that are due.
    pub(super) fn run_due_evidence(&mut self) {
        let now = self.now;
        let policy = self.tracking_policy;
        let due = self.timers.due(now, |deadline| match deadline {
            Deadline::Evidence(context) => Some(*context),
            _ => None,
        });
        for context in due {
            self.timers.disarm(Deadline::Evidence(context));
            let Some(replica) = self.replicas.get_mut(&context) else { continue };
            replica.evidence_due = None;
            if replica.session.is_some() {
                continue;
            }
            if !replica.track.may_start_on_evidence(&policy, now) {
                self.defer_evidence(context);
                continue;
            }
            let ahead = self.connected_peers_ahead(&context);
            if ahead.is_empty() {
                continue;
            }
            let peer = ahead[self.random_index(ahead.len())];
            self.start_sync(context, peer, SyncReason::HeartbeatAhead, SyncMode::Deltas);
        }
    }

    /// Connected member peers whose last reported heads include deltas we lack.
    pub(super) fn connected_peers_ahead(&self, context: &ContextId) -> Vec<PeerId> {
        let Some(replica) = self.replicas.get(context) else { return Vec::new() };
        replica.peers_ahead(|peer| self.connected.contains(peer) && replica.is_member_peer(peer))
    }

    /// A session with `peer` ended and we still lack heads it claimed: it could not (or would
    /// not) deliver them, so its claim stops counting as evidence until it makes a new one.
    /// Without this, a peer advertising heads it never serves would draw syncs forever.
    pub(super) fn drop_undelivered_claim(&mut self, context: &ContextId, peer: &PeerId) {
        if self.connected_peers_ahead(context).contains(peer) {
            if let Some(view) = self.replicas.get_mut(context).and_then(|replica| replica.peers.get_mut(peer)) {
                view.heads.clear();
            }
        }
    }
}
