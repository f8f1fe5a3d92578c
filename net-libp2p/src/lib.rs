//! The real network for a rhizome node: a libp2p swarm behind `rhizome_node::Transport`.
//!
//! One tokio task owns the swarm (TCP and QUIC, noise, yamux, identify, Kademlia, optional
//! mDNS, gossipsub with one topic per context, and the `/rhizome/sync/1` request/response
//! protocol). The node talks to it through [`Libp2pTransport`], the binary through
//! [`NetHandle`]. The crate makes no protocol decisions (those are the core's): it moves bytes,
//! names peers by their ed25519 key, finds and keeps peers, and enforces its own bounds. It
//! must never block the node, never drop a response or request failure, and never panic on
//! what a peer sends; every bound it hits is counted in [`NetMetrics`].

mod behaviour;
mod codec;
mod commands;
mod config;
mod error;
mod events;
mod handle;
mod health;
mod identity;
mod metrics;
mod retry_queue;
mod subscriptions;
mod swarm_task;
mod transport;

pub use config::NetConfig;
pub use error::NetError;
pub use handle::{NetHandle, PeerInfo};
pub use identity::{context_topic, peer_of_addr, to_core_peer_id, to_libp2p_peer_id};
pub use metrics::NetMetrics;
pub use transport::Libp2pTransport;

use behaviour::Behaviour;
use events::EventQueue;
use health::{HealthPolicy, HealthTable};
use libp2p::{noise, tcp, yamux, SwarmBuilder};
use metrics::Counters;
use retry_queue::RetryQueue;
use std::sync::Arc;
use std::time::Duration;
use subscriptions::Subscriptions;
use swarm_task::SwarmTask;
use tokio::sync::mpsc;

/// Builds the swarm from `secret_key` (the same 32 bytes as the node's core identity), starts
/// listening, dials the bootstrap peers and spawns the swarm task. Must be called inside a
/// tokio runtime.
pub fn spawn(secret_key: [u8; 32], config: NetConfig) -> Result<(Libp2pTransport, NetHandle), NetError> {
    config.validate()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(NetError::Transport("spawn must be called inside a tokio runtime".to_owned()));
    }
    let key = identity::libp2p_keypair(secret_key)?;
    let libp2p_peer_id = key.public().to_peer_id();
    let local_peer_id = identity::core_peer_of_key(key.public())
        .ok_or_else(|| NetError::Key("the local key is not ed25519".to_owned()))?;
    let counters = Arc::new(Counters::default());
    let behaviour = Behaviour::new(&key, &config, counters.clone())?;
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|error| NetError::Transport(format!("tcp: {error}")))?
        .with_quic()
        .with_dns()
        .map_err(|error| NetError::Transport(format!("dns: {error}")))?
        .with_behaviour(move |_| behaviour)
        .map_err(|error| NetError::Transport(error.to_string()))?
        .with_swarm_config(|swarm_config| {
            swarm_config.with_idle_connection_timeout(Duration::from_millis(config.idle_connection_timeout_ms))
        })
        .build();

    let mut listeners_pending = Vec::new();
    for addr in &config.listen {
        let listener = swarm
            .listen_on(addr.clone())
            .map_err(|error| NetError::Listen { addr: addr.to_string(), reason: error.to_string() })?;
        listeners_pending.push(listener);
    }

    let events = Arc::new(EventQueue::new(config.event_queue_len, counters.clone()));
    let subscriptions = Arc::new(Subscriptions::default());
    let (command_sender, command_receiver) = mpsc::channel(config.command_queue_len);
    let policy = HealthPolicy {
        healthy_if_seen_within_ms: config.healthy_if_seen_within_ms,
        min_success_rate: config.min_success_rate,
        min_attempts_for_rate: config.min_attempts_for_rate,
    };
    let bootstrap_peers =
        config.bootstrap.iter().filter_map(|addr| Some((identity::peer_of_addr(addr)?, addr.clone()))).collect();
    let mut task = SwarmTask {
        swarm,
        health: HealthTable::new(policy, config.max_tracked_peers, config.max_addrs_per_peer),
        retry: RetryQueue::new(
            config.publish_retry_queue_messages,
            config.publish_retry_queue_bytes,
            config.max_publish_retry_age_ms,
        ),
        config,
        commands: command_receiver,
        events: events.clone(),
        subscriptions: subscriptions.clone(),
        counters: counters.clone(),
        subscribed: Default::default(),
        outbound: Default::default(),
        inbound: Default::default(),
        bootstrap_peers,
        listeners_pending,
        listen_addrs: Vec::new(),
        listen_waiters: Vec::new(),
        peer_exchange_round: 0,
        started: tokio::time::Instant::now(),
    };
    task.dial_bootstrap_peers();
    tokio::spawn(task.run());

    let transport =
        Libp2pTransport { commands: command_sender.clone(), events, subscriptions, counters: counters.clone() };
    let handle = NetHandle { commands: command_sender, counters, local_peer_id, libp2p_peer_id };
    Ok((transport, handle))
}
