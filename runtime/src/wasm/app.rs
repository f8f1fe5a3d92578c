//! A compiled application: its module, compiled once, and an `InstancePre` that makes each
//! call's instantiation cheap (imports resolved and type-checked up front).

use super::call::CallState;
use super::error::CallError;
use crate::state::KvBackend;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeSet;
use std::fmt;
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module};

/// The export an app provides to handle events from other replicas.
pub const EVENT_HANDLER_EXPORT: &str = "__rhizome_on_event";

/// Names an app: BLAKE3 of its module bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
pub struct AppId(pub [u8; 32]);

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppId({:02x}{:02x}{:02x}{:02x})", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// A compiled, linked application.
pub struct App<B: KvBackend + 'static> {
    id: AppId,
    pre: InstancePre<CallState<B>>,
    methods: BTreeSet<String>,
}

impl<B: KvBackend + 'static> fmt::Debug for App<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("id", &self.id).field("methods", &self.methods).finish()
    }
}

impl<B: KvBackend + 'static> App<B> {
    /// Compiles and links a module. Fails on size, invalid WASM, unknown imports, or a missing
    /// memory export.
    pub fn compile(
        engine: &Engine,
        linker: &Linker<CallState<B>>,
        bytes: &[u8],
        max_bytes: usize,
    ) -> Result<Self, CallError> {
        if bytes.len() > max_bytes {
            return Err(CallError::ModuleTooLarge { bytes: bytes.len(), max: max_bytes });
        }
        let module = Module::new(engine, bytes).map_err(|error| CallError::InvalidModule(error.to_string()))?;
        if !module.exports().any(|export| export.name() == "memory" && matches!(export.ty(), ExternType::Memory(_))) {
            return Err(CallError::InvalidModule("no exported memory".to_owned()));
        }
        let methods = module
            .exports()
            .filter(|export| matches!(export.ty(), ExternType::Func(func) if func.params().len() == 0 && func.results().len() == 0))
            .map(|export| export.name().to_owned())
            .collect();
        let pre = linker.instantiate_pre(&module).map_err(|error| CallError::InvalidModule(error.to_string()))?;
        Ok(Self { id: AppId(*blake3::hash(bytes).as_bytes()), pre, methods })
    }

    /// The app's id.
    pub fn id(&self) -> AppId {
        self.id
    }

    /// True if `name` is a callable export.
    pub fn has_method(&self, name: &str) -> bool {
        self.methods.contains(name)
    }

    /// Callable exports, sorted.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(String::as_str)
    }

    pub(crate) fn pre(&self) -> &InstancePre<CallState<B>> {
        &self.pre
    }
}
