//! Running the apps' event handlers: each job's writes become a local delta of this node,
//! committed with the job's completion (the runtime's exactly-once rule).

use super::NodeTask;
use crate::transport::Transport;
use rhizome_core::{Clocks, Handled, Input, WriteBasis};
use rhizome_runtime::{AppPayload, HandlerStep};

impl<T: Transport> NodeTask<T> {
    /// True if handler jobs are left and the last pass got through some: worth another pass
    /// without waiting for an input.
    pub(super) fn handlers_resumable(&self) -> bool {
        self.handler_progressed && !self.handler_due.is_empty()
    }

    pub(super) fn run_handlers(&mut self, now: Clocks) {
        // Handlers run calls of their own: the batch of local calls goes first.
        self.seal_calls();
        self.handler_progressed = false;
        while let Some(context) = self.handler_due.pop_first() {
            for _ in 0..self.config.max_handler_runs_per_input {
                let hlc = self.node.next_local_hlc(now);
                let heads = self.node.dag(&context).map(rhizome_core::DagStore::heads_vec).unwrap_or_default();
                match self.runtime.run_next_handler(context, hlc) {
                    Ok(HandlerStep::Idle) => break,
                    Ok(HandlerStep::JobDone) => {
                        self.metrics.handler_runs += 1;
                        self.handler_progressed = true;
                        // The job's end must not be forgotten in a crash: it would run again.
                        self.batch.durable = true;
                    }
                    Ok(HandlerStep::NeedsDelta(payload)) => {
                        self.metrics.handler_runs += 1;
                        self.handler_progressed = true;
                        let handled = match &payload {
                            AppPayload::V1 { handled, .. } => *handled,
                        };
                        let basis = WriteBasis { hlc, heads };
                        let write = Input::LocalWrite { context, payload: payload.encode(), basis: Some(basis) };
                        if let Handled::Refused(error) = self.submit(now, write) {
                            tracing::warn!(%context, %error, "handler delta refused; job abandoned");
                            self.runtime.discard_uncommitted();
                            if let Some((delta, index)) = handled {
                                self.runtime.abandon_handler_job(&context, &delta, index);
                            }
                            self.metrics.handler_jobs_abandoned += 1;
                        }
                        self.collect_outputs(now.monotonic);
                    }
                    Err(error) => {
                        self.metrics.handler_errors += 1;
                        tracing::debug!(%context, %error, "event handler failed");
                        if !error.is_guest_fault() {
                            // The host could not run it now; the job stays for the next input.
                            break;
                        }
                        // The app's own fault used the job up: that is progress too.
                        self.handler_progressed = true;
                        self.batch.durable = true;
                    }
                }
            }
            if self.runtime.pending_handler_jobs(&context) > 0 {
                // More than one pass's worth: continue after the next input, so that a flood
                // of events cannot starve the network.
                self.handler_later.insert(context);
            }
        }
        self.handler_due.append(&mut self.handler_later);
    }
}
