//! The handle the binary (API, status pages, tests) uses to look at and steer the network.

use crate::commands::Command;
use crate::error::NetError;
use crate::metrics::{Counters, NetMetrics};
use libp2p::Multiaddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What we know about one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Its rhizome id (its ed25519 key).
    pub peer: rhizome_core::PeerId,
    /// Its libp2p id.
    pub libp2p_id: libp2p::PeerId,
    /// Addresses it is known to listen on.
    pub addrs: Vec<Multiaddr>,
    /// At least one connection is open.
    pub connected: bool,
    /// It passes the health rule (see [`crate::NetConfig::min_success_rate`] and neighbours).
    pub healthy: bool,
    /// Milliseconds since its last sign of life (0 while connected); `None` if never seen.
    pub last_seen_ms_ago: Option<u64>,
    /// Dials and requests tried (halved now and then, so recent behaviour counts most).
    pub attempts: u32,
    /// Of those, the ones that worked.
    pub successes: u32,
    /// `successes / attempts`; 1.0 before any attempt.
    pub success_rate: f64,
}

/// A cloneable handle on the swarm task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) local_peer_id: rhizome_core::PeerId,
    pub(crate) libp2p_peer_id: libp2p::PeerId,
}

impl NetHandle {
    /// Our rhizome peer id.
    pub fn local_peer_id(&self) -> rhizome_core::PeerId {
        self.local_peer_id
    }

    /// Our libp2p peer id.
    pub fn libp2p_peer_id(&self) -> libp2p::PeerId {
        self.libp2p_peer_id
    }

    /// Sends a command carrying a reply channel and waits for the reply.
    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| NetError::TaskGone)?;
        answer.await.map_err(|_| NetError::TaskGone)
    }

    /// Our listen addresses, each ending in `/p2p/<our id>`, once every listener is up. Empty
    /// if the task has stopped.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(|reply| Command::ListenAddrs { reply }).await.unwrap_or_default()
    }

    /// Every peer in the health table, with its health. Empty if the task has stopped.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        self.ask(|reply| Command::Peers { reply }).await.unwrap_or_default()
    }

    /// Starts dialling `addr` (with or without a `/p2p/<id>` suffix). `Ok` means the dial
    /// started (or the peer is already connected), not that it succeeded; the outcome shows in
    /// [`Self::peers`] and as a `PeerUp` event.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> NetMetrics {
        self.counters.snapshot()
    }

    /// Closes every connection and stops the swarm task; the transport's `next_event` then
    /// returns `None` once it has handed out what was already queued. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }
}
