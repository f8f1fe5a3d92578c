//! The core's notion of time: two caller-supplied clocks, read together as [`Clocks`].
//!
//! The core never reads a clock. Every entry point takes `now`, so a simulator can run a virtual
//! clock and a real node its system clocks. There are two, because they answer two questions:
//!
//! - **Monotonic** ([`Clocks::monotonic`], a [`Timestamp`] on an epoch the caller picks): how long
//!   since something happened. Timers, request and session deadlines, pending ages, sync
//!   intervals and backoff read it. It never steps back, so a wall-clock step (NTP, an operator)
//!   neither fires every timer at once nor stretches a timeout.
//! - **Wall** ([`Clocks::wall_ms`], Unix milliseconds): what time it is, comparably across
//!   nodes. The HLC, the drift bound on remote deltas and heartbeat sequences read it. It may
//!   step either way; the HLC stays monotone on its own.
//!
//! With the `testing` feature, a plain [`Timestamp`] converts into [`Clocks`] with both clocks
//! equal (its milliseconds as the wall clock), which is what tests and the in-process cluster
//! want; a driver always passes both.

use std::time::Duration;

/// A point in time, in nanoseconds since an epoch the caller chooses (usually node start).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Self = Self(0);
    /// The far future; used as "never" for disabled timers.
    pub const MAX: Self = Self(u64::MAX);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// From seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// `self + duration`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// `self + millis` milliseconds, saturating.
    pub const fn add_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis.saturating_mul(1_000_000)))
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// The two clocks, read at the same moment. See the module documentation for which reads which.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Clocks {
    /// Monotonic time: never steps back. Its epoch is the caller's choice (a real node uses its
    /// wall clock at start, so values read like Unix time).
    pub monotonic: Timestamp,
    /// Wall-clock time, in milliseconds since the Unix epoch: the same epoch on every node.
    pub wall_ms: u64,
}

impl Clocks {
    /// Both clocks at once.
    pub const fn new(monotonic: Timestamp, wall_ms: u64) -> Self {
        Self { monotonic, wall_ms }
    }
}

/// Tests and the in-process harnesses only: a driver must pass a real wall clock, or its HLC and
/// heartbeat sequences would count from its monotonic epoch.
#[cfg(any(test, feature = "testing"))]
impl From<Timestamp> for Clocks {
    /// One clock for both: the wall clock reads the timestamp's milliseconds.
    fn from(now: Timestamp) -> Self {
        Self { monotonic: now, wall_ms: now.as_millis() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(Timestamp::MAX.add_millis(5), Timestamp::MAX);
        assert_eq!(Timestamp::ZERO.saturating_since(Timestamp::from_secs(1)), Duration::ZERO);
        assert_eq!(Timestamp::from_secs(3).saturating_since(Timestamp::from_secs(1)), Duration::from_secs(2));
        assert_eq!(Timestamp::from_millis(1500).as_millis(), 1500);
    }

    #[test]
    fn one_timestamp_makes_both_clocks() {
        let clocks = Clocks::from(Timestamp::from_millis(1_234));
        assert_eq!(clocks, Clocks::new(Timestamp::from_millis(1_234), 1_234));
    }
}
