//! The runtime of one node: installed apps, one state store per context, application calls,
//! the handler-job queue, and the [`rhizome_core::Applier`] the core drives to merge deltas
//! natively. Each concern has its own file; this one holds what they share.

use crate::limits::RuntimeLimits;
use crate::state::{KvBackend, MemoryBackend};
use crate::wasm::app::{App, AppId};
use crate::wasm::engine::EngineOptions;
use crate::wasm::error::CallError;
use rhizome_core::{AuthorKey, ContextId};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::Engine;

mod applier;
#[cfg(test)]
mod applier_tests;
mod calls;
mod compile_cache;
mod contexts;
mod handler_jobs;
mod install;
mod open_delta;

pub use calls::CallOutcome;
pub use compile_cache::WasmHost;
pub use contexts::ContextParts;
pub use handler_jobs::HandlerStep;
pub use open_delta::SealedCalls;

use contexts::ContextRuntime;
use open_delta::OpenDelta;

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
    /// Deltas whose merge was refused, by [`rhizome_core::ApplyError::label`] (such as
    /// `reference_not_earlier`, `invalid_payload`); the core quarantines them.
    pub deltas_refused: BTreeMap<&'static str, u64>,
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

    /// Counters.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.metrics
    }
}
