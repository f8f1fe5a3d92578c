//! When the node wakes next: one table holds the periodic jobs and every deadline (requests,
//! sessions, deferred evidence), so [`super::Node::poll_timeout`] reads one place. Whoever
//! creates a deadline arms it here and whoever ends its owner disarms it; a deadline left armed
//! would wake the node for nothing.

use super::RequestId;
use crate::config::Config;
use crate::ids::ContextId;
use crate::time::Timestamp;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// A periodic job of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Broadcast every context's root and heads.
    Heartbeat,
    /// Start the routine syncs that are due.
    SyncTick,
    /// Drop stale pending deltas and idle served snapshots; retry the quarantine.
    PendingCleanup,
    /// Run the blob cache's eviction policy.
    BlobEviction,
}

impl Timer {
    const COUNT: usize = 4;

    fn index(self) -> usize {
        match self {
            Self::Heartbeat => 0,
            Self::SyncTick => 1,
            Self::PendingCleanup => 2,
            Self::BlobEviction => 3,
        }
    }
}

/// A one-off deadline, named by what it belongs to. The order (requests, then sessions, then
/// evidence, each by id) is the order a timeout handles them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Deadline {
    /// One of our requests is unanswered by then.
    Request(RequestId),
    /// A context's sync session must have ended by then (`max_sync_session_ms`).
    Session(ContextId),
    /// A context's deferred evidence may be acted on from then.
    Evidence(ContextId),
}

/// The node's timers.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable {
    periodic: [Timestamp; Timer::COUNT],
    armed: BTreeMap<Deadline, Timestamp>,
    queue: BTreeSet<(Timestamp, Deadline)>,
}

impl TimerTable {
    /// First runs are jittered over one interval so that nodes started together do not
    /// heartbeat and sync in lockstep.
    pub(crate) fn new(config: &Config, now: Timestamp, rng: &mut ChaCha8Rng) -> Self {
        let mut jittered = |interval_ms: u64| now.add_millis(1 + rng.next_u64() % interval_ms.max(1));
        let mut periodic = [Timestamp::MAX; Timer::COUNT];
        periodic[Timer::Heartbeat.index()] = jittered(config.heartbeat_interval_ms);
        periodic[Timer::SyncTick.index()] = jittered(config.sync_tick_interval_ms);
        periodic[Timer::PendingCleanup.index()] = now.add_millis(config.pending_cleanup_interval_ms);
        periodic[Timer::BlobEviction.index()] = now.add_millis(config.blob_eviction_interval_ms);
        Self { periodic, armed: BTreeMap::new(), queue: BTreeSet::new() }
    }

    /// If `timer` is due at `now`, schedules its next run `interval_ms` later and returns true.
    pub(crate) fn fire_periodic(&mut self, timer: Timer, now: Timestamp, interval_ms: u64) -> bool {
        let at = &mut self.periodic[timer.index()];
        if now < *at {
            return false;
        }
        *at = now.add_millis(interval_ms);
        true
    }

    /// Arms `deadline` for `at`, replacing an earlier arming of it.
    pub(crate) fn arm(&mut self, deadline: Deadline, at: Timestamp) {
        if let Some(previous) = self.armed.insert(deadline, at) {
            self.queue.remove(&(previous, deadline));
        }
        self.queue.insert((at, deadline));
    }

    /// Disarms `deadline`, if armed.
    pub(crate) fn disarm(&mut self, deadline: Deadline) {
        if let Some(at) = self.armed.remove(&deadline) {
            self.queue.remove(&(at, deadline));
        }
    }

    /// When `deadline` is armed for, if it is.
    pub(crate) fn armed_at(&self, deadline: &Deadline) -> Option<Timestamp> {
        self.armed.get(deadline).copied()
    }

    /// The armed deadlines due at `now` that `select` picks, in [`Deadline`] order. They stay
    /// armed: handling one disarms it.
    pub(crate) fn due<T: Ord>(&self, now: Timestamp, select: impl Fn(&Deadline) -> Option<T>) -> Vec<T> {
        let mut due: Vec<T> =
            self.queue.iter().take_while(|(at, _)| *at <= now).filter_map(|(_, deadline)| select(deadline)).collect();
        due.sort_unstable();
        due
    }

    /// Disarms every deadline of `context` (the node left it). Requests are disarmed by the
    /// request table's owner, which knows their contexts.
    pub(crate) fn disarm_context(&mut self, context: &ContextId) {
        self.disarm(Deadline::Session(*context));
        self.disarm(Deadline::Evidence(*context));
    }

    /// The earliest time anything is due.
    pub(crate) fn next_wake(&self) -> Timestamp {
        let periodic = self.periodic.iter().min().copied().unwrap_or(Timestamp::MAX);
        let deadline = self.queue.first().map_or(Timestamp::MAX, |(at, _)| *at);
        periodic.min(deadline)
    }

    /// Deadlines armed (for invariant checks).
    pub(crate) fn armed_len(&self) -> usize {
        self.armed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn table() -> TimerTable {
        let config = Config::default();
        TimerTable::new(&config, Timestamp::ZERO, &mut ChaCha8Rng::seed_from_u64(1))
    }

    #[test]
    fn the_earliest_periodic_job_or_deadline_is_the_next_wake() {
        let mut timers = table();
        let periodic = timers.next_wake();
        assert!(periodic > Timestamp::ZERO);
        let context = ContextId::hash_of(b"c");
        timers.arm(Deadline::Evidence(context), Timestamp::from_nanos(1));
        assert_eq!(timers.next_wake(), Timestamp::from_nanos(1));
        timers.disarm(Deadline::Evidence(context));
        assert_eq!(timers.next_wake(), periodic);
        assert_eq!(timers.armed_len(), 0);
    }

    #[test]
    fn rearming_moves_a_deadline_and_due_lists_it_in_deadline_order() {
        let mut timers = table();
        let (a, b) = (ContextId::hash_of(b"a"), ContextId::hash_of(b"b"));
        timers.arm(Deadline::Session(b), Timestamp::from_secs(1));
        timers.arm(Deadline::Request(RequestId(7)), Timestamp::from_secs(2));
        timers.arm(Deadline::Session(a), Timestamp::from_secs(9));
        timers.arm(Deadline::Session(a), Timestamp::from_secs(2));
        let due = timers.due(Timestamp::from_secs(2), |deadline| Some(*deadline));
        let (first, second) = (a.min(b), a.max(b));
        assert_eq!(due, vec![Deadline::Request(RequestId(7)), Deadline::Session(first), Deadline::Session(second)]);
        let sessions = timers.due(Timestamp::from_secs(1), |deadline| match deadline {
            Deadline::Session(context) => Some(*context),
            _ => None,
        });
        assert_eq!(sessions, vec![b]);
        timers.disarm_context(&a);
        assert_eq!(timers.armed_len(), 2);
    }

    #[test]
    fn a_periodic_job_fires_once_per_interval() {
        let mut timers = table();
        let at = timers.periodic[Timer::SyncTick.index()];
        assert!(!timers.fire_periodic(Timer::SyncTick, Timestamp::from_nanos(at.as_nanos() - 1), 10_000));
        assert!(timers.fire_periodic(Timer::SyncTick, at, 10_000));
        assert!(!timers.fire_periodic(Timer::SyncTick, at, 10_000));
        assert_eq!(timers.periodic[Timer::SyncTick.index()], at.add_millis(10_000));
    }
}
