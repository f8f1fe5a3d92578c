//! Connections, discovery (bootstrap, identify, Kademlia, mDNS), peer health and dialling.

use super::SwarmTask;
use crate::behaviour::KAD_PROTOCOL;
use crate::error::NetError;
use crate::handle::PeerInfo;
use crate::identity::{peer_of_addr, to_core_peer_id};
use crate::metrics::{bump, set};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{identify, kad, mdns, Multiaddr, PeerId};
use rhizome_node::TransportEvent;

impl SwarmTask {
    pub(super) fn on_connection_event(&mut self, event: SwarmEvent<crate::behaviour::BehaviourEvent>) {
        let now_ms = self.now_ms();
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                bump(&self.counters.connections_established);
                self.update_connected_gauge();
                let Some(core_peer) = to_core_peer_id(&peer_id) else {
                    bump(&self.counters.events_dropped_non_ed25519);
                    return;
                };
                self.health.connection_opened(peer_id, now_ms);
                if endpoint.is_dialer() {
                    self.health.record_success(peer_id, now_ms);
                    self.health.add_addr(peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, "peer up");
                    let _ = self.events.push(TransportEvent::PeerUp(core_peer));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                bump(&self.counters.connections_closed);
                self.update_connected_gauge();
                let Some(core_peer) = to_core_peer_id(&peer_id) else {
                    return;
                };
                self.health.connection_closed(peer_id, now_ms);
                if num_established == 0 {
                    tracing::debug!(peer = %peer_id, "peer down");
                    let _ = self.events.push(TransportEvent::PeerDown(core_peer));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                bump(&self.counters.dials_failed);
                if matches!(error, DialError::Denied { .. }) {
                    bump(&self.counters.connections_denied);
                }
                if let Some(peer) = peer_id.filter(|peer| to_core_peer_id(peer).is_some()) {
                    self.health.record_failure(peer);
                }
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                if matches!(error, ListenError::Denied { .. }) {
                    bump(&self.counters.connections_denied);
                }
            }
            _ => {}
        }
    }

    fn update_connected_gauge(&self) {
        set(&self.counters.connected_peers, self.swarm.connected_peers().count() as u64);
    }

    /// Remembers an address of a peer for the health table (and so for redials) and Kademlia.
    fn learn_addr(&mut self, peer: PeerId, addr: Multiaddr, in_kad: bool) {
        if to_core_peer_id(&peer).is_none() {
            return;
        }
        if in_kad {
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                kad.add_address(&peer, addr.clone());
            }
        }
        self.health.add_addr(peer, addr);
    }

    pub(super) fn on_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event {
            self.health.record_seen(peer_id, self.now_ms());
            let speaks_kad = info.protocols.contains(&KAD_PROTOCOL);
            for addr in info.listen_addrs.into_iter().take(self.config.max_addrs_per_peer) {
                self.learn_addr(peer_id, addr, speaks_kad);
            }
        }
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed { result: kad::QueryResult::GetClosestPeers(Ok(found)), .. } => {
                for peer in found.peers {
                    for addr in peer.addrs.into_iter().take(self.config.max_addrs_per_peer) {
                        self.learn_addr(peer.peer_id, addr, false);
                    }
                }
                self.redial_if_short();
            }
            kad::Event::RoutingUpdated { peer, addresses, .. } => {
                for addr in addresses.iter().take(self.config.max_addrs_per_peer) {
                    self.learn_addr(peer, addr.clone(), false);
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_mdns(&mut self, event: mdns::Event) {
        if let mdns::Event::Discovered(found) = event {
            for (peer, addr) in found {
                self.learn_addr(peer, addr.clone(), true);
                if !self.swarm.is_connected(&peer) {
                    self.dial_peer(peer, vec![addr]);
                }
            }
        }
    }

    fn connected_count(&self) -> usize {
        self.swarm.connected_peers().count()
    }

    fn dial_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if let Err(error) = self.swarm.dial(DialOpts::peer_id(peer).addresses(addrs).build()) {
            tracing::debug!(%peer, %error, "dial not started");
        }
    }

    /// Dials known, disconnected peers (healthy ones first) up to `min_peers`.
    fn redial_if_short(&mut self) {
        let deficit = self.config.min_peers.saturating_sub(self.connected_count());
        if deficit == 0 {
            return;
        }
        for (peer, addrs) in self.health.redial_candidates(self.now_ms(), deficit) {
            self.dial_peer(peer, addrs);
        }
    }

    /// Dials the bootstrap peers and adds them to Kademlia (at start and when short of peers).
    pub(crate) fn dial_bootstrap_peers(&mut self) {
        for (peer, addr) in self.bootstrap_peers.clone() {
            self.learn_addr(peer, addr.clone(), true);
            if !self.swarm.is_connected(&peer) {
                self.dial_peer(peer, vec![addr]);
            }
        }
    }

    /// While short of peers: a Kademlia bootstrap, the bootstrap peers again, known peers.
    pub(super) fn bootstrap_round(&mut self) {
        if self.connected_count() >= self.config.min_peers {
            return;
        }
        bump(&self.counters.bootstrap_runs);
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            // No known peer is fine: the redials below may bring one.
            let _ = kad.bootstrap();
        }
        self.dial_bootstrap_peers();
        self.redial_if_short();
    }

    /// Updates the health gauges and redials if short of peers.
    pub(super) fn health_check(&mut self) {
        bump(&self.counters.health_checks);
        let now_ms = self.now_ms();
        set(&self.counters.unhealthy_peers, self.health.unhealthy_count(now_ms) as u64);
        set(&self.counters.peers_evicted, self.health.evicted);
        self.update_connected_gauge();
        self.redial_if_short();
    }

    /// A Kademlia walk towards a key derived from our id and a round counter: each round looks
    /// in a different part of the key space, reproducibly, without OS randomness.
    pub(super) fn peer_exchange(&mut self) {
        self.peer_exchange_round += 1;
        let mut seed = self.swarm.local_peer_id().to_bytes();
        seed.extend_from_slice(&self.peer_exchange_round.to_le_bytes());
        let key = blake3::hash(&seed).as_bytes().to_vec();
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            kad.get_closest_peers(key);
            bump(&self.counters.peer_exchanges);
        }
    }

    /// Starts a dial asked for through the handle.
    pub(super) fn dial_addr(&mut self, addr: Multiaddr) -> Result<(), NetError> {
        let result = match peer_of_addr(&addr) {
            Some(peer) => {
                self.learn_addr(peer, addr.clone(), true);
                self.swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build())
            }
            None => self.swarm.dial(addr),
        };
        match result {
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => Ok(()),
            Err(error) => Err(NetError::Dial(error.to_string())),
        }
    }

    pub(super) fn peer_infos(&self) -> Vec<PeerInfo> {
        let now_ms = self.now_ms();
        self.health
            .iter()
            .filter_map(|(libp2p_id, record)| {
                Some(PeerInfo {
                    peer: to_core_peer_id(libp2p_id)?,
                    libp2p_id: *libp2p_id,
                    addrs: record.addrs.clone(),
                    connected: record.connections > 0,
                    healthy: self.health.is_healthy(record, now_ms),
                    last_seen_ms_ago: record.seen_ms_ago(now_ms),
                    attempts: record.attempts,
                    successes: record.successes,
                    success_rate: record.success_rate(),
                })
            })
            .collect()
    }
}
