//! The runtime: installed apps, one state store per context, application calls, and the
//! [`Applier`] the core drives to merge deltas natively.

use crate::handlers::{job_key, queued_key, HandlerInput, HandlerJob, JOB_PREFIX};
use crate::limits::RuntimeLimits;
use crate::merge;
use crate::payload::AppPayload;
use crate::stamp::Stamp;
use crate::state::{KvBackend, MemoryBackend, StagedWrites, StateStore, Txn};
use crate::wasm::app::{App, AppId, EVENT_HANDLER_EXPORT};
use crate::wasm::call::{run_export, CallBase, CallInput, CallState};
use crate::wasm::engine::{build_engine, EngineOptions};
use crate::wasm::error::CallError;
use crate::wasm::host;
use rhizome_core::{Applier, ApplyError, AuthorKey, CausalDelta, ContextId, Hlc, RootHash};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::{Engine, Linker};

mod open_delta;

use open_delta::OpenDelta;
pub use open_delta::SealedCalls;

/// How to build a runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Engine options.
    pub engine: EngineOptions,
    /// Call and payload bounds.
    pub limits: RuntimeLimits,
    /// This node's author key: the caller of local calls and handlers.
    pub local_author: AuthorKey,
}

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
struct Ran {
    result: Result<CallOutcome, CallError>,
    base: StagedWrites,
    writes: StagedWrites,
    payload_bytes: usize,
    fuel_used: u64,
}

/// Counters of the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeMetrics {
    /// Calls that completed.
    pub calls_ok: u64,
    /// Calls that failed, by [`CallError::label`].
    pub calls_failed: BTreeMap<&'static str, u64>,
    /// Fuel used by all calls.
    pub fuel_used: u64,
    /// Remote and local deltas merged.
    pub deltas_merged: u64,
    /// Handler jobs queued.
    pub handler_jobs_queued: u64,
    /// Handler jobs dropped because the queue was full.
    pub handler_jobs_dropped: u64,
    /// Handler runs that failed (the job is dropped and counted; its event is not retried).
    pub handler_failures: u64,
    /// Handler jobs dropped because their delta could not be committed or they did not decode.
    pub handler_jobs_abandoned: u64,
    /// Log lines dropped over the per-call budget.
    pub logs_dropped: u64,
}

/// One context: its app, and one store holding its replicated state and its local meta
/// (handler jobs), so that both change in one atomic batch.
#[derive(Debug)]
struct ContextRuntime<B: KvBackend> {
    app: AppId,
    state: Option<StateStore<B>>,
    /// Handler jobs in the store, counted once at start-up and kept in step since.
    pending_jobs: usize,
}

/// What a restart keeps of one context: its app and its backend.
#[derive(Debug)]
pub struct ContextParts<B> {
    /// The app it runs.
    pub app: AppId,
    /// Replicated state and local meta.
    pub backend: B,
}

/// One wasmtime engine, its host-function linker and the apps compiled on it, shareable by
/// every runtime in a process: a simulator's hundred nodes compile each module once.
pub struct WasmHost<B: KvBackend + 'static> {
    engine: Engine,
    linker: Linker<CallState<B>>,
    compiled: Arc<std::sync::Mutex<BTreeMap<AppId, Arc<App<B>>>>>,
}

impl<B: KvBackend + 'static> Clone for WasmHost<B> {
    fn clone(&self) -> Self {
        Self { engine: self.engine.clone(), linker: self.linker.clone(), compiled: self.compiled.clone() }
    }
}

impl<B: KvBackend + 'static> std::fmt::Debug for WasmHost<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost").finish_non_exhaustive()
    }
}

impl<B: KvBackend + Default + 'static> WasmHost<B> {
    /// An engine with `options` and the host functions linked.
    pub fn new(options: &EngineOptions) -> Result<Self, CallError> {
        let engine = build_engine(options).map_err(|error| CallError::InvalidModule(error.to_string()))?;
        let linker = host::linker::<B>(&engine).map_err(|error| CallError::InvalidModule(error.to_string()))?;
        Ok(Self { engine, linker, compiled: Arc::default() })
    }

    fn compile(&self, module: &[u8], max_module_bytes: usize) -> Result<Arc<App<B>>, CallError> {
        let id = AppId(*blake3::hash(module).as_bytes());
        let mut compiled = self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(app) = compiled.get(&id) {
            return Ok(app.clone());
        }
        let app = Arc::new(App::compile(&self.engine, &self.linker, module, max_module_bytes)?);
        compiled.insert(id, app.clone());
        Ok(app)
    }
}

