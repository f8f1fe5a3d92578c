//! Where the node's time comes from. The node never reads a clock itself: the simulator gives
//! it virtual time (with per-node skew), the binary gives it wall-clock time.

use rhizome_core::Timestamp;

/// A source of the current time, on the epoch shared by every node (Unix time on a real node).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}
