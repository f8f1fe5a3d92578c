//! The timeout input: expired deadlines first, then the periodic jobs that are due.

use super::timer_table::Timer;
use super::Node;
use crate::applier::Applier;
use crate::eviction::EvictionLimits;
use crate::ids::ContextId;
use crate::node::Output;
use crate::sync::SyncMode;
use crate::sync::SyncReason;

impl Node {
    pub(super) fn on_timeout(&mut self, app: &mut dyn Applier) {
        let now = self.now;
        self.expire_requests(app);
        self.expire_sessions(app);
        self.run_due_evidence();
        if self.timers.fire_periodic(Timer::Heartbeat, now, self.config.heartbeat_interval_ms) {
            self.broadcast_heartbeats(app);
        }
        if self.timers.fire_periodic(Timer::SyncTick, now, self.config.sync_tick_interval_ms) {
            self.sync_tick();
            self.request_missing_keys();
        }
        if self.timers.fire_periodic(Timer::PendingCleanup, now, self.config.pending_cleanup_interval_ms) {
            self.cleanup(app);
        }
        if self.timers.fire_periodic(Timer::BlobEviction, now, self.config.blob_eviction_interval_ms) {
            self.evict_blobs();
        }
    }

    fn broadcast_heartbeats(&mut self, app: &dyn Applier) {
        let contexts: Vec<ContextId> = self.replicas.keys().copied().collect();
        for context in contexts {
            self.broadcast_heartbeat(app, context);
        }
    }

    /// Broadcasts `context`'s root and heads, signed: the heartbeat is our attestation of them,
    /// which other members count when they vouch for a snapshot.
    pub(super) fn broadcast_heartbeat(&mut self, app: &dyn Applier, context: ContextId) {
        let wall_ms = self.wall_ms;
        let Some(replica) = self.replicas.get_mut(&context) else { return };
        // The wall clock makes it grow across restarts; the increment, between two in one
        // millisecond or after the clock stepped back.
        replica.heartbeat_sequence = (replica.heartbeat_sequence + 1).max(wall_ms);
        self.heartbeat_high_water = self.heartbeat_high_water.max(replica.heartbeat_sequence);
        let replica = &self.replicas[&context];
        let statement = crate::attestation::Attestation {
            context,
            signer: self.author,
            sequence: replica.heartbeat_sequence,
            heads: self.capped_heads(&replica.dag),
            root: app.root_hash(&context),
        };
        let applied_count = replica.dag.applied_len() as u64;
        self.metrics.heartbeats_sent += 1;
        self.publish_signed_heartbeat(context, statement, applied_count);
    }

    /// Starts a routine sync for every context that is due, with a random peer, within the
    /// concurrency limit.
    fn sync_tick(&mut self) {
        let now = self.now;
        let policy = self.tracking_policy;
        let due: Vec<_> = self
            .replicas
            .iter()
            .filter(|(_, replica)| replica.session.is_none() && replica.track.is_due(&policy, now))
            .map(|(context, _)| *context)
            .collect();
        for context in due {
            if let Some(peer) = self.choose_peer(&context, &[]) {
                self.start_sync(context, peer, SyncReason::Periodic, SyncMode::Deltas);
            }
        }
    }

    fn cleanup(&mut self, app: &mut dyn Applier) {
        let now = self.now;
        let max_age_ms = self.config.limits.max_pending_age_ms;
        let ttl_ms = self.config.served_snapshot_ttl_ms;
        let contexts: Vec<ContextId> = self.replicas.keys().copied().collect();
        for context in contexts {
            if let Some(replica) = self.replicas.get_mut(&context) {
                replica.dag.cleanup_stale(now, max_age_ms);
                replica.served.expire(now, ttl_ms);
            }
            self.report_evicted(context);
        }
        self.retry_all_quarantined(app);
    }

    /// Retries quarantined deltas once a cleanup period: a transient applier failure (a full
    /// disk, say) must not hold a delta and all its descendants back for good.
    fn retry_all_quarantined(&mut self, app: &mut dyn Applier) {
        let contexts: Vec<_> =
            self.replicas.iter().filter(|(_, replica)| replica.dag.quarantined_len() > 0).map(|(id, _)| *id).collect();
        for context in contexts {
            if let Ok(applied) = self.retry(app, &context) {
                self.metrics.quarantine_recovered += applied.len() as u64;
            }
        }
    }

    pub(super) fn evict_blobs(&mut self) {
        let plan = self.blobs.evict(self.now, &EvictionLimits::from_limits(&self.config.limits));
        if !plan.is_empty() {
            self.metrics.blobs_evicted += plan.len() as u64;
            self.outputs.push_back(Output::EvictBlobs { blobs: plan });
        }
    }
}
