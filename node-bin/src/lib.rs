//! rhizomed: the deployable rhizome node. The same node loop as the simulator (`rhizome-node`),
//! over libp2p (`rhizome-net`) and tokio, with a redb database and a sealed identity on disk,
//! an HTTP/JSON-RPC/WebSocket API and Prometheus metrics.

pub mod apply_timer;
pub mod borsh_json;
pub mod cli;
pub mod client;
pub mod committer;
pub mod config;
pub mod daemon;
pub mod http;
pub mod identity;
pub mod metrics;
