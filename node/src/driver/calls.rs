//! Local calls, batched into deltas. The calls of one context that reach the loop together
//! (one wake-up's worth) run one after another into the runtime's open delta, each reading the
//! writes of those before it; the delta is made once, when the batch is sealed. A delta per
//! call would sign, hash, gossip, store and verify (on every peer) one delta per call, which
//! costs more than the calls.
//!
//! The batch is sealed before anything else reaches the core (a peer's message, a timer, any
//! other command, a handler run) and before every commit, so the HLC its calls ran at is the
//! one the delta gets, and every reply still waits for its delta to be durable.

use super::NodeTask;
use crate::api::{ApiError, CallReply, Reply};
use crate::transport::Transport;
use rhizome_core::{Clocks, ContextId, DeltaId, Handled, Input, WriteBasis};
use rhizome_runtime::{CallError, CallOutcome};

/// The writing calls of the batch being built.
pub(super) struct OpenCalls {
    context: ContextId,
    /// When the first call ran: the delta is made at this time, so it carries the HLC every
    /// call in it ran at.
    opened_at: Clocks,
    /// The context's heads when the first call ran: the state every call in the batch read.
    /// The core makes the delta only if they are still its heads.
    heads: Vec<DeltaId>,
    /// Each writing call's reply and return value, in call order.
    waiting: Vec<(Reply<CallReply>, Vec<u8>)>,
}

impl<T: Transport> NodeTask<T> {
    /// Runs one call: into the open batch if it is this context's and has room, else into a
    /// new one (sealing the old). A call that writes nothing, or fails, is answered at the
    /// next commit without waiting for a delta.
    pub(super) fn on_call(
        &mut self,
        now: Clocks,
        context: ContextId,
        method: &str,
        input: Vec<u8>,
        reply: Reply<CallReply>,
    ) {
        if let Some(open) = &self.open_calls {
            if open.context == context && open.waiting.len() < self.config.max_calls_per_delta {
                match self.runtime.call_joining(context, method, input.clone()) {
                    // The delta is full: this call starts the next one.
                    Err(CallError::NotJoinable(_)) => {}
                    joined => {
                        let result = joined.map_err(ApiError::Call);
                        self.after_call(result, reply);
                        return;
                    }
                }
            }
            self.seal_calls();
        }
        // A write must be sealed under a key every member holds: if none is, the core rotates
        // now, before the call reads the heads it will write on.
        if let Handled::Authored(_) = self.submit(now, Input::PrepareWrite { context }) {
            self.collect_outputs(now.monotonic);
        }
        let heads = self.node.dag(&context).map(rhizome_core::DagStore::heads_vec).unwrap_or_default();
        let result = self.run_method(now, context, method, input);
        match result {
            Ok(outcome) if outcome.needs_delta() => {
                self.open_calls = Some(OpenCalls { context, opened_at: now, heads, waiting: Vec::new() });
                self.after_call(Ok(outcome), reply);
            }
            other => self.after_call(other, reply),
        }
    }

    /// A writing call waits in the batch; any other outcome is answered at the next commit.
    fn after_call(&mut self, result: Result<CallOutcome, ApiError>, reply: Reply<CallReply>) {
        match result {
            Ok(outcome) if outcome.needs_delta() => match &mut self.open_calls {
                Some(open) => open.waiting.push((reply, outcome.return_value)),
                None => self.ack(reply, Err(ApiError::Internal("no batch is open for a writing call"))),
            },
            Ok(outcome) => {
                self.metrics.calls_committed += 1;
                self.ack(reply, Ok(CallReply { return_value: outcome.return_value, delta: None }));
            }
            Err(error) => {
                self.metrics.calls_failed += 1;
                self.ack(reply, Err(error));
            }
        }
    }

    /// Calls waiting in the open batch.
    pub(super) fn open_calls_len(&self) -> usize {
        self.open_calls.as_ref().map_or(0, |open| open.waiting.len())
    }

    /// Makes the open batch's delta, and queues every call's answer for the next commit: the
    /// delta's id, or, if the core refused the delta, its reason for all of them.
    pub(super) fn seal_calls(&mut self) {
        let Some(open) = self.open_calls.take() else { return };
        let made = match self.runtime.seal_open_delta() {
            Some(sealed) => {
                // Checked in the core, in release builds too: the calls' stamps and the state
                // they read must be the delta's.
                let basis = WriteBasis { hlc: sealed.hlc, heads: open.heads };
                let write =
                    Input::LocalWrite { context: open.context, payload: sealed.payload.encode(), basis: Some(basis) };
                match self.submit(open.opened_at, write) {
                    Handled::Authored(delta) => Ok(delta),
                    Handled::Refused(error) => Err(ApiError::Refused(error.to_string())),
                    _ => Err(ApiError::Internal("the core answered a local write with something else")),
                }
            }
            None => Err(ApiError::Internal("the batch's delta was lost before it was made")),
        };
        // Applying the delta closed the runtime's open delta; a refused one must be dropped, and
        // dropping is harmless either way.
        self.runtime.discard_uncommitted();
        self.collect_outputs(open.opened_at.monotonic);
        let calls = open.waiting.len() as u64;
        match &made {
            Ok(_) => {
                self.metrics.calls_committed += calls;
                self.metrics.call_deltas += 1;
            }
            Err(_) => self.metrics.calls_failed += calls,
        }
        for (reply, return_value) in open.waiting {
            let answer = made.clone().map(|delta| CallReply { return_value, delta: Some(delta) });
            self.ack(reply, answer);
        }
        let now = self.clock.clocks();
        self.run_handlers(now);
    }
}
