//! Binding contexts to installed apps: a new context starts with empty state, a restarted one
//! gets its backend back, and a crash keeps only the backends.

use super::Runtime;
use crate::handlers::JOB_PREFIX;
use crate::state::{KvBackend, StateStore};
use crate::wasm::app::AppId;
use crate::wasm::error::CallError;
use rhizome_core::ContextId;
use std::collections::BTreeMap;

/// One context: its app, and one store holding its replicated state and its local meta
/// (handler jobs), so that both change in one atomic batch.
#[derive(Debug)]
pub(super) struct ContextRuntime<B: KvBackend> {
    pub(super) app: AppId,
    /// Taken out only while a call runs against it (the call's wasmtime store owns it then).
    pub(super) state: Option<StateStore<B>>,
    /// Handler jobs in the store, counted once at start-up and kept in step since.
    pub(super) pending_jobs: usize,
}

/// What a restart keeps of one context: its app and its backend.
#[derive(Debug)]
pub struct ContextParts<B> {
    /// The app it runs.
    pub app: AppId,
    /// Replicated state and local meta.
    pub backend: B,
}

impl<B: KvBackend + Default + 'static> Runtime<B> {
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

    /// The app a context runs.
    pub fn app_of(&self, context: &ContextId) -> Option<AppId> {
        self.contexts.get(context).map(|runtime| runtime.app)
    }
}
