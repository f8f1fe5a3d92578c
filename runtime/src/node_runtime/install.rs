//! Installing apps: compiling a module (through the shared compile cache) and proving it
//! instantiates before any context may run it.

use super::Runtime;
use crate::state::{KvBackend, StateStore};
use crate::wasm::app::{App, AppId};
use crate::wasm::call::{CallBase, CallInput, CallState};
use crate::wasm::error::CallError;
use rhizome_core::{ContextId, Hlc};
use std::sync::Arc;

impl<B: KvBackend + Default + 'static> Runtime<B> {
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

    /// The installed app.
    pub fn app(&self, id: &AppId) -> Option<&App<B>> {
        self.apps.get(id).map(Arc::as_ref)
    }
}
