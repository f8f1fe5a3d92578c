//! The node loop's settings.

use rhizome_runtime::{EngineOptions, RuntimeLimits};

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The core's settings.
    pub core: rhizome_core::Config,
    /// Call bounds.
    pub runtime_limits: RuntimeLimits,
    /// WASM engine settings (ignored when a shared engine is given).
    pub engine: EngineOptions,
    /// Commands waiting for the loop.
    pub command_queue_len: usize,
    /// Inputs taken into one commit besides the one that woke the loop.
    pub max_inputs_per_commit: usize,
    /// Most local calls of one context made into one delta. The calls that reach the loop
    /// together run into one delta, up to this many (and within the delta bounds every
    /// replica checks); 1 makes a delta per call.
    pub max_calls_per_delta: usize,
    /// Events queued per subscriber before it is dropped as too slow.
    pub subscriber_queue_events: usize,
    /// Live subscriptions.
    pub max_subscribers: usize,
    /// Handler jobs run per context in one pass; the rest run in the next pass, which comes
    /// before the loop waits for another input.
    pub max_handler_runs_per_input: usize,
    /// Longest data received from peers may stay staged in memory before a commit, in
    /// milliseconds. Local writes, acknowledged calls and handler runs commit at once (with
    /// everything staged before them); this bounds what a crash can cost of received data
    /// (sync fetches it again) while sparing a write transaction per received message.
    pub max_non_durable_ms: u64,
    /// Staged rows (state writes and DAG, pending, context and app rows) that force a commit
    /// however young they are: the bound on the staging memory.
    pub max_staged_rows: usize,
    /// Invitation ids remembered as used, so a token cannot be joined with twice. At the
    /// bound, ids whose token has expired are forgotten (an expired token is refused anyway);
    /// if none has, joining by invitation is refused until one does.
    pub max_used_invitations: usize,
    /// A signature memo shared with other nodes in this process (the simulator's); `None`
    /// on a real node. See [`rhizome_core::SignatureMemo`].
    pub signature_memo: Option<rhizome_core::SignatureMemo>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            core: rhizome_core::Config::default(),
            runtime_limits: RuntimeLimits::default(),
            engine: EngineOptions::default(),
            command_queue_len: 1_024,
            max_inputs_per_commit: 256,
            max_calls_per_delta: 64,
            subscriber_queue_events: 1_024,
            max_subscribers: 256,
            max_handler_runs_per_input: 64,
            max_non_durable_ms: 1_000,
            max_staged_rows: 8_192,
            max_used_invitations: 10_000,
            signature_memo: None,
        }
    }
}
