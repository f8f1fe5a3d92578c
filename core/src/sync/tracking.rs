//! When each context may sync next: a minimum interval between syncs, one session at a time,
//! and exponential backoff after failures.

use crate::time::Timestamp;

/// Tracking policy, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackingPolicy {
    /// Least time between the starts of two syncs of one context.
    pub min_interval_ms: u64,
    /// Least time between the starts of two syncs when the second is prompted by evidence (a
    /// peer showing heads we lack). Shorter than `min_interval_ms`: the evidence says a sync
    /// will bring something, and waiting the full interval is what stalled a node after a heal.
    pub min_evidence_interval_ms: u64,
    /// Backoff after the first failure; doubled per further consecutive failure.
    pub backoff_base_ms: u64,
    /// Cap on the backoff.
    pub max_backoff_ms: u64,
}

/// One context's sync bookkeeping; the policy is the node's, passed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncTrack {
    last_started_at: Option<Timestamp>,
    last_success_at: Option<Timestamp>,
    consecutive_failures: u32,
    retry_after: Timestamp,
    in_progress: bool,
}

impl SyncTrack {
    /// True if a routine sync may start at `now`.
    pub fn is_due(&self, policy: &TrackingPolicy, now: Timestamp) -> bool {
        if self.in_progress || now < self.retry_after {
            return false;
        }
        self.last_started_at.is_none_or(|last| now >= last.add_millis(policy.min_interval_ms))
    }

    /// True if a sync prompted by fresh evidence (a live peer's heartbeat showing heads we
    /// lack) may start. The failure backoff is skipped: it was earned against peers that did
    /// not answer, and this peer just spoke. The (shorter) evidence interval still holds, so a
    /// peer repeating claims cannot make us sync with it without pause.
    pub fn may_start_on_evidence(&self, policy: &TrackingPolicy, now: Timestamp) -> bool {
        !self.in_progress
            && self.last_started_at.is_none_or(|last| now >= last.add_millis(policy.min_evidence_interval_ms))
    }

    /// The earliest time an evidence-prompted sync may start (ignoring a session that is
    /// running).
    pub fn evidence_ready_at(&self, policy: &TrackingPolicy) -> Timestamp {
        self.last_started_at.map_or(Timestamp::ZERO, |last| last.add_millis(policy.min_evidence_interval_ms))
    }

    /// True if a forced sync (divergence) may start: only needs no session running.
    pub fn may_force(&self) -> bool {
        !self.in_progress
    }

    /// A session started.
    pub fn on_start(&mut self, now: Timestamp) {
        self.in_progress = true;
        self.last_started_at = Some(now);
    }

    /// The session succeeded: failures reset.
    pub fn on_success(&mut self, now: Timestamp) {
        self.in_progress = false;
        self.consecutive_failures = 0;
        self.retry_after = now;
        self.last_success_at = Some(now);
    }

    /// The session failed: back off. Returns the backoff in milliseconds.
    pub fn on_failure(&mut self, policy: &TrackingPolicy, now: Timestamp) -> u64 {
        self.in_progress = false;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let doublings = self.consecutive_failures.saturating_sub(1).min(32);
        let backoff_ms = policy.backoff_base_ms.saturating_mul(1u64 << doublings).min(policy.max_backoff_ms);
        self.retry_after = now.add_millis(backoff_ms);
        backoff_ms
    }

    /// Consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// When the context last synced successfully.
    pub fn last_success_at(&self) -> Option<Timestamp> {
        self.last_success_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> TrackingPolicy {
        TrackingPolicy {
            min_interval_ms: 5_000,
            min_evidence_interval_ms: 250,
            backoff_base_ms: 5_000,
            max_backoff_ms: 300_000,
        }
    }

    #[test]
    fn minimum_interval_separates_syncs_of_one_context() {
        let mut tracking = SyncTrack::default();
        let policy = policy();
        assert!(tracking.is_due(&policy, Timestamp::ZERO));
        tracking.on_start(Timestamp::from_secs(10));
        assert!(!tracking.is_due(&policy, Timestamp::from_secs(11)), "in progress");
        tracking.on_success(Timestamp::from_secs(11));
        assert!(!tracking.is_due(&policy, Timestamp::from_millis(14_999)));
        assert!(tracking.is_due(&policy, Timestamp::from_secs(15)));
        assert_eq!(tracking.last_success_at(), Some(Timestamp::from_secs(11)));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap_and_success_resets() {
        let mut tracking = SyncTrack::default();
        let policy = policy();
        let mut backoffs = Vec::new();
        let mut now = Timestamp::ZERO;
        for _ in 0..10 {
            tracking.on_start(now);
            backoffs.push(tracking.on_failure(&policy, now));
            assert!(!tracking.is_due(&policy, now.add_millis(backoffs.last().unwrap() - 1)));
            now = now.add_millis(*backoffs.last().unwrap());
            assert!(tracking.is_due(&policy, now));
        }
        assert_eq!(backoffs, vec![5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000]);
        assert_eq!(tracking.consecutive_failures(), 10);
        tracking.on_start(now);
        tracking.on_success(now);
        assert_eq!(tracking.consecutive_failures(), 0);
        tracking.on_start(now);
        assert_eq!(tracking.on_failure(&policy, now), 5_000);
    }

    #[test]
    fn evidence_from_a_live_peer_skips_the_backoff_but_not_the_evidence_interval() {
        let mut tracking = SyncTrack::default();
        let policy = policy();
        for _ in 0..5 {
            tracking.on_start(Timestamp::ZERO);
            tracking.on_failure(&policy, Timestamp::ZERO);
        }
        assert!(!tracking.is_due(&policy, Timestamp::from_secs(60)), "backing off for 80 s");
        assert!(!tracking.may_start_on_evidence(&policy, Timestamp::from_millis(249)));
        assert!(tracking.may_start_on_evidence(&policy, Timestamp::from_millis(250)));
        tracking.on_start(Timestamp::from_millis(250));
        assert!(!tracking.may_start_on_evidence(&policy, Timestamp::from_millis(400)), "a session runs");
    }

    #[test]
    fn forced_sync_ignores_interval_and_backoff_but_not_a_running_session() {
        let mut tracking = SyncTrack::default();
        let policy = policy();
        tracking.on_start(Timestamp::ZERO);
        assert!(!tracking.may_force());
        tracking.on_failure(&policy, Timestamp::ZERO);
        assert!(!tracking.is_due(&policy, Timestamp::ZERO));
        assert!(tracking.may_force());
    }
}
