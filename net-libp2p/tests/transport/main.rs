//! The libp2p transport between real swarms on loopback.
//!
//! One test binary per crate: every extra binary links all of wasmtime and libp2p again.

mod common;
mod gossip;
mod peers;
mod requests;
