//! A window on the node loop: the simulator's trace hash and propagation figures, and in
//! rhizomed the apply-latency histogram (`ApplyTimer`). Optional: a node runs without one.

use rhizome_core::{Clocks, Input, Output, Timestamp};

/// Sees every core input (local commands included) and output, in order, with the node time it
/// happened at. The app runtime's own calls and the start-up restore are not core inputs: what
/// they produce reaches the core as `Input::LocalWrite` payloads, which are seen.
pub trait Observer: Send + 'static {
    /// An input about to be fed to the core, with both clocks the core is given.
    fn on_input(&mut self, now: Clocks, input: &Input);
    /// An output the core produced (seen before it is carried out).
    fn on_output(&mut self, now: Timestamp, output: &Output);
}
