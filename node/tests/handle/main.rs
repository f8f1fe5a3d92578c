//! The node loop on tokio through its handle, over an in-process loopback network.
//!
//! One test binary per crate: every extra binary links all of wasmtime and libp2p again.

mod batched_calls;
mod invitations;
mod members;
mod node_loop;
mod observed;
