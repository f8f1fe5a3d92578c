//! The node's periodic timers, and the timeout input that runs them.

use super::Node;
use crate::applier::Applier;
use crate::config::Config;
use crate::eviction::EvictionLimits;
use crate::ids::ContextId;
use crate::node::{Event, Output};
use crate::sync::SyncMode;
use crate::sync::SyncReason;
use crate::time::Timestamp;
use crate::wire::{GossipV1, Heartbeat};
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

/// When each periodic job runs next.
#[derive(Debug, Clone)]
pub(crate) struct Timers {
    heartbeat_at: Timestamp,
    sync_tick_at: Timestamp,
    cleanup_at: Timestamp,
    eviction_at: Timestamp,
}

impl Timers {
    /// First runs are jittered over one interval so that nodes started together do not
    /// heartbeat and sync in lockstep.
    pub(crate) fn new(config: &Config, now: Timestamp, rng: &mut ChaCha8Rng) -> Self {
        let mut jittered = |interval_ms: u64| now.add_millis(1 + rng.next_u64() % interval_ms.max(1));
        Self {
            heartbeat_at: jittered(config.heartbeat_interval_ms),
            sync_tick_at: jittered(config.sync_tick_interval_ms),
            cleanup_at: now.add_millis(config.pending_cleanup_interval_ms),
            eviction_at: now.add_millis(config.blob_eviction_interval_ms),
        }
    }

    pub(crate) fn earliest(&self) -> Timestamp {
        self.heartbeat_at.min(self.sync_tick_at).min(self.cleanup_at).min(self.eviction_at)
    }
}

impl<A: Applier> Node<A> {
    pub(super) fn on_timeout(&mut self) {
        let now = self.now;
        self.expire_requests();
        self.expire_sessions();
        self.run_due_evidence();
        if now >= self.timers.heartbeat_at {
            self.timers.heartbeat_at = now.add_millis(self.config.heartbeat_interval_ms);
            self.broadcast_heartbeats();
        }
        if now >= self.timers.sync_tick_at {
            self.timers.sync_tick_at = now.add_millis(self.config.sync_tick_interval_ms);
            self.sync_tick();
        }
        if now >= self.timers.cleanup_at {
            self.timers.cleanup_at = now.add_millis(self.config.pending_cleanup_interval_ms);
            self.cleanup();
        }
        if now >= self.timers.eviction_at {
            self.timers.eviction_at = now.add_millis(self.config.blob_eviction_interval_ms);
            self.evict_blobs();
        }
    }

    fn broadcast_heartbeats(&mut self) {
        let contexts: Vec<ContextId> = self.contexts.keys().copied().collect();
        for context in contexts {
            self.broadcast_heartbeat(context);
        }
    }

    /// Broadcasts `context`'s root and heads.
    pub(super) fn broadcast_heartbeat(&mut self, context: ContextId) {
        let Some(state) = self.contexts.get(&context) else { return };
        let heartbeat = Heartbeat {
            context,
            root: self.applier.root_hash(&context),
            heads: self.capped_heads(&state.dag),
            applied_count: state.dag.applied_len() as u64,
        };
        self.metrics.heartbeats_sent += 1;
        self.broadcast(context, GossipV1::Heartbeat(heartbeat));
    }

    /// Starts a routine sync for every context that is due, with a random peer, within the
    /// concurrency limit.
    fn sync_tick(&mut self) {
        let now = self.now;
        let due: Vec<_> = self
            .contexts
            .keys()
            .filter(|context| !self.sessions.contains_key(*context) && self.tracking.is_due(context, now))
            .copied()
            .collect();
        for context in due {
            if let Some(peer) = self.choose_peer(&context, &[]) {
                self.start_sync(context, peer, SyncReason::Periodic, SyncMode::Deltas);
            }
        }
    }

    fn cleanup(&mut self) {
        let now = self.now;
        let max_age_ms = self.config.limits.pending_max_age_ms;
        let mut events = Vec::new();
        for (context, state) in &mut self.contexts {
            let count = state.dag.cleanup_stale(now, max_age_ms);
            if count > 0 {
                events.push(Event::PendingEvicted { context: *context, count });
            }
        }
        self.outputs.extend(events.into_iter().map(Output::Event));
        self.served.expire(now, self.config.served_snapshot_ttl_ms);
        self.retry_all_quarantined();
    }

    /// Retries quarantined deltas once a cleanup period: a transient applier failure (a full
    /// disk, say) must not hold a delta and all its descendants back for good.
    fn retry_all_quarantined(&mut self) {
        let contexts: Vec<_> =
            self.contexts.iter().filter(|(_, state)| state.dag.quarantined_len() > 0).map(|(id, _)| *id).collect();
        for context in contexts {
            if let Ok(applied) = self.retry_quarantined(self.now, &context) {
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
