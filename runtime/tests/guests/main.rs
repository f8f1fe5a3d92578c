//! The runtime against real WASM guests: the apps, hostile modules and review regressions.
//!
//! One test binary per crate: every extra binary links all of wasmtime and libp2p again.

mod apps;
mod joined;
mod limits;
mod review;
mod support;
