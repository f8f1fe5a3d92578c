//! Bounds on what an application may do in one call, and on what a delta payload may carry.

/// Runtime bounds; units in the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// WASM fuel (roughly, instructions) per call.
    pub fuel_per_call: u64,
    /// Linear memory per instance.
    pub max_memory_bytes: usize,
    /// Largest module accepted.
    pub max_module_bytes: usize,
    /// Largest register value or set element.
    pub max_value_bytes: usize,
    /// Most bytes over all segments of a path.
    pub max_path_bytes: usize,
    /// Most segments in a path (nesting depth).
    pub max_path_depth: usize,
    /// Most CRDT actions one call (or delta) may record.
    pub max_actions_per_call: usize,
    /// Most events one call may emit.
    pub max_events_per_call: usize,
    /// Largest event (kind and data).
    pub max_event_bytes: usize,
    /// Largest call input.
    pub max_input_bytes: usize,
    /// Largest return value.
    pub max_return_bytes: usize,
    /// Most log bytes one call may write (the rest is dropped and counted).
    pub max_log_bytes_per_call: usize,
    /// Pending event-handler jobs per context; beyond it, jobs are dropped and counted.
    pub max_pending_handler_jobs: usize,
    /// Largest encoded payload one call may produce (the core refuses larger deltas).
    pub max_payload_bytes: usize,
}

impl RuntimeLimits {
    /// Checks that the call limits fit inside the protocol's payload bounds, so that every
    /// payload a call produces is one every replica accepts.
    pub fn check(&self) -> Result<(), String> {
        let bounds = crate::payload::PAYLOAD_BOUNDS_V1;
        let checks = [
            ("max_actions_per_call", self.max_actions_per_call, bounds.max_actions),
            ("max_events_per_call", self.max_events_per_call, bounds.max_events),
            ("max_path_depth", self.max_path_depth, bounds.max_path_depth),
            ("max_path_bytes", self.max_path_bytes, bounds.max_path_bytes),
            ("max_value_bytes", self.max_value_bytes, bounds.max_value_bytes),
            ("max_event_bytes", self.max_event_bytes, bounds.max_event_bytes),
        ];
        for (name, value, bound) in checks {
            if value > bound {
                return Err(format!("{name} = {value} exceeds the protocol bound {bound}"));
            }
        }
        Ok(())
    }
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            fuel_per_call: 50_000_000,
            max_memory_bytes: 64 * 1024 * 1024,
            max_module_bytes: 16 * 1024 * 1024,
            max_value_bytes: 256 * 1024,
            max_path_bytes: 1024,
            max_path_depth: 16,
            max_actions_per_call: 4_096,
            max_events_per_call: 64,
            max_event_bytes: 64 * 1024,
            max_input_bytes: 1024 * 1024,
            max_return_bytes: 1024 * 1024,
            max_log_bytes_per_call: 16 * 1024,
            max_pending_handler_jobs: 10_000,
            max_payload_bytes: 1024 * 1024,
        }
    }
}
