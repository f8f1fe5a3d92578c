//! Running application code: the engine, compiled apps, the host ABI and single calls.

pub mod app;
pub mod call;
pub mod engine;
pub mod error;
pub(crate) mod host;
