//! Running the handler-job queue, one job at a time: the oldest job's handler runs as a call,
//! and the job leaves the queue when its delta is applied, at once if it wrote nothing, or when
//! it fails through the guest's own fault. See [`crate::handlers`] for why this is exactly once.

use super::Runtime;
use crate::handlers::{job_key, HandlerInput, HandlerJob, JOB_PREFIX};
use crate::payload::AppPayload;
use crate::state::{KvBackend, StagedWrites};
use crate::wasm::app::EVENT_HANDLER_EXPORT;
use crate::wasm::error::CallError;
use rhizome_core::{ApplyError, ContextId, DeltaId, Hlc};

/// What one step of a context's handler queue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerStep {
    /// No job is pending: nothing ran.
    Idle,
    /// A job is done and gone: its handler wrote nothing, or it could not run at all (the app
    /// has no handler export, or the job did not decode).
    JobDone,
    /// The handler wrote: make a local delta of this payload (it names the job), and applying
    /// that delta completes the job.
    NeedsDelta(AppPayload),
}

impl<B: KvBackend + Default + 'static> Runtime<B> {
    /// Handler jobs waiting in `context`.
    pub fn pending_handler_jobs(&self, context: &ContextId) -> usize {
        self.contexts.get(context).map_or(0, |runtime| runtime.pending_jobs)
    }

    /// Drops a handler job whose delta could not be committed (the core refused it), so that it
    /// does not block the jobs behind it. Counted in `handler_jobs_abandoned`.
    pub fn abandon_handler_job(&mut self, context: &ContextId, delta: &DeltaId, index: u32) {
        self.open = None;
        let Some(runtime) = self.contexts.get_mut(context) else { return };
        let Some(store) = runtime.state.as_mut() else { return };
        let key = job_key(delta, index);
        if store.get(&key).is_none() {
            return;
        }
        match store.commit(StagedWrites::new(), StagedWrites::from([(key, None)])) {
            Ok(()) => {
                runtime.pending_jobs -= 1;
                self.metrics.handler_jobs_abandoned += 1;
            }
            Err(error) => tracing::error!(%context, %delta, index, %error, "could not drop a handler job"),
        }
    }

    /// Deletes a handler job (its handler wrote nothing, failed, or did not decode).
    fn finish_job(&mut self, context: &ContextId, key: Vec<u8>) -> Result<(), CallError> {
        let runtime = self.contexts.get_mut(context).ok_or(CallError::UnknownContext)?;
        let store = runtime.state.as_mut().ok_or(CallError::State(ApplyError::NoStateStore))?;
        store
            .commit(StagedWrites::new(), StagedWrites::from([(key, None)]))
            .map_err(|error| CallError::State(ApplyError::Storage(error.0)))?;
        runtime.pending_jobs -= 1;
        Ok(())
    }

    /// Runs the oldest pending handler job of `context` at `hlc` (see [`HandlerStep`] for what
    /// the caller does next). Run one job at a time, committing each before the next.
    pub fn run_next_handler(&mut self, context: ContextId, hlc: Hlc) -> Result<HandlerStep, CallError> {
        let runtime = self.contexts.get(&context).ok_or(CallError::UnknownContext)?;
        if runtime.pending_jobs == 0 {
            return Ok(HandlerStep::Idle);
        }
        let store = runtime.state.as_ref().ok_or(CallError::State(ApplyError::NoStateStore))?;
        let Some((key, bytes)) = store.first_with_prefix(JOB_PREFIX) else { return Ok(HandlerStep::Idle) };
        let Ok(job) = borsh::from_slice::<HandlerJob>(&bytes) else {
            // A job that does not decode never will: drop it rather than block the queue.
            self.metrics.handler_jobs_abandoned += 1;
            self.finish_job(&context, key)?;
            return Ok(HandlerStep::JobDone);
        };
        let has_handler = self.apps.get(&runtime.app).is_some_and(|app| app.has_method(EVENT_HANDLER_EXPORT));
        if !has_handler {
            self.finish_job(&context, key)?;
            return Ok(HandlerStep::JobDone);
        }
        let input = HandlerInput {
            kind: job.kind.clone(),
            data: job.data.clone(),
            delta: *job.delta.as_bytes(),
            author: *job.author.as_bytes(),
            index: job.index,
        };
        let input = rhizome_core::wire::encode(&input);
        match self.call(context, EVENT_HANDLER_EXPORT, input, hlc) {
            Ok(outcome) if outcome.needs_delta() => {
                let AppPayload::V1 { actions, events, .. } = outcome.payload;
                Ok(HandlerStep::NeedsDelta(AppPayload::V1 { actions, events, handled: Some((job.delta, job.index)) }))
            }
            Ok(_) => {
                self.finish_job(&context, key)?;
                Ok(HandlerStep::JobDone)
            }
            Err(error) if error.is_guest_fault() => {
                // The handler failed on its own (trap, fuel, abort...): it would fail the same
                // way on every retry, so drop the job, count it, and report the error.
                self.metrics.handler_failures += 1;
                self.finish_job(&context, key)?;
                Err(error)
            }
            // The host could not run it now (state error, a call awaiting commit): keep the job.
            Err(error) => Err(error),
        }
    }
}
