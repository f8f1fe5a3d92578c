//! Real rhizomed processes on loopback.
//!
//! One test binary per crate: every extra binary links all of wasmtime and libp2p again.

mod api_misuse;
mod heartbeats;
mod invitations;
mod kill_restart;
mod late_joiner;
mod three_nodes;
