//! Hybrid logical clock: physical milliseconds, a logical counter and a node id.
//!
//! HLC values order deltas for last-writer-wins and give every delta a time that is identical
//! on every replica. The derived `Ord` (physical, then logical, then node) is a total order.

use borsh::{BorshDeserialize, BorshSerialize};

/// One HLC timestamp.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, BorshSerialize, BorshDeserialize)]
pub struct Hlc {
    /// Wall-clock milliseconds, as the issuing node saw them (or later, after observing peers).
    pub physical_ms: u64,
    /// Orders events within one millisecond.
    pub logical: u32,
    /// The issuing node, to break ties between nodes.
    pub node: u64,
}

/// Why a remote HLC was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HlcError {
    /// The remote clock is further ahead of ours than the configured bound.
    #[error("remote HLC is {ahead_ms} ms ahead of local time, over the {max_drift_ms} ms bound")]
    TooFarAhead {
        /// How far ahead the remote value is.
        ahead_ms: u64,
        /// The configured bound.
        max_drift_ms: u64,
    },
}

/// A node's hybrid logical clock.
#[derive(Debug, Clone)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    /// A clock for the node whose tie-break id is `node`.
    pub fn new(node: u64) -> Self {
        Self { last: Hlc { physical_ms: 0, logical: 0, node } }
    }

    /// The latest value issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// The value the next [`HlcClock::tick`] at `now_ms` will return, without issuing it.
    pub fn peek(&self, now_ms: u64) -> Hlc {
        self.clone().tick(now_ms)
    }

    /// A new value, strictly greater than every value issued or observed so far.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.last.physical_ms {
            self.last.physical_ms = now_ms;
            self.last.logical = 0;
        } else {
            self.bump_logical();
        }
        self.last
    }

    /// Takes a remote value into account so that later ticks order after it.
    ///
    /// Refuses (and ignores) a value more than `max_drift_ms` ahead of `now_ms`: a peer with a
    /// runaway clock must not drag every replica's clock into the future.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64, max_drift_ms: u64) -> Result<(), HlcError> {
        check_drift(remote, now_ms, max_drift_ms)?;
        let physical = now_ms.max(self.last.physical_ms).max(remote.physical_ms);
        let logical = match (physical == self.last.physical_ms, physical == remote.physical_ms) {
            (true, true) => self.last.logical.max(remote.logical),
            (true, false) => self.last.logical,
            (false, true) => remote.logical,
            (false, false) => 0,
        };
        if physical > self.last.physical_ms || logical > self.last.logical {
            self.last.physical_ms = physical;
            self.last.logical = logical;
        }
        Ok(())
    }

    /// Takes a stored value into account after a restart, with no drift bound: the value was
    /// issued or accepted before the crash, and ticks after the restart must order after it
    /// even if the wall clock stepped back meanwhile.
    pub fn restore_high_water(&mut self, stored: Hlc) {
        if (stored.physical_ms, stored.logical) > (self.last.physical_ms, self.last.logical) {
            self.last.physical_ms = stored.physical_ms;
            self.last.logical = stored.logical;
        }
    }

    fn bump_logical(&mut self) {
        match self.last.logical.checked_add(1) {
            Some(logical) => self.last.logical = logical,
            None => {
                // 4 billion events in one millisecond: borrow from the physical part rather
                // than wrap, which would break monotonicity.
                self.last.physical_ms += 1;
                self.last.logical = 0;
            }
        }
    }
}

/// Checks that `remote` is at most `max_drift_ms` ahead of `now_ms`.
pub fn check_drift(remote: Hlc, now_ms: u64, max_drift_ms: u64) -> Result<(), HlcError> {
    let ahead_ms = remote.physical_ms.saturating_sub(now_ms);
    if ahead_ms > max_drift_ms {
        return Err(HlcError::TooFarAhead { ahead_ms, max_drift_ms });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_clock_stalls_or_goes_back() {
        let mut clock = HlcClock::new(1);
        let a = clock.tick(100);
        let b = clock.tick(100);
        let c = clock.tick(50);
        let d = clock.tick(101);
        assert!(a < b && b < c && c < d);
        assert_eq!(d, Hlc { physical_ms: 101, logical: 0, node: 1 });
    }

    #[test]
    fn observing_a_remote_value_orders_later_ticks_after_it() {
        let mut clock = HlcClock::new(1);
        let remote = Hlc { physical_ms: 2_000, logical: 7, node: 2 };
        clock.observe(remote, 1_000, 5_000).unwrap();
        let next = clock.tick(1_000);
        assert!(next > remote);
        assert_eq!(next.physical_ms, 2_000);
    }

    #[test]
    fn remote_value_beyond_drift_bound_is_refused_and_ignored() {
        let mut clock = HlcClock::new(1);
        let remote = Hlc { physical_ms: 10_001, logical: 0, node: 2 };
        assert_eq!(
            clock.observe(remote, 5_000, 5_000),
            Err(HlcError::TooFarAhead { ahead_ms: 5_001, max_drift_ms: 5_000 })
        );
        assert_eq!(clock.tick(5_000).physical_ms, 5_000);
        // Exactly at the bound is accepted.
        assert!(clock.observe(Hlc { physical_ms: 10_000, logical: 0, node: 2 }, 5_000, 5_000).is_ok());
    }

    #[test]
    fn order_is_total_with_node_as_last_tie_break() {
        let a = Hlc { physical_ms: 1, logical: 1, node: 1 };
        let b = Hlc { physical_ms: 1, logical: 1, node: 2 };
        assert!(a < b);
        assert!(Hlc { physical_ms: 1, logical: 2, node: 0 } > b);
    }

    #[test]
    fn logical_overflow_carries_into_physical() {
        let mut clock = HlcClock::new(1);
        clock.last = Hlc { physical_ms: 9, logical: u32::MAX, node: 1 };
        let next = clock.tick(9);
        assert_eq!((next.physical_ms, next.logical), (10, 0));
    }
}

#[cfg(test)]
mod peek_tests {
    use super::*;

    #[test]
    fn a_restored_high_water_mark_orders_later_ticks_after_it() {
        let mut clock = HlcClock::new(1);
        clock.restore_high_water(Hlc { physical_ms: 5_000, logical: 7, node: 9 });
        let next = clock.tick(1_000);
        assert_eq!((next.physical_ms, next.logical, next.node), (5_000, 8, 1));
        clock.restore_high_water(Hlc { physical_ms: 10, logical: 0, node: 9 });
        assert_eq!(clock.tick(1_000).logical, 9, "an older stored value changes nothing");
    }

    #[test]
    fn peek_predicts_the_next_tick_without_issuing_it() {
        let mut clock = HlcClock::new(3);
        clock.tick(100);
        let predicted = clock.peek(100);
        assert_eq!(clock.peek(100), predicted, "peeking twice issues nothing");
        assert_eq!(clock.tick(100), predicted);
    }
}
