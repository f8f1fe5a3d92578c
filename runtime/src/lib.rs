//! rhizome-runtime: runs WASM applications and holds their CRDT state.
//!
//! Applications are WASM modules that call typed host functions (register set, counter add,
//! set add/remove, map remove, reads, emit, log, time, randomness). Each write is recorded as
//! an *action*; a call's actions and events become a delta's payload. Merging a delta — local
//! or remote — is native: the host joins each action into CRDT state and never runs WASM, so
//! replicas cannot diverge through guest code. State lives in a key-value store behind a trait
//! with a Merkle index whose root is the context's root hash; an update costs O(log n).
//!
//! Nothing here reads a clock, an OS random source, or spawns threads (unless the real node
//! turns on parallel compilation): time is the delta's HLC, randomness is seeded from the call.

pub mod crdt;
pub mod handlers;
pub mod limits;
pub mod merge;
pub mod node_runtime;
pub mod path;
pub mod payload;
pub mod references;
pub mod stamp;
pub mod state;
pub mod wasm;

pub use limits::RuntimeLimits;
pub use node_runtime::{
    CallOutcome, ContextParts, HandlerStep, Runtime, RuntimeMetrics, RuntimeOptions, SealedCalls, WasmHost,
};
pub use path::Path;
pub use payload::{Action, AppEvent, AppPayload};
pub use stamp::Stamp;
pub use state::{KvBackend, MemoryBackend, StateStore};
pub use wasm::app::{AppId, EVENT_HANDLER_EXPORT};
pub use wasm::engine::EngineOptions;
pub use wasm::error::CallError;
