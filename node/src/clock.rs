//! Where the node's time comes from. The node never reads a clock itself: the simulator gives
//! it virtual time (with per-node skew on the wall clock), the binary gives it the system's
//! monotonic and wall clocks.

use rhizome_core::{Clocks, Timestamp};

/// The node's two clocks (see [`rhizome_core::time`] for which reads which).
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time: never steps back. Its epoch is the implementation's choice.
    fn now(&self) -> Timestamp;
    /// Wall-clock time, in milliseconds since the Unix epoch (the epoch every node shares).
    fn wall_ms(&self) -> u64;
    /// Both clocks, as the core takes them.
    fn clocks(&self) -> Clocks {
        Clocks::new(self.now(), self.wall_ms())
    }
}
