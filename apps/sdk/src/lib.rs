//! rhizome-sdk: write a rhizome application in ordinary Rust.
//!
//! An app is a `cdylib` for `wasm32-unknown-unknown` whose exported `extern "C" fn name()`
//! functions are its methods. A method reads its input, reads and writes CRDT state through
//! [`state`], may [`emit`] events, and sets its return value; [`entry`] does the plumbing:
//!
//! ```ignore
//! #[no_mangle]
//! pub extern "C" fn set() {
//!     rhizome_sdk::entry(|| {
//!         let (key, value): (String, String) = rhizome_sdk::input_as()?;
//!         rhizome_sdk::state::set(&[b"kv", key.as_bytes()], value.as_bytes());
//!         Ok(())
//!     })
//! }
//! ```
//!
//! Every write becomes an action in the call's delta and is merged by the host on every
//! replica; the app's code never runs for a remote delta, except its event handler.

mod alloc;
mod sys;

pub mod state;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::BumpAllocator = alloc::BumpAllocator;

use borsh::{BorshDeserialize, BorshSerialize};

/// The export name of an app's event handler (see [`HandlerInput`]).
pub const EVENT_HANDLER: &str = "__rhizome_on_event";

/// What an event handler receives: one event of a delta another node wrote.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HandlerInput {
    /// The event's kind.
    pub kind: String,
    /// The event's data.
    pub data: Vec<u8>,
    /// The delta that carried it.
    pub delta: [u8; 32],
    /// Who wrote that delta.
    pub author: [u8; 32],
    /// The event's index in the delta.
    pub index: u32,
}

/// The call's input bytes.
pub fn input() -> Vec<u8> {
    let len = unsafe { sys::input_len() } as usize;
    let mut buffer = vec![0u8; len];
    unsafe { sys::input_read(buffer.as_mut_ptr() as i32) };
    buffer
}

/// Why a method body failed: the caller's input, or the app itself. [`entry`] reports each
/// to the host its own way, so the caller gets `bad_args` for input it sent wrong and
/// `aborted` for a refusal of the app's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The input does not decode as the method's arguments (see [`input_as`]).
    BadInput(String),
    /// The app refused or failed; the message says why.
    Abort(String),
}

/// An app's own message is an abort: `Err(format!(...).into())`, and `?` on a `Result<_, String>`.
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Abort(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::Abort(message.to_owned())
    }
}

/// The call's input, borsh-decoded; input that does not decode is [`Failure::BadInput`].
pub fn input_as<T: BorshDeserialize>() -> Result<T, Failure> {
    borsh::from_slice(&input()).map_err(|error| Failure::BadInput(format!("bad input: {error}")))
}

/// Sets the call's return value.
pub fn return_bytes(bytes: &[u8]) {
    unsafe { sys::return_value(bytes.as_ptr() as i32, bytes.len() as i32) };
}

/// Emits an event: carried in the delta, shown to local subscribers, handled on other nodes.
pub fn emit(kind: &str, data: &[u8]) {
    unsafe { sys::emit(kind.as_ptr() as i32, kind.len() as i32, data.as_ptr() as i32, data.len() as i32) };
}

/// Writes a log line (bounded per call by the host).
pub fn log(message: &str) {
    unsafe { sys::log(message.as_ptr() as i32, message.len() as i32) };
}

/// The context this call runs in.
pub fn context_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    unsafe { sys::context_id(id.as_mut_ptr() as i32) };
    id
}

/// Who called: the author of the delta this call produces.
pub fn caller_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    unsafe { sys::caller_id(id.as_mut_ptr() as i32) };
    id
}

/// The delta's time in milliseconds (its HLC's physical part): identical on every replica.
pub fn time_ms() -> u64 {
    unsafe { sys::time_ms() as u64 }
}

/// `len` random bytes, seeded from the call so that a rerun of the same call agrees.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    unsafe { sys::random(bytes.as_mut_ptr() as i32, len as i32) };
    bytes
}

/// Fails the call with `message`; nothing it wrote is kept.
pub fn abort(message: &str) -> ! {
    unsafe { sys::abort(message.as_ptr() as i32, message.len() as i32) };
    unreachable!("the host never returns from abort")
}

/// Fails the call as the caller's fault: its input is not what the method takes. Nothing it
/// wrote is kept.
pub fn bad_input(message: &str) -> ! {
    unsafe { sys::bad_input(message.as_ptr() as i32, message.len() as i32) };
    unreachable!("the host never returns from bad_input")
}

/// Runs a method body: installs a panic hook that aborts with the panic message, runs `body`,
/// returns its value borsh-encoded, or fails the call with its [`Failure`].
pub fn entry<T: BorshSerialize>(body: impl FnOnce() -> Result<T, Failure>) {
    std::panic::set_hook(Box::new(|info| abort(&info.to_string())));
    match body() {
        Ok(value) => return_bytes(&borsh::to_vec(&value).expect("encoding into a Vec never fails")),
        Err(Failure::BadInput(message)) => bad_input(&message),
        Err(Failure::Abort(message)) => abort(&message),
    }
}
