//! One application call: the state a call runs against, its limiter, and running an export.

use super::app::App;
use super::error::CallError;
use crate::limits::RuntimeLimits;
use crate::payload::{Action, AppEvent};
use crate::stamp::Stamp;
use crate::state::{KvBackend, StagedWrites, StateStore, Txn};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rhizome_core::{ApplyError, AuthorKey, ContextId, Hlc};
use wasmtime::{Engine, ResourceLimiter, Store};

/// Everything a call can see and everything it produced. Lives inside the wasmtime store for
/// the duration of one call; the state store is moved in and handed back afterwards.
pub struct CallState<B: KvBackend> {
    pub(crate) store: StateStore<B>,
    /// What the calls before this one in the same delta wrote: read through, never changed.
    pub(crate) base: StagedWrites,
    /// Writes staged by this call. Never committed directly: the call's actions are applied
    /// again, through the delta, by the same merge code every replica runs.
    pub(crate) writes: StagedWrites,
    /// The stamp index of this call's first action: the actions of the calls before it in
    /// the same delta come first.
    pub(crate) first_action_index: u32,
    pub(crate) context: ContextId,
    pub(crate) caller: AuthorKey,
    pub(crate) hlc: Hlc,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    pub(crate) register: Vec<u8>,
    pub(crate) actions: Vec<Action>,
    pub(crate) events: Vec<AppEvent>,
    pub(crate) logs: Vec<String>,
    pub(crate) log_bytes: usize,
    pub(crate) logs_dropped: u64,
    /// Encoded bytes of the actions and events so far: the payload this call will produce.
    pub(crate) payload_bytes: usize,
    pub(crate) limits: RuntimeLimits,
}

impl<B: KvBackend> std::fmt::Debug for CallState<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallState").field("context", &self.context).field("actions", &self.actions.len()).finish()
    }
}

/// Who calls what, when.
#[derive(Debug, Clone)]
pub struct CallInput {
    /// The context.
    pub context: ContextId,
    /// The caller (author of the resulting delta).
    pub caller: AuthorKey,
    /// The resulting delta's HLC.
    pub hlc: Hlc,
    /// The method's input bytes.
    pub input: Vec<u8>,
    /// The call's position among the calls of its delta (0 for the first or only one): part
    /// of its randomness seed, so two identical calls in one delta draw different bytes.
    pub position: u32,
}

/// What a call builds on when it joins a delta that earlier calls started.
#[derive(Debug, Default)]
pub(crate) struct CallBase {
    /// The earlier calls' writes.
    pub(crate) writes: StagedWrites,
    /// How many actions they recorded.
    pub(crate) actions: u32,
}

impl<B: KvBackend> CallState<B> {
    pub(crate) fn new(
        store: StateStore<B>,
        call: &CallInput,
        method: &str,
        limits: &RuntimeLimits,
        base: CallBase,
    ) -> Self {
        Self {
            store,
            base: base.writes,
            writes: StagedWrites::new(),
            first_action_index: base.actions,
            context: call.context,
            caller: call.caller,
            hlc: call.hlc,
            rng: ChaCha20Rng::from_seed(randomness_seed(call, method)),
            input: call.input.clone(),
            output: Vec::new(),
            register: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            payload_bytes: 0,
            limits: limits.clone(),
        }
    }

    /// Runs `f` against the store with the earlier calls' writes and this call's on top.
    pub(crate) fn with_txn<T>(
        &mut self,
        f: impl FnOnce(&mut Txn<'_, B>) -> Result<T, ApplyError>,
    ) -> Result<T, ApplyError> {
        let mut txn = Txn::layered(&self.store, &self.base, std::mem::take(&mut self.writes));
        let result = f(&mut txn);
        self.writes = txn.into_writes();
        result
    }

    /// Records an action and applies it to this call's view, with the stamp it will have in
    /// the delta, so the call reads its own writes exactly as every replica will see them.
    /// Returns the bytes of state it wrote, which the call pays for in fuel.
    pub(crate) fn record(&mut self, action: Action) -> Result<usize, CallError> {
        if self.actions.len() >= self.limits.max_actions_per_call {
            return Err(CallError::LimitExceeded(format!("more than {} actions", self.limits.max_actions_per_call)));
        }
        self.grow_payload(borsh::object_length(&action).unwrap_or(usize::MAX))?;
        let index = self.first_action_index.saturating_add(self.actions.len() as u32);
        let stamp = Stamp { hlc: self.hlc, author: self.caller, index };
        let written = self.with_txn(|txn| crate::merge::apply_action(txn, &action, stamp)).map_err(CallError::State)?;
        self.actions.push(action);
        Ok(written)
    }

    /// Accounts for `bytes` more of payload, failing the call past `max_payload_bytes`: a
    /// payload the core would refuse must fail here, as a call error, not later as a delta.
    pub(crate) fn grow_payload(&mut self, bytes: usize) -> Result<(), CallError> {
        self.payload_bytes = self.payload_bytes.saturating_add(bytes);
        if self.payload_bytes > self.limits.max_payload_bytes {
            return Err(CallError::LimitExceeded(format!(
                "payload over {} bytes (delta size limit)",
                self.limits.max_payload_bytes
            )));
        }
        Ok(())
    }
}

/// The call's randomness: ChaCha20 keyed by BLAKE3 over who calls what, when, where in its
/// delta, with which input. Everything in it is fixed before the call runs, so two runs of the
/// same call agree.
fn randomness_seed(call: &CallInput, method: &str) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("rhizome 2026-11 call randomness v2");
    hasher.update(call.context.as_bytes());
    hasher.update(call.caller.as_bytes());
    hasher.update(&rhizome_core::wire::encode(&call.hlc));
    hasher.update(&call.position.to_le_bytes());
    hasher.update(&(method.len() as u64).to_le_bytes());
    hasher.update(method.as_bytes());
    hasher.update(&call.input);
    *hasher.finalize().as_bytes()
}

impl<B: KvBackend> ResourceLimiter for CallState<B> {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limits.max_memory_bytes {
            // An error, not `Ok(false)`: a guest allocator that sees `memory.grow` fail often
            // spins or aborts obscurely; a trap with our own error names the cause.
            return Err(wasmtime::Error::new(CallError::OutOfMemory {
                requested_bytes: desired,
                max_bytes: self.limits.max_memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        const MAX_TABLE_ELEMENTS: usize = 100_000;
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Runs `export` of `app` in a fresh instance with `state`. Returns the state (always, so the
/// store goes back to its context), the outcome, and the fuel used.
pub(crate) fn run_export<B: KvBackend + 'static>(
    engine: &Engine,
    app: &App<B>,
    state: CallState<B>,
    export: &str,
    fuel: u64,
) -> (CallState<B>, Result<(), CallError>, u64) {
    let mut store = Store::new(engine, state);
    store.limiter(|state| state);
    let outcome = store.set_fuel(fuel).map_err(CallError::from_wasmtime).and_then(|()| {
        let instance = app.pre().instantiate(&mut store).map_err(CallError::from_wasmtime)?;
        let func = instance
            .get_typed_func::<(), ()>(&mut store, export)
            .map_err(|_| CallError::NoSuchMethod(export.to_owned()))?;
        func.call(&mut store, ()).map_err(CallError::from_wasmtime)
    });
    let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    (store.into_data(), outcome, fuel_used)
}
