//! Running application calls: one method in a fresh instance against a context's state,
//! staged rather than committed, with its outcome counted.

use super::open_delta::OpenDelta;
use super::Runtime;
use crate::payload::AppPayload;
use crate::state::{KvBackend, StagedWrites};
use crate::wasm::call::{run_export, CallBase, CallInput, CallState};
use crate::wasm::error::CallError;
use rhizome_core::{ApplyError, ContextId, Hlc};

/// The result of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// What the method returned.
    pub return_value: Vec<u8>,
    /// The actions and events to put in a delta (empty for a pure read).
    pub payload: AppPayload,
    /// Log lines the call wrote.
    pub logs: Vec<String>,
    /// Fuel the call used.
    pub fuel_used: u64,
}

impl CallOutcome {
    /// True if the call wrote state or emitted events, so it needs a delta.
    pub fn needs_delta(&self) -> bool {
        let AppPayload::V1 { actions, events, .. } = &self.payload;
        !actions.is_empty() || !events.is_empty()
    }
}

/// What running one call left: its outcome, the base layer it read through (handed back to
/// the open delta), its own writes and its payload size.
pub(super) struct Ran {
    pub(super) result: Result<CallOutcome, CallError>,
    pub(super) base: StagedWrites,
    pub(super) writes: StagedWrites,
    pub(super) payload_bytes: usize,
    pub(super) fuel_used: u64,
}

impl<B: KvBackend + Default + 'static> Runtime<B> {
    /// Runs `method` as this node's author at `hlc` (the HLC the resulting delta will carry:
    /// `Node::next_local_hlc`). Nothing is committed: if the outcome needs a delta, the caller
    /// makes one from `outcome.payload` (or lets more calls join it with
    /// [`Runtime::call_joining`] and makes it from [`Runtime::seal_open_delta`]), and applying
    /// it commits the writes.
    ///
    /// Run one writing call at a time: until its delta is applied (or
    /// [`Runtime::discard_uncommitted`]), another call fails with [`CallError::Uncommitted`],
    /// because it would get the same HLC, the same stamps and the same randomness.
    pub fn call(
        &mut self,
        context: ContextId,
        method: &str,
        input: Vec<u8>,
        hlc: Hlc,
    ) -> Result<CallOutcome, CallError> {
        if self.open.is_some() {
            return Err(CallError::Uncommitted);
        }
        let call = CallInput { context, caller: self.options.local_author, hlc, input, position: 0 };
        let ran = self.run(&call, method, CallBase::default());
        self.count(&ran.result, ran.fuel_used);
        let outcome = ran.result?;
        if outcome.needs_delta() {
            self.open = Some(OpenDelta::first(context, hlc, ran.writes, &outcome.payload, ran.payload_bytes));
        }
        Ok(outcome)
    }

    /// Forgets the outcome of the last writing call: its delta will not be made.
    pub fn discard_uncommitted(&mut self) {
        self.open = None;
    }

    /// Counts a call's outcome: completed calls and their fuel, failures by label.
    pub(super) fn count(&mut self, result: &Result<CallOutcome, CallError>, fuel_used: u64) {
        match result {
            Ok(_) => {
                self.metrics.calls_ok += 1;
                self.metrics.fuel_used += fuel_used;
            }
            Err(error) => *self.metrics.calls_failed.entry(error.label()).or_default() += 1,
        }
    }

    /// Runs one call over `base` (the writes of the open delta's earlier calls) without
    /// counting it: the caller decides whether it joins a delta first.
    pub(super) fn run(&mut self, call: &CallInput, method: &str, base: CallBase) -> Ran {
        let failed = |error, base: CallBase| Ran {
            result: Err(error),
            base: base.writes,
            writes: StagedWrites::new(),
            payload_bytes: 0,
            fuel_used: 0,
        };
        if call.input.len() > self.options.limits.max_input_bytes {
            return failed(CallError::LimitExceeded(format!("input of {} bytes", call.input.len())), base);
        }
        let Some(runtime) = self.contexts.get_mut(&call.context) else {
            return failed(CallError::UnknownContext, base);
        };
        let Some(app) = self.apps.get(&runtime.app).cloned() else { return failed(CallError::UnknownApp, base) };
        if !app.has_method(method) {
            return failed(CallError::NoSuchMethod(method.to_owned()), base);
        }
        let Some(store) = runtime.state.take() else {
            return failed(CallError::State(ApplyError::NoStateStore), base);
        };
        let state = CallState::new(store, call, method, &self.options.limits, base);
        let (state, result, fuel_used) =
            run_export(&self.engine, &app, state, method, self.options.limits.fuel_per_call);
        self.metrics.logs_dropped += state.logs_dropped;
        runtime.state = Some(state.store);
        let result = result.map(|()| CallOutcome {
            return_value: state.output,
            payload: AppPayload::V1 { actions: state.actions, events: state.events, handled: None },
            logs: state.logs,
            fuel_used,
        });
        Ran { result, base: state.base, writes: state.writes, payload_bytes: state.payload_bytes, fuel_used }
    }
}
