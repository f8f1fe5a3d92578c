//! Why an application call failed. Every failure leaves state untouched.

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The context is not bound to an app here.
    #[error("unknown context")]
    UnknownContext,
    /// The app is not installed.
    #[error("unknown app")]
    UnknownApp,
    /// The module is larger than allowed.
    #[error("module of {bytes} bytes, over the limit of {max}")]
    ModuleTooLarge {
        /// Module size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The module does not compile or does not link against the rhizome ABI.
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// The app has no such exported method.
    #[error("no method {0:?}")]
    NoSuchMethod(String),
    /// The call used all its fuel.
    #[error("out of fuel")]
    OutOfFuel,
    /// The call tried to grow memory past the limit.
    #[error("out of memory: {requested_bytes} bytes requested, limit {max_bytes}")]
    OutOfMemory {
        /// Requested size.
        requested_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The guest called `abort`.
    #[error("aborted: {0}")]
    Aborted(String),
    /// The guest refused the call's input: it does not decode as the method's arguments
    /// (the guest called `bad_input`, as the SDK's `input_as` does).
    #[error("bad arguments: {0}")]
    BadArgs(String),
    /// The guest broke a bound (value, key, event, action, input or return size).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The guest passed a pointer outside its memory, or malformed ABI data.
    #[error("bad ABI use: {0}")]
    BadAbi(String),
    /// Any other trap (unreachable, division by zero, stack overflow...).
    #[error("trap: {0}")]
    Trap(String),
    /// The call's state could not be read or written: the store is missing, corrupt or
    /// refused a batch (the host's fault, never the guest's).
    #[error("state error: {0}")]
    State(rhizome_core::ApplyError),
    /// The runtime's configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An earlier writing call's delta has not been applied (or discarded) yet: running another
    /// would give both the same HLC, so the same stamps and the same randomness.
    #[error("an earlier call's delta is not committed yet")]
    Uncommitted,
    /// The call cannot join the open delta (see `Runtime::call_joining`); it may run on its own
    /// once that delta is sealed.
    #[error("the call cannot join the open delta: {0}")]
    NotJoinable(String),
}

impl CallError {
    /// True if the guest caused the failure (it would fail again on a retry), as opposed to
    /// the host being unable to run it right now.
    pub fn is_guest_fault(&self) -> bool {
        !matches!(
            self,
            Self::UnknownContext
                | Self::UnknownApp
                | Self::State(_)
                | Self::Config(_)
                | Self::Uncommitted
                | Self::NotJoinable(_)
        )
    }
}

impl CallError {
    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownContext => "unknown_context",
            Self::UnknownApp => "unknown_app",
            Self::ModuleTooLarge { .. } => "module_too_large",
            Self::InvalidModule(_) => "invalid_module",
            Self::NoSuchMethod(_) => "no_such_method",
            Self::OutOfFuel => "out_of_fuel",
            Self::OutOfMemory { .. } => "out_of_memory",
            Self::Aborted(_) => "aborted",
            Self::BadArgs(_) => "bad_args",
            Self::LimitExceeded(_) => "limit_exceeded",
            Self::BadAbi(_) => "bad_abi",
            Self::Trap(_) => "trap",
            Self::State(_) => "state",
            Self::Config(_) => "config",
            Self::Uncommitted => "uncommitted",
            Self::NotJoinable(_) => "not_joinable",
        }
    }

    /// Classifies a wasmtime error: our own errors raised from host functions or the limiter
    /// come back intact; traps are named.
    pub(crate) fn from_wasmtime(error: wasmtime::Error) -> Self {
        if let Some(own) = error.downcast_ref::<CallError>() {
            return own.clone();
        }
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => Self::OutOfFuel,
            Some(trap) => Self::Trap(trap.to_string()),
            None => Self::Trap(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallError;

    #[test]
    fn every_call_error_has_its_own_snake_case_label() {
        let all = [
            CallError::UnknownContext,
            CallError::UnknownApp,
            CallError::ModuleTooLarge { bytes: 2, max: 1 },
            CallError::InvalidModule(String::new()),
            CallError::NoSuchMethod(String::new()),
            CallError::OutOfFuel,
            CallError::OutOfMemory { requested_bytes: 2, max_bytes: 1 },
            CallError::Aborted(String::new()),
            CallError::BadArgs(String::new()),
            CallError::LimitExceeded(String::new()),
            CallError::BadAbi(String::new()),
            CallError::Trap(String::new()),
            CallError::State(rhizome_core::ApplyError::NoStateStore),
            CallError::Config(String::new()),
            CallError::Uncommitted,
            CallError::NotJoinable(String::new()),
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(CallError::label).collect();
        assert_eq!(labels.len(), all.len(), "two failures share a label: {labels:?}");
        assert!(labels.iter().all(|label| label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