/// The application runtime of one node.
pub struct Runtime<B: KvBackend + Default + 'static = MemoryBackend> {
    engine: Engine,
    host: WasmHost<B>,
    options: RuntimeOptions,
    apps: BTreeMap<AppId, Arc<App<B>>>,
    contexts: BTreeMap<ContextId, ContextRuntime<B>>,
    metrics: RuntimeMetrics,
    /// The delta the writing calls since the last applied local delta are building.
    open: Option<OpenDelta>,
}

impl<B: KvBackend + Default + 'static> std::fmt::Debug for Runtime<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("apps", &self.apps.len()).field("contexts", &self.contexts.len()).finish()
    }
}

impl<B: KvBackend + Default + 'static> Runtime<B> {
    /// A runtime with no apps and no contexts.
    pub fn new(options: RuntimeOptions) -> Result<Self, CallError> {
        let host = WasmHost::new(&options.engine)?;
        Self::with_host(options, host)
    }

    /// A runtime on a shared engine: apps already compiled there install without compiling.
    /// `options.engine` is ignored; the host's engine was built with its own.
    pub fn with_host(options: RuntimeOptions, host: WasmHost<B>) -> Result<Self, CallError> {
        options.limits.check().map_err(CallError::Config)?;
        Ok(Self {
            engine: host.engine.clone(),
            host,
            options,
            apps: BTreeMap::new(),
            contexts: BTreeMap::new(),
            metrics: RuntimeMetrics::default(),
            open: None,
        })
    }

    /// Compiles and registers an app (once; installing the same bytes again is a no-op).
    pub fn install_app(&mut self, module: &[u8]) -> Result<AppId, CallError> {
        let id = AppId(*blake3::hash(module).as_bytes());
        if !self.apps.contains_key(&id) {
            let app = self.host.compile(module, self.options.limits.max_module_bytes)?;
            self.apps.insert(id, app);
            if let Err(error) = self.instantiate_probe(&id) {
                self.apps.remove(&id);
                return Err(error);
            }
        }
        Ok(id)
    }

    /// Creates one instance of an installed app, against empty state, and drops it: a module
    /// whose instantiation traps (a start function, an oversized memory) is refused at install
    /// time rather than on its first call. Also what the instantiation benchmark measures.
    pub fn instantiate_probe(&self, app: &AppId) -> Result<(), CallError> {
        let app = self.apps.get(app).ok_or(CallError::UnknownApp)?;
        let call = CallInput {
            context: ContextId::default(),
            caller: self.options.local_author,
            hlc: Hlc::default(),
            input: Vec::new(),
            position: 0,
        };
        let state = CallState::new(StateStore::new(B::default()), &call, "", &self.options.limits, CallBase::default());
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|state| state);
        store.set_fuel(self.options.limits.fuel_per_call).map_err(CallError::from_wasmtime)?;
        app.pre().instantiate(&mut store).map(drop).map_err(CallError::from_wasmtime)
    }

    /// Binds a context to an installed app, with empty state.
    pub fn create_context(&mut self, context: ContextId, app: AppId) -> Result<(), CallError> {
        self.restore_context(context, ContextParts { app, backend: B::default() })
    }

    /// Binds a context to an installed app over existing backends (a restart).
    pub fn restore_context(&mut self, context: ContextId, parts: ContextParts<B>) -> Result<(), CallError> {
        if !self.apps.contains_key(&parts.app) {
            return Err(CallError::UnknownApp);
        }
        let store = StateStore::new(parts.backend);
        let pending_jobs = store.scan_prefix(JOB_PREFIX).len();
        self.contexts.insert(context, ContextRuntime { app: parts.app, state: Some(store), pending_jobs });
        Ok(())
    }

    /// Takes every context's backends out (a simulated crash keeps only these).
    pub fn into_parts(self) -> BTreeMap<ContextId, ContextParts<B>> {
        self.contexts
            .into_iter()
            .filter_map(|(context, runtime)| {
                let backend = runtime.state?.into_backend();
                Some((context, ContextParts { app: runtime.app, backend }))
            })
            .collect()
    }

    /// Counters.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }

    /// The app a context runs.
    pub fn app_of(&self, context: &ContextId) -> Option<AppId> {
        self.contexts.get(context).map(|runtime| runtime.app)
    }

    /// The installed app.
    pub fn app(&self, id: &AppId) -> Option<&App<B>> {
        self.apps.get(id).map(Arc::as_ref)
    }

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

    fn count(&mut self, result: &Result<CallOutcome, CallError>, fuel_used: u64) {
        match result {
            Ok(_) => {
                self.metrics.calls_ok += 1;
                self.metrics.fuel_used += fuel_used;
            }
            Err(error) => *self.metrics.calls_failed.entry(error.label()).or_default() += 1,
        }
    }

    fn run(&mut self, call: &CallInput, method: &str, base: CallBase) -> Ran {
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
            return failed(CallError::State("state store missing".to_owned()), base);
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

    /// Forgets the outcome of the last writing call: its delta will not be made.
    pub fn discard_uncommitted(&mut self) {
        self.open = None;
    }

    /// Handler jobs waiting in `context`.
    pub fn pending_handler_jobs(&self, context: &ContextId) -> usize {
        self.contexts.get(context).map_or(0, |runtime| runtime.pending_jobs)
    }

    /// Drops a handler job whose delta could not be committed (the core refused it), so that it
    /// does not block the jobs behind it. Counted in `handler_jobs_abandoned`.
    pub fn abandon_handler_job(&mut self, context: &ContextId, delta: &rhizome_core::DeltaId, index: u32) {
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
        let store = runtime.state.as_mut().ok_or(CallError::State("state store missing".to_owned()))?;
        store
            .commit(StagedWrites::new(), StagedWrites::from([(key, None)]))
            .map_err(|error| CallError::State(error.to_string()))?;
        runtime.pending_jobs -= 1;
        Ok(())
    }

    /// Runs the oldest pending handler job of `context` at `hlc`. Returns `None` when no job is
    /// pending; `Some(None)` when the handler ran and wrote nothing (the job is done);
    /// `Some(Some(payload))` when it wrote: make a local delta of the payload, and applying it
    /// completes the job. Run one job at a time, committing each before the next.
    pub fn run_next_handler(&mut self, context: ContextId, hlc: Hlc) -> Result<Option<Option<AppPayload>>, CallError> {
        let runtime = self.contexts.get(&context).ok_or(CallError::UnknownContext)?;
        if runtime.pending_jobs == 0 {
            return Ok(None);
        }
        let store = runtime.state.as_ref().ok_or(CallError::State("state store missing".to_owned()))?;
        let Some((key, bytes)) = store.first_with_prefix(JOB_PREFIX) else { return Ok(None) };
        let Ok(job) = borsh::from_slice::<HandlerJob>(&bytes) else {
            // A job that does not decode never will: drop it rather than block the queue.
            self.metrics.handler_jobs_abandoned += 1;
            self.finish_job(&context, key)?;
            return Ok(Some(None));
        };
        let has_handler = self.apps.get(&runtime.app).is_some_and(|app| app.has_method(EVENT_HANDLER_EXPORT));
        if !has_handler {
            self.finish_job(&context, key)?;
            return Ok(Some(None));
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
                Ok(Some(Some(AppPayload::V1 { actions, events, handled: Some((job.delta, job.index)) })))
            }
            Ok(_) => {
                self.finish_job(&context, key)?;
                Ok(Some(None))
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

impl<B: KvBackend + Default + 'static> Applier for Runtime<B> {
    /// Merges the delta's actions natively (no WASM runs), records handler jobs for a remote
    /// delta's events, and completes the handler job a local handler delta names: all staged
    /// and validated first, then committed together.
    fn apply(&mut self, context: &ContextId, delta: &CausalDelta) -> Result<(), ApplyError> {
        let limits = &self.options.limits;
        let payload = AppPayload::decode(&delta.payload)?;
        let AppPayload::V1 { actions, events, handled } = &payload;
        // An app without a handler owes nothing for events: queueing jobs only to drop them
        // would cost two rows per remote event.
        let has_handler = self
            .contexts
            .get(context)
            .and_then(|runtime| self.apps.get(&runtime.app))
            .is_some_and(|app| app.has_method(EVENT_HANDLER_EXPORT));
        let runtime = self.contexts.get_mut(context).ok_or_else(|| ApplyError::Failed("unknown context".to_owned()))?;
        let store = runtime.state.as_mut().ok_or_else(|| ApplyError::Failed("state store missing".to_owned()))?;
        let mut txn = Txn::new(store);
        for (index, action) in actions.iter().enumerate() {
            let stamp = Stamp { hlc: delta.hlc, author: delta.author, index: index as u32 };
            merge::apply_action(&mut txn, action, stamp)?;
        }
        let writes = txn.into_writes();
        let local = delta.author == self.options.local_author;
        let room = limits.max_pending_handler_jobs.saturating_sub(runtime.pending_jobs);
        let mut new_jobs = Vec::new();
        if !local && has_handler {
            for (index, event) in events.iter().enumerate() {
                if store.get(&queued_key(&delta.id, index as u32)).is_some() {
                    continue; // queued before: a re-application (after a snapshot) owes nothing
                }
                let job = HandlerJob {
                    delta: delta.id,
                    index: index as u32,
                    author: delta.author,
                    kind: event.kind.clone(),
                    data: event.data.clone(),
                };
                new_jobs.push(job);
            }
        }
        let dropped = new_jobs.len().saturating_sub(room);
        new_jobs.truncate(room);
        let mut meta = StagedWrites::new();
        let mut completed = 0;
        // Only our own handler deltas complete our jobs: another node's handler delta names
        // the same (delta, event) but says nothing about whether *this* node handled it.
        if let (true, Some((handled_delta, handled_index))) = (local, handled) {
            let key = job_key(handled_delta, *handled_index);
            if store.get(&key).is_some() {
                meta.insert(key, None);
                completed = 1;
            }
        }
        for job in &new_jobs {
            meta.insert(job_key(&job.delta, job.index), Some(rhizome_core::wire::encode(job)));
            meta.insert(queued_key(&job.delta, job.index), Some(Vec::new()));
        }
        // One batch: the state changes, the completed job and the new jobs land together.
        store.commit(writes, meta).map_err(|error| ApplyError::Failed(error.to_string()))?;
        runtime.pending_jobs = runtime.pending_jobs + new_jobs.len() - completed;
        if local && self.open.as_ref().is_some_and(|open| open.hlc == delta.hlc) {
            self.open = None;
        }
        self.metrics.deltas_merged += 1;
        self.metrics.handler_jobs_queued += new_jobs.len() as u64;
        self.metrics.handler_jobs_dropped += dropped as u64;
        Ok(())
    }

    fn root_hash(&self, context: &ContextId) -> RootHash {
        self.contexts
            .get(context)
            .and_then(|runtime| runtime.state.as_ref())
            .map_or(RootHash::default(), StateStore::root)
    }

    fn export_state(&self, context: &ContextId, max_bytes: usize) -> Result<Vec<u8>, ApplyError> {
        let store = self
            .contexts
            .get(context)
            .and_then(|runtime| runtime.state.as_ref())
            .ok_or_else(|| ApplyError::Failed("unknown context".to_owned()))?;
        let bytes = rhizome_core::wire::encode(&store.entries());
        if bytes.len() > max_bytes {
            return Err(ApplyError::StateTooLarge { bytes: bytes.len(), max: max_bytes });
        }
        Ok(bytes)
    }

    fn import_state(&mut self, context: &ContextId, state: &[u8], expected_root: &RootHash) -> Result<(), ApplyError> {
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            borsh::from_slice(state).map_err(|error| ApplyError::InvalidPayload(format!("snapshot state: {error}")))?;
        // Verify on a scratch store before touching the real one.
        let mut scratch = StateStore::new(MemoryBackend::default());
        scratch.replace_all(entries.clone()).map_err(|error| ApplyError::InvalidPayload(error.to_string()))?;
        let actual = scratch.root();
        if actual != *expected_root {
            return Err(ApplyError::RootMismatch { expected: *expected_root, actual });
        }
        let runtime = self.contexts.get_mut(context).ok_or_else(|| ApplyError::Failed("unknown context".to_owned()))?;
        let store = runtime.state.as_mut().ok_or_else(|| ApplyError::Failed("state store missing".to_owned()))?;
        store.replace_all(entries).map_err(|error| ApplyError::Failed(error.to_string()))
    }
}
