//! The compile cache: one wasmtime engine, its host-function linker and every app compiled on
//! it, shared by the runtimes of a process. Compiling a module costs far more than running a
//! call, and a simulator runs a hundred nodes in one process: each module compiles once.

use crate::state::KvBackend;
use crate::wasm::app::{App, AppId};
use crate::wasm::call::CallState;
use crate::wasm::engine::{build_engine, EngineOptions};
use crate::wasm::error::CallError;
use crate::wasm::host;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::{Engine, Linker};

/// One wasmtime engine, its host-function linker and the apps compiled on it, shareable by
/// every runtime in a process: a simulator's hundred nodes compile each module once.
pub struct WasmHost<B: KvBackend + 'static> {
    pub(super) engine: Engine,
    linker: Linker<CallState<B>>,
    compiled: Arc<Mutex<BTreeMap<AppId, Arc<App<B>>>>>,
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

    /// The app compiled from `module`: from the cache if any runtime sharing this host
    /// compiled the same bytes before.
    pub(super) fn compile(&self, module: &[u8], max_module_bytes: usize) -> Result<Arc<App<B>>, CallError> {
        let id = AppId(*blake3::hash(module).as_bytes());
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(app) = compiled.get(&id) {
            return Ok(app.clone());
        }
        let app = Arc::new(App::compile(&self.engine, &self.linker, module, max_module_bytes)?);
        compiled.insert(id, app.clone());
        Ok(app)
    }
}
