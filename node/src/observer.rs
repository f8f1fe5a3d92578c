//! A window on the node loop: the simulator's trace hash and propagation figures, and in
//! rhizomed the apply-latency histogram (`ApplyTimer`). Optional: a node runs without one.

use rhizome_core::{Input, Output, Timestamp};

/// Sees every core input and output, in order, with the node time it happened at.
pub trait Observer: Send + 'static {
    /// An input about to be fed to the core.
    fn on_input(&mut self, now: Timestamp, input: &Input);
    /// An output the core produced (seen before it is carried out).
    fn on_output(&mut self, now: Timestamp, output: &Output);
}
